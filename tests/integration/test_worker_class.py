"""server.worker_class under real gunicorn with the gevent worker: an app on
Flask-SQLAlchemy and psycopg2 against a real PostgreSQL, with and without psycogreen's
wait callback installed by a ``post_fork`` hook."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ..postgres import PostgresServer
from ..support import result_of
from .processes import fetch, gunicorn

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}

APP = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
)
db = SQLAlchemy(app)
ProdReady(app)

@app.route("/one")
def one():
    return str(db.session.execute(text("SELECT 1")).scalar())
"""

PATCHED_CONFIG = """
def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
"""


def serve_and_report(
    folder: Path, postgres: PostgresServer, database: str, args: list[str]
) -> dict[str, Any]:
    """The report of the gevent-served app after some traffic to its database route."""
    folder.mkdir()
    (folder / "dbapp.py").write_text(textwrap.dedent(APP))
    env = {
        "PRODREADY_TOKEN": TOKEN,
        "APP_SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": postgres.url(postgres.owner, database, driver="postgresql+psycopg2"),
    }
    with gunicorn(folder, "dbapp:app", ["-k", "gevent", "-w", "1", *args], env) as port:
        for _ in range(5):
            answer = fetch(port, "/one")
            assert (answer.status, answer.body) == (200, b"1")
        readiness = fetch(port, "/_readiness", headers=AUTH)
        assert readiness.status in (200, 503), readiness.body[:300]
        body: dict[str, Any] = readiness.json()
        return body


def test_gevent_with_bare_psycopg2_is_reported(
    postgres: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    """gunicorn -k gevent with psycopg2 and no psycogreen: server.worker_class fires."""
    report = serve_and_report(tmp_path / "bare", postgres, pg_database, [])
    [finding] = [f for f in report["findings"] if f["id"] == "server.worker_class"]
    assert finding["level"] == "warning"
    assert finding["message"].startswith(
        "gunicorn's gevent worker (from the running gunicorn) runs its requests as greenlets "
        "of one thread, and the default database (postgresql://127.0.0.1:"
    )
    assert "psycopg2 with no wait callback set" in finding["message"]
    assert "psycogreen.gevent.patch_psycopg() in gunicorn's post_fork hook" in finding["message"]
    assert postgres.owner.password not in str(report)


def test_gevent_with_psycogreen_is_quiet(
    postgres: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    """The same app with psycogreen.gevent.patch_psycopg() in post_fork: quiet."""
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(textwrap.dedent(PATCHED_CONFIG))
    report = serve_and_report(tmp_path / "patched", postgres, pg_database, ["-c", str(config)])
    assert result_of(report, "server.worker_class") == "pass"
    assert [f for f in report["findings"] if f["id"] == "server.worker_class"] == []
