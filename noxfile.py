"""The unit suite on the oldest and on the newest supported stack (docs/quickstart.md,
"Supported stacks").

    nox -s oldest    # Python 3.10, Flask 2.2, Werkzeug 2.2, click 8.0,
                     # Flask-SQLAlchemy 2.5.1, SQLAlchemy 1.4, Flask-Migrate 3.1,
                     # Flask-Alembic 2.0
    nox -s newest    # nox's own Python, the newest Flask, Flask-SQLAlchemy, SQLAlchemy,
                     # Flask-Migrate and Flask-Alembic

Each session builds a virtualenv of its own from PyPI and installs flask-prodready (as a
wheel, not from the source tree) beside its stack in one pip command: a stack that pip
cannot resolve beside flask-prodready's requirements fails the session. It then runs
``pytest -m "not integration"`` with PostgreSQL started by the tests themselves
(tests/postgres.py); the integration tests, which start servers, run in the main suite.
A test that needs what one stack lacks is marked (tests/stacks.py) and skipped there
with its reason. Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.options.sessions = ["oldest", "newest"]
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

#: Distributions of the test extra that a session does not take from it: the stack it
#: pins itself, and what judges the code and docs rather than the libraries it runs with
#: (lint, types, the documentation site, nox, the browser of the integration tests).
NOT_FROM_THE_TEST_EXTRA = {
    "flask",
    "werkzeug",
    "click",
    "flask-sqlalchemy",
    "sqlalchemy",
    "flask-migrate",
    "flask-alembic",
    "ruff",
    "mypy",
    "mkdocs",
    "nox",
    "playwright",
}


def test_tools() -> list[str]:
    """The test extra of pyproject.toml, less ``NOT_FROM_THE_TEST_EXTRA`` and type stubs."""
    extra = nox.project.load_toml("pyproject.toml")["project"]["optional-dependencies"]["test"]
    kept = []
    for line in extra:
        name = canonicalize_name(Requirement(line).name)
        if name not in NOT_FROM_THE_TEST_EXTRA and not name.startswith("types-"):
            kept.append(line)
    return kept


OLDEST_STACK = [
    "flask==2.2.*",
    "werkzeug==2.2.*",
    "click==8.0.*",  # the oldest Flask 2.2 accepts
    "flask-sqlalchemy==2.5.1",
    "sqlalchemy==1.4.*",
    "flask-migrate==3.1.*",
    "flask-alembic==2.0.*",
    "psycopg2-binary>=2.9",  # SQLAlchemy 1.4 has no dialect for psycopg 3
]
#: Warnings the oldest libraries raise in each other, not in flask-prodready: the suite
#: turns warnings into errors (pyproject.toml), so these are let through by message.
OLDEST_WARNINGS = [
    # Flask-SQLAlchemy 2.5 imports _app_ctx_stack, deprecated by Flask 2.2.
    "ignore:'_app_ctx_stack' is deprecated:DeprecationWarning",
    # Flask-SQLAlchemy 2.5 asks apps to set SQLALCHEMY_TRACK_MODIFICATIONS.
    "ignore:SQLALCHEMY_TRACK_MODIFICATIONS adds significant overhead",
    # Flask-Alembic 2.0 predates Alembic 1.16's path_separator option.
    "ignore:No path_separator found in configuration:DeprecationWarning",
]

NEWEST_STACK = [
    "flask>=3.1",
    "flask-sqlalchemy>=3.1",
    "sqlalchemy>=2.0",
    "flask-migrate>=4.0",
    "flask-alembic>=3.1",
]

PYTEST = [
    "-m",
    "not integration",
    "--ignore=tests/integration",
    "--ignore=tests/ecosystem",
    "-p",
    "no:cacheprovider",
]


def _interpreter(*versions: str) -> str:
    """The first of ``versions`` that runs here (a pyenv shim on PATH may point at an
    interpreter that is not selected, so each candidate is tried), else this one."""
    for version in versions:
        candidates = [
            shutil.which(f"python{version}"),
            *sorted(
                glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")),
                reverse=True,
            ),
            f"/usr/bin/python{version}",
        ]
        for candidate in candidates:
            if candidate and os.access(candidate, os.X_OK) and _runs(candidate):
                return candidate
    return sys.executable


def _runs(interpreter: str) -> bool:
    try:
        done = subprocess.run(
            [interpreter, "-c", "import venv, ensurepip"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


def _run_suite(session: nox.Session, stack: Sequence[str], warnings: Sequence[str] = ()) -> None:
    session.run("python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # One resolution: flask-prodready's own requirements and the stack together.
    session.install(".", *stack, *test_tools())
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    filters = [arg for warning in warnings for arg in ("-W", warning)]
    session.run(
        "python",
        "-m",
        "pytest",
        *PYTEST,
        *filters,
        *session.posargs,
        env={"PRODREADY_STACK_SESSION": session.name},
    )


@nox.session(python=_interpreter("3.10", "3.11"))
def oldest(session: nox.Session) -> None:
    """The unit suite on Flask 2.2, Flask-SQLAlchemy 2.5.1 and SQLAlchemy 1.4."""
    _run_suite(session, OLDEST_STACK, OLDEST_WARNINGS)


@nox.session(python=sys.executable)
def newest(session: nox.Session) -> None:
    """The unit suite on the newest Flask, Flask-SQLAlchemy and SQLAlchemy."""
    _run_suite(session, NEWEST_STACK)
