"""What the live server really runs, receives and sends: real gunicorn (sync and gthread)
behind a real nginx, and Werkzeug's development server, on loopback.

Client traffic comes from 127.0.0.2 through nginx, so the forwarded address differs
from the proxy's; the report is fetched through nginx like an operator would.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ..support import result_of
from .processes import CLIENT_ADDRESS, environment, fetch, flask_run, gunicorn, nginx

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
FORWARD_PROTO = "proxy_set_header X-Forwarded-Proto https;"

COMMON = """
import os
from flask import Flask, make_response
from werkzeug.middleware.proxy_fix import ProxyFix
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
)
ProdReady(app)
"""

NAKED = (
    COMMON
    + """
@app.route("/")
def index():
    response = make_response("<!doctype html><p>naked</p>")
    response.set_cookie("prefs", "dark")
    return response
"""
)

PROPER = (
    COMMON
    + """
app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Lax")
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(os.environ.get("X_FOR", "1")), x_proto=1)

@app.after_request
def security_headers(response):
    response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response

@app.route("/")
def index():
    response = make_response("<!doctype html><p>proper</p>")
    response.set_cookie("prefs", "dark", secure=True, httponly=True, samesite="Lax")
    return response
"""
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the naked and the proper app and a static file."""
    folder = tmp_path_factory.mktemp("live-runtime")
    folder.chmod(0o755)
    (folder / "naked.py").write_text(textwrap.dedent(NAKED))
    (folder / "proper.py").write_text(textwrap.dedent(PROPER))
    (folder / "static").mkdir()
    (folder / "static" / "site.css").write_text("body { color: #111; }\n")
    return folder


def browse(port: int, paths: tuple[str, ...] = ("/", "/static/site.css"), rounds: int = 5) -> None:
    """Client traffic from 127.0.0.2, through whatever listens on ``port``."""
    for _ in range(rounds):
        for path in paths:
            assert fetch(port, path, source=CLIENT_ADDRESS).status == 200


def report(port: int) -> dict[str, Any]:
    answer = fetch(port, "/_readiness", headers=AUTH, source=CLIENT_ADDRESS)
    assert answer.status in (200, 503), answer.body[:300]
    body: dict[str, Any] = answer.json()
    return body


def readiness(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`flask --app naked readiness ARGS` in ``project``, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "naked", "readiness", *args],
        cwd=project,
        env=environment(project, ENV),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fired(body: dict[str, Any]) -> set[str]:
    return {f["id"] for f in body["findings"] if not f["silenced"]}


@pytest.mark.parametrize(
    "workers", [["-w", "1"], ["-w", "1", "--threads", "4"]], ids=["sync", "gthread"]
)
def test_naked_app_behind_nginx(project: Path, workers: list[str]) -> None:
    """A naked app under 1 gunicorn worker behind nginx without X-Forwarded-Proto: the
    report names every missing layer, and knows it runs under gunicorn."""
    with gunicorn(project, "naked:app", workers, ENV) as upstream, nginx(project, upstream) as port:
        browse(port)
        body = report(port)
    ids = fired(body)
    assert {
        "proxy.missing_proxyfix",
        "proxy.no_forwarded_proto",
        "server.workers",
        "headers.hsts",
        "headers.csp",
        "headers.nosniff",
        "headers.framing",
        "cookies.observed_insecure",
        "static.served_by_app",
    } <= ids, ids
    assert "server.dev_server" not in ids
    assert body["worker"]["server"].startswith("gunicorn/")
    assert body["status"] == "fail"
    cookie = next(f for f in body["findings"] if f["id"] == "cookies.observed_insecure")
    assert cookie["message"] == (
        "The app sent the cookie 'prefs' without Secure and HttpOnly (5 of 5 times)."
    )


def test_proper_app_behind_nginx(project: Path) -> None:
    """ProxyFix, security headers, 3 workers, timeout 30, max_requests with jitter, behind
    nginx sending X-Forwarded-Proto https: no proxy, server or header finding on any
    worker that answers."""
    args = ["-w", "3", "--timeout", "30", "--max-requests", "1000", "--max-requests-jitter", "100"]
    unwanted = {
        "proxy.missing_proxyfix",
        "proxy.no_forwarded_proto",
        "proxy.scheme_mismatch",
        "proxy.too_many_hops",
        "server.workers",
        "server.timeout",
        "server.dev_server",
        "server.max_requests_jitter",
        "headers.hsts",
        "headers.csp",
        "headers.nosniff",
        "headers.framing",
        "cookies.observed_insecure",
        "static.served_by_app",
    }
    with (
        gunicorn(project, "proper:app", args, ENV) as upstream,
        nginx(project, upstream, [FORWARD_PROTO]) as port,
    ):
        browse(port, ("/",), rounds=20)
        workers_seen = set()
        # Sync workers answer one request at a time, so concurrent reports spread over
        # several workers; which worker accepts is up to the kernel, hence a bounded retry.
        with ThreadPoolExecutor(3) as pool:
            for _ in range(10):
                for body in pool.map(lambda _: report(port), range(3)):
                    workers_seen.add(body["worker"]["pid"])
                    assert not (fired(body) & unwanted), (body["worker"], fired(body) & unwanted)
                    assert result_of(body, "server.workers") == "pass"
                if len(workers_seen) >= 2:
                    break
    assert len(workers_seen) >= 2  # the reports came from more than one worker


def test_too_many_hops_behind_one_nginx(project: Path) -> None:
    """ProxyFix(x_for=3) behind a single nginx: proxy.too_many_hops."""
    with (
        gunicorn(project, "proper:app", ["-w", "1"], {**ENV, "X_FOR": "3"}) as upstream,
        nginx(project, upstream, [FORWARD_PROTO]) as port,
    ):
        browse(port, ("/",), rounds=12)  # above the minimum sample of a live verdict
        body = report(port)
    hops = next(f for f in body["findings"] if f["id"] == "proxy.too_many_hops")
    assert hops["message"].startswith(
        "ProxyFix trusts 3 X-Forwarded-For hops, but requests arrive with chains of 1"
    )


def test_forwarded_address_reaches_the_app(project: Path) -> None:
    """Behind nginx with ProxyFix, the app sees the client's address, not the proxy's."""
    extra = """
@app.route("/whoami")
def whoami():
    from flask import request
    return f"{request.remote_addr} {request.scheme}"
"""
    (project / "proper_whoami.py").write_text(textwrap.dedent(PROPER) + extra)
    with (
        gunicorn(project, "proper_whoami:app", ["-w", "1"], ENV) as upstream,
        nginx(project, upstream, [FORWARD_PROTO]) as port,
    ):
        answer = fetch(port, "/whoami", source=CLIENT_ADDRESS)
    assert answer.body == f"{CLIENT_ADDRESS} https".encode()


def test_flask_run_is_the_dev_server(project: Path) -> None:
    """Served by `flask run`: server.dev_server, critical."""
    with flask_run(project, "naked", ENV) as port:
        browse(port, ("/",), rounds=1)
        body = report(port)
    finding = next(f for f in body["findings"] if f["id"] == "server.dev_server")
    assert finding["level"] == "critical"
    assert body["worker"]["server"].startswith("Werkzeug/")


def test_cli_gunicorn_config(project: Path) -> None:
    """`flask readiness --gunicorn-config` on a bad file: bind, workers and timeout."""
    conf = project / "bad.conf.py"
    conf.write_text("bind = '0.0.0.0:8000'\nworkers = 1\ntimeout = 0\n")
    done = readiness(project, "--tag", "gunicorn", "--gunicorn-config", str(conf), "--format",
                     "json")  # fmt: skip
    body = json.loads(done.stdout)
    assert {"server.bind_public", "server.workers", "server.timeout"} <= fired(body)
    assert done.returncode == 0  # warnings only: below the default --fail-level error
    without = readiness(project, "--tag", "gunicorn", "--format", "json")
    assert result_of(json.loads(without.stdout), "server.workers") == "skipped"


def test_cli_gunicorn_config_missing_file(project: Path) -> None:
    """A missing gunicorn file is a one-line usage error, exit 2."""
    done = readiness(project, "--gunicorn-config", str(project / "nope.conf.py"))
    assert done.returncode == 2
    assert done.stderr.startswith("Error: could not read the gunicorn config")
    assert len(done.stderr.splitlines()) == 1
