"""The apps under test, written as modules into the run's temporary folder.

Every app is built by one function, so they share routes, config and response headers:

* ``plain_app``: a Flask app with ``/hello`` (a small HTML page) and ``/ok`` (a bare
  route returning "ok");
* ``prodready_app``: the same with ``ProdReady(app)`` (a token, and a report cache of
  an hour so that ``/_readiness`` is served from cache once warm);
* ``peers_app``: the same with flask-healthz (``/healthz/live``) and py-healthcheck
  (``/healthcheck``) instead;
* ``db_app``: the same with Flask-SQLAlchemy on a PostgreSQL and ProdReady with
  ``PRODREADY_CACHE_SECONDS = 0``: every report is cold.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .common import clean_environment

APPS_MODULE = '''\
"""The apps under test (written by benchmarks/apps.py): one shape, several variants."""

from __future__ import annotations

import os

from flask import Flask, Response

PAGE = (
    "<!doctype html>\\n"
    '<html lang="en"><head><meta charset="utf-8"><title>Hello</title></head>\\n'
    "<body><h1>Hello</h1><p>A small page, served to measure overhead.</p>"
    "<p>Run NONCE</p></body></html>\\n"
).replace("NONCE", os.environ["BENCH_NONCE"])


def liveness() -> None:
    """flask-healthz's liveness check: nothing to check, as for /healthz."""


def build(kind: str) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["BENCH_SECRET_KEY"]

    @app.get("/hello")
    def hello() -> Response:
        response = Response(PAGE, mimetype="text/html")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    if kind == "prodready":
        from flask_prodready import ProdReady

        app.config["PRODREADY_TOKEN"] = os.environ["BENCH_PRODREADY_TOKEN"]
        app.config["PRODREADY_CACHE_SECONDS"] = float(os.environ["BENCH_CACHE_SECONDS"])
        ProdReady(app)
    elif kind == "peers":
        from flask_healthz import Healthz
        from healthcheck import HealthCheck

        app.config["HEALTHZ"] = {"live": liveness}
        Healthz(app)
        health = HealthCheck()
        app.add_url_rule("/healthcheck", "healthcheck", view_func=lambda: health.run())
    elif kind != "plain":
        raise ValueError(kind)
    return app
'''

DB_MODULE = '''\
"""The app with a database (written by benchmarks/apps.py): Flask-SQLAlchemy on the
run's PostgreSQL, ProdReady without a report cache."""

from __future__ import annotations

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from bench_apps import build

db = SQLAlchemy()


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(200), nullable=False)


def create_app() -> Flask:
    app = build("plain")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_DATABASE_URL"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": 5},
    }
    app.config["PRODREADY_TOKEN"] = os.environ["BENCH_PRODREADY_TOKEN"]
    app.config["PRODREADY_CACHE_SECONDS"] = 0
    db.init_app(app)

    from flask_prodready import ProdReady

    ProdReady(app)
    return app


app = create_app()
'''


def _entry(kind: str) -> str:
    return (
        f'"""The {kind} app (see bench_apps)."""\n\n'
        "from bench_apps import build\n\n"
        f'app = build("{kind}")\n'
    )


#: Module name of each app, by kind.
MODULES = {
    "plain": "plain_app",
    "prodready": "prodready_app",
    "peers": "peers_app",
    "db": "db_app",
}


@dataclass(frozen=True)
class AppFolder:
    """The folder holding the app modules, and the environment their processes get."""

    folder: Path
    env: dict[str, str]
    nonce: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


#: Seconds the prodready app keeps a report: the whole run, so /_readiness stays warm.
CACHE_SECONDS = 3600


def write_apps(folder: Path, database_url: str | None) -> AppFolder:
    """Write every app module into ``folder``; the environment names the database, if any."""
    (folder / "bench_apps.py").write_text(APPS_MODULE)
    for kind in ("plain", "prodready", "peers"):
        (folder / f"{MODULES[kind]}.py").write_text(_entry(kind))
    (folder / "db_app.py").write_text(DB_MODULE)
    nonce = secrets.token_hex(8)
    token = secrets.token_urlsafe(32)
    extra = {
        "PYTHONPATH": str(folder),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BENCH_NONCE": nonce,
        "BENCH_SECRET_KEY": secrets.token_hex(32),
        "BENCH_PRODREADY_TOKEN": token,
        "BENCH_CACHE_SECONDS": str(CACHE_SECONDS),
    }
    if database_url is not None:
        extra["BENCH_DATABASE_URL"] = database_url
    env = clean_environment(extra)
    env.setdefault("PATH", os.defpath)
    return AppFolder(folder, env, nonce, token)
