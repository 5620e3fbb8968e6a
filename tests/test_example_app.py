"""The example app without a server: its configurations, its page and its custom check.

Every app here keeps its instance folder (and SQLite file) in ``tmp_path``, and the
environment variables the app reads are removed first, so the tests see exactly the
environment they set, whatever the shell or the working directory.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from example_app import create_app, db
from example_app.config import DEV_SECRET_KEY, database_url, trusted_hosts
from flask_prodready.extension import get_state
from flask_prodready.findings import CheckOutcome, Status

#: Every variable the example app reads, removed before each test.
APP_VARIABLES = (
    "FLASK_CONFIG",
    "FLASK_DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "PRODREADY_TOKEN",
    "TRUSTED_HOSTS",
    "EXAMPLE_INSTANCE_PATH",
)
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
    and its readiness report flags ``config.debug`` as critical."""
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

    report = get_state(app).build_report(app, mode="cli", tags=["config", "cookies"])
    assert [f.id for f in report.findings] == []


def test_trusted_hosts_come_from_a_comma_separated_variable() -> None:
    """TRUSTED_HOSTS is split on commas with blanks dropped; empty means the loopback names."""
    assert trusted_hosts({"TRUSTED_HOSTS": " example.com, .example.org ,,"}) == [
        "example.com",
        ".example.org",
    ]
    assert trusted_hosts({"TRUSTED_HOSTS": " , "}) == ["localhost", "127.0.0.1"]
    assert trusted_hosts({}) == ["localhost", "127.0.0.1"]


def test_database_url_defaults_to_sqlite_and_fixes_postgres_scheme(tmp_path: Path) -> None:
    """DATABASE_URL is used as given, ``postgres://`` becomes ``postgresql://``, and unset
    means a SQLite file in the instance folder."""
    assert database_url({}, str(tmp_path)) == f"sqlite:///{tmp_path}/example.sqlite"
    assert database_url({"DATABASE_URL": "postgres://u@db/app"}, "/x") == "postgresql://u@db/app"
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
