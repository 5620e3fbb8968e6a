"""A checkout with a `.flaskenv`: what `flask readiness` says of it, run as users run it,
and what the same app says under gunicorn, which reads no dotenv file."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ..support import result_of
from .processes import fetch, gunicorn

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}

APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["APP_SECRET_KEY"],
        PRODREADY_TOKEN=os.environ["PRODREADY_TOKEN"],
        PRODREADY_CACHE_SECONDS=0,
        PRODREADY_SILENCED={{"server.root": "the test suite may run as root"}},{extra}
    )
    ProdReady(app)
    return app
"""

DOTENV_DEBUG = (
    "warning",
    "FLASK_DEBUG='1' comes from .flaskenv, which the flask command loads: it runs the app "
    "in debug mode (and so does anything run through it, like flask run), but gunicorn "
    "and uWSGI do not read that file.",
)
CONFIG_DEBUG = ("critical", "The app runs in debug mode (DEBUG is true).")


def checkout(folder: Path, flaskenv: str) -> Path:
    """A project folder with a plain app, an app whose config sets DEBUG, and ``flaskenv``."""
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "pyproject.toml").write_text("[project]\nname = 'checkout'\n")
    (folder / "plainapp.py").write_text(textwrap.dedent(APP.format(extra="")))
    (folder / "debugapp.py").write_text(textwrap.dedent(APP.format(extra="\n        DEBUG=True,")))
    (folder / ".flaskenv").write_text(flaskenv)
    return folder


def readiness(folder: Path, module: str) -> dict[str, Any]:
    """The JSON report of `flask --app MODULE readiness --tag config`, run in ``folder``
    with no FLASK_* variable of the outer environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PRODREADY_"))}
    env.update(ENV, PYTHONPATH=str(folder))
    command = ["-m", "flask", "--app", module, "readiness", "--tag", "config", "--format", "json"]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def findings_of(report: dict[str, Any], check_id: str) -> list[tuple[str, str]]:
    return [(f["level"], f["message"]) for f in report["findings"] if f["id"] == check_id]


def messages(report: dict[str, Any]) -> list[str]:
    return [f["message"] for f in report["findings"]]


@pytest.fixture(scope="module")
def debug_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(tmp_path_factory.mktemp("provenance") / "debug", "FLASK_DEBUG=1\n")


def test_cli_dotenv_debug_is_a_warning(debug_checkout: Path) -> None:
    """`flask readiness` beside a .flaskenv with FLASK_DEBUG=1: a warning naming the file."""
    report = readiness(debug_checkout, "plainapp")
    assert findings_of(report, "config.debug") == [DOTENV_DEBUG]
    assert result_of(report, "config.debug") == "fail"


def test_cli_config_debug_is_critical(tmp_path: Path) -> None:
    """DEBUG = True in the app's config is critical, though .flaskenv turns debug off for
    the flask command (which resets app.debug from it after the factory)."""
    folder = checkout(tmp_path / "off", "FLASK_DEBUG=0\n")
    assert findings_of(readiness(folder, "debugapp"), "config.debug") == [CONFIG_DEBUG]


def test_gunicorn_does_not_read_flaskenv(debug_checkout: Path) -> None:
    """gunicorn in the same folder reads no .flaskenv: the live report has no config.debug,
    and no message quotes FLASK_DEBUG."""
    with gunicorn(debug_checkout, "plainapp:create_app()", env=ENV) as port:
        answer = fetch(port, "/_readiness?tag=config", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status in (200, 503), answer.body[:300]
    report = answer.json()
    assert report["worker"]["server"].startswith("gunicorn/")
    assert findings_of(report, "config.debug") == []
    assert result_of(report, "config.debug") == "pass"
    assert not [m for m in messages(report) if "FLASK_DEBUG=" in m or "None" in m]


def test_gunicorn_app_config_debug_is_critical(debug_checkout: Path) -> None:
    """Under gunicorn, DEBUG = True in the app's config is what the server runs with."""
    with gunicorn(debug_checkout, "debugapp:create_app()", env=ENV) as port:
        answer = fetch(port, "/_readiness?tag=config", headers={"Authorization": f"Bearer {TOKEN}"})
    assert findings_of(answer.json(), "config.debug") == [CONFIG_DEBUG]


def test_unset_flask_debug_is_never_quoted(tmp_path: Path) -> None:
    """FLASK_DEBUG set nowhere: no message of `flask readiness` says it is set."""
    folder = checkout(tmp_path / "plain", "FLASK_APP=plainapp\n")
    report = readiness(folder, "plainapp")
    assert findings_of(report, "config.debug") == []
    assert not [m for m in messages(report) if "FLASK_DEBUG=" in m or "None" in m]
