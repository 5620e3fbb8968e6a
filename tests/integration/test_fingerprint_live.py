"""The configuration fingerprint from real gunicorn workers: each worker computes it in its
own process, and workers and servers of one configuration agree."""

from __future__ import annotations

import hashlib
import secrets
import socket
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from flask_prodready import __version__

from .processes import HOST, fetch, gunicorn

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: How long a connection that sends nothing may take to be accepted by a worker.
SETTLE = 0.3

#: An app whose config holds what could render differently per process: a set (string
#: hashing is randomised per process), a per-process lock, a timedelta.
APP = """
import os
import threading
from datetime import timedelta
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SQLALCHEMY_DATABASE_URI=os.environ["APP_DATABASE_URL"],
    MAX_CONTENT_LENGTH=int(os.environ.get("APP_MAX_CONTENT_LENGTH", "1048576")),
    ALLOWED_UPLOADS={"png", "jpg", "gif", "webp", "svg", "pdf"},
    LOCK=threading.Lock(),
    PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
    PRODREADY_CACHE_SECONDS=0.0,
)
ProdReady(app)
"""


def environment(**extra: str) -> dict[str, str]:
    env = {
        "PRODREADY_TOKEN": TOKEN,
        "APP_SECRET_KEY": secrets.token_urlsafe(48),
        "APP_DATABASE_URL": f"postgresql://app:{secrets.token_urlsafe(16)}@db.internal/shop",
    }
    env.update(extra)
    return env


def report(port: int) -> dict[str, Any]:
    """The JSON report of one worker of the server on ``port`` (only the config checks)."""
    answer = fetch(port, "/_readiness?tag=config", headers=AUTH)
    assert answer.headers["Content-Type"].startswith("application/health+json")
    body: dict[str, Any] = answer.json()
    body["raw"] = answer.body.decode("utf-8")
    return body


def idle_connection(port: int) -> socket.socket:
    """A connection that sends nothing: the sync worker that accepts it waits on it, so the
    next requests go to the other worker."""
    connection = socket.create_connection((HOST, port), timeout=5)
    time.sleep(SETTLE)
    return connection


def reports_of_both_workers(port: int) -> Iterator[dict[str, Any]]:
    """A report from each of the two sync workers of the server on ``port``: one worker is
    held by an idle connection while the other answers, then the other way round."""
    first_idle = idle_connection(port)
    with closing(first_idle):
        yield report(port)  # answered by the worker not holding first_idle
        second_idle = idle_connection(port)  # taken by the worker that just answered
    with closing(second_idle):
        time.sleep(SETTLE)  # the first worker sees the closed connection and is free again
        yield report(port)


def test_workers_and_servers_of_one_configuration_agree(tmp_path: Path) -> None:
    """Two workers of one gunicorn report the same fingerprint; a server with other secrets
    (SECRET_KEY, the database password) too; a server with one other value does not; no
    answer holds a secret or its sha256."""
    (tmp_path / "fingerprintapp.py").write_text(textwrap.dedent(APP))
    first_env, second_env = environment(), environment()
    other_env = environment(APP_MAX_CONTENT_LENGTH="2097152")
    with gunicorn(tmp_path, "fingerprintapp:app", ["-w", "2"], env=first_env) as port:
        workers = list(reports_of_both_workers(port))
    with gunicorn(tmp_path, "fingerprintapp:app", ["-w", "1"], env=second_env) as port:
        second = report(port)
    with gunicorn(tmp_path, "fingerprintapp:app", ["-w", "1"], env=other_env) as port:
        other = report(port)

    pids = {body["worker"]["pid"] for body in workers}
    assert len(pids) == 2, "both workers answered"
    fingerprints = {body["fingerprint"] for body in [*workers, second]}
    assert len(fingerprints) == 1
    assert other["fingerprint"] not in fingerprints
    assert {body["versions"]["flask-prodready"] for body in workers} == {__version__}

    for env, body in [(first_env, workers[0]), (first_env, workers[1]), (second_env, second)]:
        password = urlsplit(env["APP_DATABASE_URL"]).password
        assert password
        for secret in (env["PRODREADY_TOKEN"], env["APP_SECRET_KEY"], password):
            assert secret not in body["raw"]
            assert hashlib.sha256(secret.encode()).hexdigest()[:16] not in body["raw"]
