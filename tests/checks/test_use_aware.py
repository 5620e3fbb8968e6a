"""Checks that judge a setting by how the app's own code uses it.

Each test writes a real project (a package with views, e-mail helpers, CLI commands) to a
temporary folder, imports it, builds the app with its factory and runs the check through
the runner, as ``flask readiness`` does.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_prodready.checks._code_use import clear_cache

from ..support import GOOD_CONFIG, messages_of, outcome_of

BuildApp = Callable[..., Flask]

FACTORY = """
from flask import Flask
from flask_login import LoginManager
from flask_prodready import ProdReady

login_manager = LoginManager()


def create_app(config):
    app = Flask(__name__)
    app.config.update(config)
    login_manager.init_app(app)
    from . import views
    app.register_blueprint(views.bp)
    from . import commands
    commands.register(app)
    ProdReady(app)
    return app
"""

VIEWS = """
from flask import Blueprint, redirect, request, url_for
from flask_login import login_user

from .email import send_reset_email

bp = Blueprint("main", __name__)


class User:
    id = 1
    email = "someone@example.com"


@bp.route("/")
def index():
    return "home"


@bp.route("/login", methods=["POST"])
def login():
    login_user(User(){remember})
    return redirect(url_for("main.index"))


@bp.route("/reset", methods=["POST"])
def reset_request():
    send_reset_email(User())
    return "sent"


@bp.route("/feed")
def feed():
    return {{"self": url_for("main.feed"{feed_external})}}
"""

EMAIL = """
from flask import url_for


def send_email(subject, recipients, body):
    print(subject, recipients, body)  # stands for mail.send(Message(...))


def send_reset_email(user):
    link = url_for("main.index", token="t0k3n"{reset_external})
    send_email("Reset your password", [user.email], link)
"""

COMMANDS = """
from flask import url_for


def register(app):
    @app.cli.command("digest")
    def digest():
        print(url_for("main.index"{cli_external}))
"""

_numbers = itertools.count()


@pytest.fixture
def build_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BuildApp]:
    """``build_app(**code_options, config=...)``: write the project, import its package
    (a fresh name each time) and return the app its factory makes."""
    made: list[str] = []

    def build(config: dict[str, Any] | None = None, **options: str) -> Flask:
        code = {
            "remember": "",
            "feed_external": "",
            "reset_external": "",
            "cli_external": "",
            **options,
        }
        project = tmp_path / f"project{next(_numbers)}"
        package_name = f"useapp{next(_numbers)}"
        package = project / package_name
        package.mkdir(parents=True)
        (project / "pyproject.toml").write_text('[project]\nname = "useapp"\n')
        (package / "__init__.py").write_text(FACTORY)
        (package / "views.py").write_text(VIEWS.format(**code))
        (package / "email.py").write_text(EMAIL.format(**code))
        (package / "commands.py").write_text(COMMANDS.format(**code))
        monkeypatch.syspath_prepend(str(project))
        made.append(package_name)
        module = importlib.import_module(package_name)
        app: Flask = module.create_app({**GOOD_CONFIG, **(config or {})})
        return app

    clear_cache()
    yield build
    clear_cache()
    for name in list(sys.modules):
        if name.split(".")[0] in made:
            del sys.modules[name]


def line_of(app: Flask, file: str, text: str) -> int:
    """The line of ``file`` (in the app's package) that holds ``text``."""
    lines = (Path(app.root_path) / file).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def package_file(app: Flask, file: str) -> str:
    """``file`` as the scan names it: relative to the project folder."""
    return f"{Path(app.root_path).name}/{file}"


class TestRememberSecure:
    def test_skipped_without_remember(self, build_app: BuildApp) -> None:
        """Flask-Login set up, but login_user never asks to remember and no REMEMBER_COOKIE_*
        setting: no finding, skipped saying what was looked for."""
        app = build_app()
        outcome = outcome_of(app, "cookies.remember_secure")
        assert outcome.findings == ()
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the app never issues Flask-Login's remember cookie: no login_user(..., "
            f"remember=...) in 4 .py files under {Path(app.root_path).parent}, no "
            "REMEMBER_COOKIE_* setting",
        )

    def test_skipped_with_remember_false(self, build_app: BuildApp) -> None:
        """login_user(user, remember=False) issues no remember cookie: skipped."""
        app = build_app(remember=", remember=False")
        assert outcome_of(app, "cookies.remember_secure").status.value == "skipped"

    def test_fires_with_remember_true(self, build_app: BuildApp) -> None:
        """login_user(user, remember=True) with the default cookie settings: a warning that
        names the call."""
        app = build_app(remember=", remember=True")
        line = line_of(app, "views.py", "login_user(User()")
        assert messages_of(app, "cookies.remember_secure") == [
            (
                "warning",
                "REMEMBER_COOKIE_SECURE is off: the long-lived login cookie travels over HTTP "
                "(the app issues it: login_user(..., remember=...) in login() in "
                f"{package_file(app, 'views.py')}:{line}).",
            )
        ]

    def test_fires_with_remember_from_the_form(self, build_app: BuildApp) -> None:
        """remember=<an expression> (the "remember me" box) may be true: a warning."""
        app = build_app(remember=", remember=request.form.get('remember') == 'y'")
        assert [level for level, _ in messages_of(app, "cookies.remember_secure")] == ["warning"]

    def test_quiet_when_secure(self, build_app: BuildApp) -> None:
        """remember=True and REMEMBER_COOKIE_SECURE on: no finding."""
        app = build_app(config={"REMEMBER_COOKIE_SECURE": True}, remember=", remember=True")
        assert messages_of(app, "cookies.remember_secure") == []

    def test_fires_on_the_cookie_seen_live(self, build_app: BuildApp) -> None:
        """Live, a remember_token cookie the server sent counts, whatever the source says."""
        app = build_app()

        @app.route("/legacy-login")
        def legacy_login() -> Any:
            response = app.make_response("ok")
            response.set_cookie("remember_token", "1|abc", secure=True, httponly=True)
            return response

        client = app.test_client()
        client.get("/legacy-login")
        for _ in range(10):
            client.get("/")
        assert messages_of(app, "cookies.remember_secure", "live") == [
            (
                "warning",
                "REMEMBER_COOKIE_SECURE is off: the long-lived login cookie travels over HTTP "
                "(the app issues it: the server sent the 'remember_token' cookie).",
            )
        ]


class TestPreferredUrlScheme:
    def test_info_with_external_urls_only_in_views(self, build_app: BuildApp) -> None:
        """url_for(_external=True) only in a view (its scheme is the request's): info."""
        app = build_app(config={"PREFERRED_URL_SCHEME": "http"}, feed_external=", _external=True")
        assert messages_of(app, "config.preferred_url_scheme") == [
            (
                "info",
                "PREFERRED_URL_SCHEME is 'http', not 'https'. No url_for(_external=True) "
                f"outside request handlers was found in 4 .py files under "
                f"{Path(app.root_path).parent}; inside a request the scheme comes from the "
                "request, so only links built elsewhere (a template rendered by a job, a "
                "library) would say http.",
            )
        ]

    def test_warning_with_an_external_url_in_a_cli_command(self, build_app: BuildApp) -> None:
        """url_for(_external=True) in an @app.cli.command function: a warning naming it."""
        app = build_app(config={"PREFERRED_URL_SCHEME": "http"}, cli_external=", _external=True")
        line = line_of(app, "commands.py", "url_for(")
        assert messages_of(app, "config.preferred_url_scheme") == [
            (
                "warning",
                "PREFERRED_URL_SCHEME is 'http', not 'https', and the app builds external URLs "
                f"outside a request (digest() in {package_file(app, 'commands.py')}:{line}), "
                "where this setting picks the scheme: those links say http.",
            )
        ]

    def test_quiet_with_https(self, build_app: BuildApp) -> None:
        """https, with external URLs built in a CLI command: no finding."""
        app = build_app(cli_external=", _external=True")
        assert messages_of(app, "config.preferred_url_scheme") == []


class TestTrustedHosts:
    def test_warning_for_a_reset_link_built_from_the_host(self, build_app: BuildApp) -> None:
        """A view that mails a reset link built with url_for(_external=True): a warning
        naming the helper that sends the mail."""
        app = build_app(
            config={"TRUSTED_HOSTS": None, "SERVER_NAME": None}, reset_external=", _external=True"
        )
        line = line_of(app, "email.py", "url_for(")
        assert messages_of(app, "config.trusted_hosts") == [
            (
                "warning",
                "Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted, and the app "
                "builds absolute URLs from it (in a function that sends e-mail, "
                f"send_reset_email() in {package_file(app, 'email.py')}:{line}), so a forged "
                "Host header can point those links, such as a password reset, at another site.",
            )
        ]

    def test_info_without_absolute_urls(self, build_app: BuildApp) -> None:
        """Only relative URLs, no request.host_url: info."""
        app = build_app(config={"TRUSTED_HOSTS": None, "SERVER_NAME": None})
        assert messages_of(app, "config.trusted_hosts") == [
            (
                "info",
                "Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted (no "
                "absolute URL built from the request's host was found in 4 .py files under "
                f"{Path(app.root_path).parent}).",
            )
        ]

    def test_quiet_with_trusted_hosts(self, build_app: BuildApp) -> None:
        """TRUSTED_HOSTS set, reset links built from the host: no finding."""
        app = build_app(reset_external=", _external=True")
        assert messages_of(app, "config.trusted_hosts") == []
