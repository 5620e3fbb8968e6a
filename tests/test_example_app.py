"""The example app without a server: its configurations, its page, its production
layers (migrations, ProxyFix, security headers, Sentry, logging, /livez) and its custom
check.

Every app here keeps its instance folder (and SQLite file) in ``tmp_path``, and the
environment variables the app reads are removed first, so the tests see exactly the
environment they set, whatever the shell or the working directory.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request

from .stacks import EXAMPLE_APP_NEEDS_SQLALCHEMY_2, SQLALCHEMY

if SQLALCHEMY < (2, 0):
    pytest.skip(EXAMPLE_APP_NEEDS_SQLALCHEMY_2, allow_module_level=True)

from example_app import LIVENESS_PATH, create_app, db
from example_app.config import (
    CONNECT_TIMEOUT,
    DEV_SECRET_KEY,
    PRODUCTION_SECURITY_HEADERS,
    database_url,
    engine_options,
    log_level,
    proxy_hops,
    sentry_options,
    trusted_hosts,
)
from flask_prodready.checks.proxy import proxy_trust
from flask_prodready.engine.findings import CheckOutcome, Status
from flask_prodready.engine.state import get_state

#: Every variable the example app reads, removed before each test.
APP_VARIABLES = (
    "FLASK_CONFIG",
    "FLASK_DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "PRODREADY_TOKEN",
    "TRUSTED_HOSTS",
    "EXAMPLE_INSTANCE_PATH",
    "PROXY_HOPS",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
)
#: A PostgreSQL URL nobody answers: production never connects at start-up, and the
#: checks below read the engine's settings without connecting.
POSTGRES_URL = "postgresql://app@db.invalid:5432/app"
#: Made at run time: a key written in this file would be "in the source" of the project.
STRONG_KEY = secrets.token_hex(32)
TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _no_app_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test with none of the variables the example app reads."""
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``create_app`` with its instance folder in ``tmp_path``; engines closed afterwards."""
    apps: list[Flask] = []

    def factory(config_name: str | None = None) -> Flask:
        app = create_app(config_name, instance_path=str(tmp_path / "instance"))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def outcome(app: Flask, check_id: str) -> CheckOutcome:
    """How one check ends on ``app``, run through the real runner as the CLI would."""
    state = get_state(app)
    check = state.registry.get(check_id)
    assert check is not None, check_id
    return state.build_report(app, mode="cli", checks=[check]).outcomes[check_id]


def test_development_without_environment_runs_on_sqlite_and_fails_debug(
    build: Callable[..., Flask], tmp_path: Path
) -> None:
    """With no environment at all the app is development, on SQLite in the instance folder,
    with its tables created and stamped at the migrations head, and its readiness report
    flags ``config.debug`` as critical."""
    app = build()

    assert app.config["FLASK_CONFIG"] == "development"
    assert app.debug is True
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    database = tmp_path / "instance" / "example.sqlite"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    assert database.is_file()

    report = app.extensions["prodready"].build_report(app, mode="cli")
    debug = [f for f in report.findings if f.id == "config.debug"]
    assert debug
    assert debug[0].level.value == "critical"
    assert report.status is Status.FAIL
    assert report.outcomes["example.database_file"].status is Status.PASS
    assert report.outcomes["database.migrations"].status is Status.PASS
    assert app.logger.getEffectiveLevel() == logging.DEBUG


def test_development_leaves_an_existing_database_alone(
    build: Callable[..., Flask], tmp_path: Path
) -> None:
    """A database that has tables already is neither created again nor stamped: changing
    it is ``flask db upgrade``'s job."""
    database = tmp_path / "instance" / "example.sqlite"
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE other (id INTEGER PRIMARY KEY)")

    build()

    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"other"}


def test_production_creates_no_table(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production touches no database at start-up (``flask db upgrade`` makes the tables),
    and ``database.migrations`` says the database has no migration applied."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    app = build("production")

    assert not (tmp_path / "instance" / "example.sqlite").exists()
    result = outcome(app, "database.migrations")
    assert result.status is Status.FAIL
    assert "has no migration applied" in result.findings[0].message


def test_production_without_secret_key_refuses_to_start(build: Callable[..., Flask]) -> None:
    """The production configuration raises a RuntimeError naming SECRET_KEY when it is unset."""
    with pytest.raises(RuntimeError, match="SECRET_KEY environment variable"):
        build("production")


def test_production_from_flask_config_with_blank_key_refuses_to_start(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLASK_CONFIG=production selects production, and a blank SECRET_KEY counts as unset."""
    monkeypatch.setenv("FLASK_CONFIG", "production")
    monkeypatch.setenv("SECRET_KEY", "   ")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        build()


def test_production_configuration_is_hardened(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production reads key and token from the environment and hardens debug, cookies,
    body size, URL scheme and hosts, so the config and cookie checks all pass."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("PRODREADY_TOKEN", TOKEN)
    app = build("production")

    assert app.debug is False
    assert app.config["SECRET_KEY"] == STRONG_KEY
    assert app.config["PRODREADY_TOKEN"] == TOKEN
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    assert app.config["TRUSTED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert app.config["PRODREADY_HEALTHZ_CHECKS"] == ["database.unreachable"]
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True}
    assert app.logger.getEffectiveLevel() == logging.INFO

    report = get_state(app).build_report(
        app, mode="cli", tags=["config", "cookies", "headers", "monitoring"]
    )
    assert [f.id for f in report.findings] == ["monitoring.error_tracking"]
    assert report.outcomes["monitoring.logging"].status is Status.PASS


def test_production_engine_has_pre_ping_a_bounded_pool_and_a_connect_timeout(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, production's engine tests connections before use, bounds its pool
    and gives psycopg a connect timeout: database.pre_ping and database.connect_timeout
    pass, judged from the settings without connecting."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("DATABASE_URL", POSTGRES_URL)
    app = build("production")

    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://app@db.invalid:5432/app"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 10,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT},
    }
    assert outcome(app, "database.pre_ping").status is Status.PASS
    assert outcome(app, "database.connect_timeout").status is Status.PASS


def test_engine_options_follow_the_driver() -> None:
    """SQLite gets pre-ping only; pg8000 names its connect timeout ``timeout``; a backend
    with no known timeout argument gets a bounded pool without one."""
    assert engine_options("sqlite:////srv/app.db") == {"pool_pre_ping": True}
    assert engine_options("postgresql+pg8000://u@db/app")["connect_args"] == {
        "timeout": CONNECT_TIMEOUT
    }
    assert engine_options("mysql+pymysql://u@db/app")["connect_args"] == {
        "connect_timeout": CONNECT_TIMEOUT
    }
    assert "connect_args" not in engine_options("mssql+pyodbc://u@db/app")


def test_production_trusts_one_proxy_with_proxyfix(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production wraps the app in ProxyFix(x_for=1, x_proto=1), where the proxy checks
    find it: the client's address and scheme come from X-Forwarded-For and -Proto."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    app = build("production")

    @app.get("/whoami")
    def whoami() -> str:
        return f"{request.remote_addr} {request.scheme}"

    # Found by the proxy.* checks through the /livez middleware around it.
    trust = proxy_trust(app)
    assert trust is not None
    assert (trust.name, trust.x_for, trust.x_proto) == ("ProxyFix", 1, 1)
    answer = app.test_client().get(
        "/whoami", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert answer.get_data(as_text=True) == "203.0.113.7 https"


def test_development_has_no_proxyfix_and_proxy_hops_come_from_the_environment(
    build: Callable[..., Flask],
) -> None:
    """Development is not behind a proxy (no ProxyFix); PROXY_HOPS sets production's hop
    count, and a value that is not a count is refused."""
    app = build()

    assert proxy_trust(app) is None
    assert proxy_hops({}, 1) == 1
    assert proxy_hops({"PROXY_HOPS": " 2 "}, 1) == 2
    assert proxy_hops({"PROXY_HOPS": "0"}, 1) == 0
    with pytest.raises(ValueError, match="PROXY_HOPS='-1'"):
        proxy_hops({"PROXY_HOPS": "-1"}, 1)


def test_production_adds_security_headers_and_keeps_a_view_s_own(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every production response, error pages included, carries the security headers; a
    view that sets one of them keeps its own value."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    app = build("production")

    @app.get("/embeddable")
    def embeddable() -> Response:
        response = Response("framed")
        response.headers["Content-Security-Policy"] = "frame-ancestors https://partner.example"
        return response

    client = app.test_client()
    missing = client.get("/no-such-page", base_url="https://localhost")
    assert missing.status_code == 404
    for name, value in PRODUCTION_SECURITY_HEADERS.items():
        assert missing.headers[name] == value
    own = client.get("/embeddable", base_url="https://localhost")
    assert own.headers["Content-Security-Policy"] == "frame-ancestors https://partner.example"
    assert own.headers["X-Content-Type-Options"] == "nosniff"


def test_development_adds_no_security_headers(build: Callable[..., Flask]) -> None:
    """Development sends no HSTS (a browser would pin localhost to HTTPS) nor the rest."""
    answer = build().test_client().get("/no-such-page")

    assert "Strict-Transport-Security" not in answer.headers
    assert "Content-Security-Policy" not in answer.headers


def test_livez_answers_before_flask_and_trusted_hosts(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET and HEAD /livez answer 200 ``ok`` for any Host, without a cookie; another
    method goes on to the app; a Host outside TRUSTED_HOSTS is refused everywhere else."""
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    client = build("production").test_client()
    pod = "http://10.0.0.9"

    live = client.get(LIVENESS_PATH, base_url=pod)
    assert (live.status_code, live.get_data()) == (200, b"ok\n")
    assert live.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in live.headers
    head = client.head(LIVENESS_PATH, base_url=pod)
    assert (head.status_code, head.get_data()) == (200, b"")
    assert client.post(LIVENESS_PATH, base_url="https://localhost").status_code == 404
    assert client.get("/", base_url=pod).status_code == 400


def test_sentry_is_initialised_only_with_a_dsn(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SENTRY_DSN, Sentry is left alone; with it, ``sentry_sdk.init`` gets the
    DSN, the configuration's name as environment (unless SENTRY_ENVIRONMENT says
    otherwise), SENTRY_RELEASE, and no personal data."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("sentry_sdk.init", lambda **options: calls.append(options))
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    build("production")
    assert calls == []

    dsn = "https://public@sentry.invalid/1"
    monkeypatch.setenv("SENTRY_DSN", dsn)
    monkeypatch.setenv("SENTRY_RELEASE", "abc123")
    build("production")
    assert calls == [
        {"dsn": dsn, "environment": "production", "release": "abc123", "send_default_pii": False}
    ]
    assert sentry_options({"SENTRY_DSN": dsn, "SENTRY_ENVIRONMENT": "staging"}, "production") == {
        "dsn": dsn,
        "environment": "staging",
        "release": None,
        "send_default_pii": False,
    }
    assert sentry_options({"SENTRY_DSN": "  "}, "production") is None


def test_sentry_dsn_without_sentry_sdk_refuses_to_start(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DSN that cannot be honoured (sentry-sdk missing) fails at start-up, naming it."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.invalid/1")

    with pytest.raises(RuntimeError, match="pip install sentry-sdk"):
        build()


def test_log_level_comes_from_the_environment(
    build: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOG_LEVEL sets the app logger's level, in any case; an unknown level is refused."""
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert build().logger.getEffectiveLevel() == logging.WARNING
    assert log_level({}, "INFO") == "INFO"
    with pytest.raises(ValueError, match="LOG_LEVEL='VERBOSE'"):
        log_level({"LOG_LEVEL": "verbose"}, "INFO")


def test_trusted_hosts_come_from_a_comma_separated_variable() -> None:
    """TRUSTED_HOSTS is split on commas with blanks dropped; empty means the loopback names."""
    assert trusted_hosts({"TRUSTED_HOSTS": " example.com, .example.org ,,"}) == [
        "example.com",
        ".example.org",
    ]
    assert trusted_hosts({"TRUSTED_HOSTS": " , "}) == ["localhost", "127.0.0.1"]
    assert trusted_hosts({}) == ["localhost", "127.0.0.1"]


def test_database_url_defaults_to_sqlite_and_picks_psycopg(tmp_path: Path) -> None:
    """Unset DATABASE_URL means a SQLite file in the instance folder; ``postgres://`` and
    ``postgresql://`` use psycopg 3; a URL naming its driver, or another database, is
    used as given."""
    psycopg = "postgresql+psycopg://u@db/app"
    assert database_url({}, str(tmp_path)) == f"sqlite:///{tmp_path}/example.sqlite"
    assert database_url({"DATABASE_URL": "postgres://u@db/app"}, "/x") == psycopg
    assert database_url({"DATABASE_URL": "postgresql://u@db/app"}, "/x") == psycopg
    assert database_url({"DATABASE_URL": "postgresql+psycopg2://u@db/app"}, "/x") == (
        "postgresql+psycopg2://u@db/app"
    )
    assert database_url({"DATABASE_URL": "mysql://u@db/app"}, "/x") == "mysql://u@db/app"


def test_unknown_configuration_name_is_refused(build: Callable[..., Flask]) -> None:
    """An unknown FLASK_CONFIG fails with the known names instead of falling back to debug."""
    with pytest.raises(ValueError, match="development, production, testing"):
        build("prod")


def test_home_page_counts_visits_and_links_its_stylesheet(build: Callable[..., Flask]) -> None:
    """``/`` counts visits in the session and in the database and links the static CSS."""
    client = build().test_client()

    first = client.get("/")
    assert first.status_code == 200
    assert first.mimetype == "text/html"
    assert "/static/style.css" in first.get_data(as_text=True)
    second = client.get("/").get_data(as_text=True)
    assert '<strong class="count">2</strong>' in second

    stylesheet = client.get("/static/style.css")
    assert stylesheet.status_code == 200
    assert stylesheet.mimetype == "text/css"
    stylesheet.close()


def test_database_file_check_reports_a_missing_folder(
    build: Callable[..., Flask], tmp_path: Path
) -> None:
    """``example.database_file`` warns when the SQLite file's folder does not exist."""
    app = build()
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'gone' / 'app.sqlite'}"

    result = outcome(app, "example.database_file")

    assert result.status is Status.FAIL
    assert [(f.level.value, f.tags) for f in result.findings] == [
        ("warning", ("example", "database"))
    ]
    assert "does not exist" in result.findings[0].message


def test_database_file_check_skips_without_a_sqlite_file(build: Callable[..., Flask]) -> None:
    """``example.database_file`` is skipped, with the reason, for in-memory SQLite and for
    other databases: it cannot judge there, so it never claims a pass."""
    app = build("testing")
    memory = outcome(app, "example.database_file")
    assert memory.status is Status.SKIPPED
    assert "in memory" in (memory.reason or "")

    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql://app@db.internal/app"
    other = outcome(app, "example.database_file")
    assert other.status is Status.SKIPPED
    assert "not SQLite" in (other.reason or "")
