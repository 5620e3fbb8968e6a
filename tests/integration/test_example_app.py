"""The example app under real gunicorn on loopback, and ``python -m example_app.demo``.

One gunicorn (production configuration, two workers, a random key and token, a
temporary instance folder whose SQLite database ``flask db upgrade`` made first, as a
deploy does) serves the whole module; it is stopped by its PID at the end. Requests go
through ``http.client`` so that every header, repeated ``Set-Cookie`` included, is seen
as sent.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..support import result_of
from .processes import PROJECT_ROOT, fetch, gunicorn

DEMO_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
#: Variables of the outer environment that would change the app under test.
DROPPED_VARIABLES = (
    "DATABASE_URL",
    "FLASK_APP",
    "FLASK_CONFIG",
    "FLASK_DEBUG",
    "PRODREADY_TOKEN",
    "SECRET_KEY",
    "TRUSTED_HOSTS",
    "EXAMPLE_INSTANCE_PATH",
    "PROXY_HOPS",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "GUNICORN_BIND",
    "GUNICORN_CMD_ARGS",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
)


@dataclass(frozen=True)
class Server:
    """The running gunicorn: its port, its master's PID and the report's bearer token."""

    port: int
    token: str
    instance_path: Path


def flask_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``flask --app example_app ARGS`` in ``env``, bounded, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "example_app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def production_environment(instance_path: Path, token: str) -> dict[str, str]:
    """The production configuration with a random key, ``token`` and SQLite in
    ``instance_path``."""
    env = base_environment()
    env.update(
        FLASK_CONFIG="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        PRODREADY_TOKEN=token,
        EXAMPLE_INSTANCE_PATH=str(instance_path),
    )
    return env


def base_environment() -> dict[str, str]:
    """This process's environment without what would change the app, plus the project on
    ``PYTHONPATH`` so ``example_app`` imports whatever the working directory."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example app, production configuration, under gunicorn with two workers, after
    ``flask db upgrade``."""
    folder = tmp_path_factory.mktemp("example-gunicorn")
    token = secrets.token_urlsafe(32)
    env = production_environment(folder / "instance", token)
    upgraded = flask_command("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    with gunicorn(PROJECT_ROOT, "example_app.wsgi:app", ["-w", "2"], env, logs=folder) as port:
        yield Server(port=port, token=token, instance_path=folder / "instance")


@pytest.mark.integration
def test_healthz_answers_pass_without_a_cookie(server: Server) -> None:
    """GET /healthz is 200 application/health+json {"status": "pass"} and sets no cookie."""
    answer = fetch(server.port, "/healthz")

    assert answer.status == 200
    assert answer.headers.get_content_type() == "application/health+json"
    assert answer.json() == {"status": "pass"}
    assert answer.headers.get_all("Set-Cookie") is None


@pytest.mark.integration
def test_healthz_answers_head(server: Server) -> None:
    """HEAD /healthz is 200 with the health content type and no body."""
    answer = fetch(server.port, "/healthz", method="HEAD")

    assert answer.status == 200
    assert answer.headers.get_content_type() == "application/health+json"
    assert answer.body == b""


@pytest.mark.integration
def test_readiness_without_token_is_401(server: Server) -> None:
    """GET /_readiness without a token is 401 with a Bearer challenge."""
    answer = fetch(server.port, "/_readiness")

    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.integration
def test_readiness_with_token_comes_from_a_gunicorn_worker(server: Server) -> None:
    """With the token, /_readiness is a JSON report made in a gunicorn worker process,
    which lists the app's own check ``example.database_file`` as passed."""
    answer = fetch(server.port, "/_readiness", headers={"Authorization": f"Bearer {server.token}"})

    assert answer.status in (200, 503)
    assert answer.headers.get_content_type() == "application/health+json"
    report = answer.json()
    assert report["status"] in ("pass", "warn", "fail")
    assert report["worker"]["server"].startswith("gunicorn/")
    assert report["worker"]["pid"] != os.getpid()
    assert result_of(report, "example.database_file") == "pass"
    assert server.token not in answer.body.decode()


@pytest.mark.integration
def test_home_page_sets_a_secure_httponly_session_cookie(server: Server) -> None:
    """GET / renders the page, links its stylesheet, and sets the session cookie with
    Secure and HttpOnly; sending the cookie back continues the session."""
    answer = fetch(server.port, "/")

    assert answer.status == 200
    assert answer.headers.get_content_type() == "text/html"
    assert b"/static/style.css" in answer.body
    cookies = answer.headers.get_all("Set-Cookie") or []
    session = [c for c in cookies if c.startswith("session=")]
    assert len(session) == 1
    flags = {part.strip().lower() for part in session[0].split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags

    again = fetch(server.port, "/", headers={"Cookie": session[0].split(";")[0]})
    assert b'<strong class="count">2</strong>' in again.body

    stylesheet = fetch(server.port, "/static/style.css")
    assert stylesheet.status == 200
    assert stylesheet.headers.get_content_type() == "text/css"


@pytest.mark.integration
def test_pages_carry_the_security_headers(server: Server) -> None:
    """Production adds HSTS, a CSP with frame-ancestors, nosniff, X-Frame-Options and a
    Referrer-Policy to the app's pages and error pages, from an after_request hook."""
    for path, status in (("/", 200), ("/no-such-page", 404)):
        answer = fetch(server.port, path)

        assert answer.status == status
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.integration
def test_livez_answers_any_host(server: Server) -> None:
    """GET /livez is ``200 ok`` whatever the Host, while the app itself answers a Host
    outside TRUSTED_HOSTS with 400."""
    host = {"Host": "10.0.0.9"}

    livez = fetch(server.port, "/livez", headers=host)
    page = fetch(server.port, "/", headers=host)

    assert (livez.status, livez.body) == (200, b"ok\n")
    assert livez.headers.get_all("Set-Cookie") is None
    assert page.status == 400


@pytest.mark.integration
def test_production_creates_no_table_and_migrations_report_it(tmp_path: Path) -> None:
    """Production touches no database at start: before ``flask db upgrade``,
    ``flask readiness`` reports ``database.migrations`` (no migration applied); after it,
    the check passes."""
    env = production_environment(tmp_path / "instance", secrets.token_urlsafe(32))

    before = flask_command("readiness", "--format", "json", "--tag", "database", env=env)
    upgraded = flask_command("db", "upgrade", env=env)
    after = flask_command("readiness", "--format", "json", "--tag", "database", env=env)

    assert before.returncode == 1, before.stdout + before.stderr
    findings = {f["id"]: f for f in json.loads(before.stdout)["findings"]}
    assert "has no migration applied" in findings["database.migrations"]["message"]
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert result_of(json.loads(after.stdout), "database.migrations") == "pass"


@pytest.mark.integration
def test_demo_once_shows_both_reports_and_stops_gunicorn(tmp_path: Path) -> None:
    """``python -m example_app.demo --once`` starts gunicorn, prints the /healthz and
    /_readiness URLs and the ``flask readiness`` text report, stops gunicorn, exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "example_app.demo", "--once"],
        cwd=tmp_path,
        env=base_environment(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "$ flask --app example_app db upgrade" in out
    assert "-c deploy/gunicorn.conf.py" in out
    assert "/healthz" in out
    assert "/_readiness" in out
    assert "GET /livez -> 200 ok" in out
    assert 'GET /healthz -> 200 {"status": "pass"}' in out
    assert "WARNING   database.sqlite" in out
    # gunicorn started by the demo, by hand: nothing restarts it, and the report says so.
    assert "ERROR     supervision.unsupervised" in out
    assert "$ flask --app example_app readiness --gunicorn-config deploy/gunicorn.conf.py" in out
    assert "flask-prodready · mode cli" in out
    assert "$PRODREADY_TOKEN" in out
    assert out.rstrip().endswith("stopped")

    master = int(out.split("master pid ", 1)[1].split(",", 1)[0])
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)
