"""The library versions the suite runs against, and what a test needs of them.

The main suite runs on the newest supported stack; ``nox -s oldest`` runs the unit tests
on the oldest (Flask 2.2, Flask-SQLAlchemy 2.5, SQLAlchemy 1.4) and ``nox -s newest`` on
the newest releases (``noxfile.py``). A test that needs what only one stack has is
marked with one of the ``needs_*`` marks below, so it is skipped elsewhere with the
reason, never silently.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import urllib.parse
from typing import Any

import pytest

#: Set by ``noxfile.py`` to the name of the stack session running the suite.
STACK_SESSION = os.environ.get("PRODREADY_STACK_SESSION", "")


def release(distribution: str) -> tuple[int, int]:
    """(major, minor) of an installed distribution; (0, 0) when it is not installed."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return (0, 0)
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else (0, 0)


FLASK = release("flask")
WERKZEUG = release("werkzeug")
CLICK = release("click")
SQLALCHEMY = release("sqlalchemy")
FLASK_SQLALCHEMY = release("flask-sqlalchemy")
FLASK_ALEMBIC = release("flask-alembic")

#: The PostgreSQL driver of the apps under test: SQLAlchemy has a psycopg (3) dialect
#: from 2.0 on; before, psycopg2.
PG_DRIVER = "postgresql+psycopg" if SQLALCHEMY >= (2, 0) else "postgresql+psycopg2"

needs_flask_31 = pytest.mark.skipif(
    FLASK < (3, 1), reason="Flask reads TRUSTED_HOSTS from 3.1 on; this Flask ignores it"
)
needs_werkzeug_3 = pytest.mark.skipif(
    WERKZEUG < (3, 0),
    reason="Werkzeug before 3.0 decodes a query string that is not UTF-8 with replacement "
    "characters: the report answers 400 'value is too long or not valid UTF-8' (401 first "
    "without the token) instead of naming the escapes",
)
needs_click_82 = pytest.mark.skipif(
    CLICK < (8, 2),
    reason="click before 8.2 words an unknown option 'No such option: --name' (its own "
    "message, still one line and exit 2)",
)
#: Why a test module of the example app is skipped on SQLAlchemy 1.4: the example app
#: is written for SQLAlchemy 2.0's typed ORM (DeclarativeBase), as its extra requires.
EXAMPLE_APP_NEEDS_SQLALCHEMY_2 = (
    "the example app is written for SQLAlchemy 2.0's typed ORM (DeclarativeBase); "
    f"SQLAlchemy {'.'.join(map(str, SQLALCHEMY))} is installed"
)
needs_flask_sqlalchemy_3 = pytest.mark.skipif(
    FLASK_SQLALCHEMY < (3, 0),
    reason="a bind's own engine options (SQLALCHEMY_BINDS values as dicts) are Flask-SQLAlchemy "
    "3.0's; 2.x applies SQLALCHEMY_ENGINE_OPTIONS to every bind",
)
needs_flask_sqlalchemy_2 = pytest.mark.skipif(
    FLASK_SQLALCHEMY >= (3, 0), reason="pins how Flask-SQLAlchemy 2.x builds its engines"
)
needs_flask_alembic_31 = pytest.mark.skipif(
    FLASK_ALEMBIC < (3, 1),
    reason="Flask-Alembic takes plain SQLAlchemy engines (Alembic(engines=...)) from 3.1 on",
)
#: Tests that build their apps for SQLAlchemy 2.0 and Flask-SQLAlchemy 3 (a
#: ``postgresql+psycopg`` URL, ``db.engines``) rather than with ``PG_DRIVER`` and
#: :func:`flask_sqlalchemy_engines`, by node id: :func:`add_stack_marks` marks them.
WRITTEN_FOR_SQLALCHEMY_2 = (
    "tests/safety/test_secret_forms.py::test_engine_url_password_is_in_no_output",
    "tests/safety/test_secret_forms.py::test_flask_readiness_prints_no_engine_url_password",
    "tests/safety/test_secret_leaks.py::test_no_secret_in_any_output",
)
needs_sqlalchemy_2 = pytest.mark.skipif(
    SQLALCHEMY < (2, 0) or FLASK_SQLALCHEMY < (3, 0),
    reason="builds its app on a postgresql+psycopg URL (SQLAlchemy's psycopg 3 dialect, 2.0 "
    "and later) and reads Flask-SQLAlchemy 3's db.engines",
)
#: Lint, type checks and the documentation site judge the code and its docs, not the
#: libraries it runs with: the main suite runs them once.
main_suite_only = pytest.mark.skipif(
    bool(STACK_SESSION),
    reason=f"judged once, by the main suite; the {STACK_SESSION} stack session runs the "
    "tests on other library versions",
)


def query_is_utf8(query: str) -> bool:
    """Whether a WSGI ``QUERY_STRING`` (bytes read as Latin-1) decodes as UTF-8 once its
    percent escapes are decoded."""
    try:
        urllib.parse.unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        return False
    return True


def add_stack_marks(item: pytest.Item) -> None:
    """Add the marks a test needs that its own code cannot say: a ``query`` parameter that
    is not UTF-8 needs Werkzeug 3; the tests of ``WRITTEN_FOR_SQLALCHEMY_2`` need it."""
    if item.nodeid.startswith(WRITTEN_FOR_SQLALCHEMY_2):
        item.add_marker(needs_sqlalchemy_2)
    params = getattr(getattr(item, "callspec", None), "params", {})
    query = params.get("query")
    if isinstance(query, str) and not query_is_utf8(query):
        item.add_marker(needs_werkzeug_3)


def flask_sqlalchemy_engines(db: Any, app: Any) -> list[Any]:
    """Every engine Flask-SQLAlchemy made for ``app`` (3.x: ``db.engines``; 2.x: its
    connectors), to dispose of them after a test."""
    with app.app_context():
        if hasattr(db, "engines"):
            return list(db.engines.values())
        state = app.extensions["sqlalchemy"]
        return [c._engine for c in state.connectors.values() if c._engine is not None]


#: The DB-API module behind ``PG_DRIVER``.
PG_DBAPI = PG_DRIVER.partition("+")[2]


def default_engine(app: Any) -> Any:
    """Flask-SQLAlchemy's engine of the default database of ``app``, on 3.x or 2.x."""
    extension = app.extensions["sqlalchemy"]
    with app.app_context():
        if hasattr(extension, "engines"):
            return extension.engine
        return extension.db.get_engine(app)
