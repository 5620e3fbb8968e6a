"""cookies.*: the session and remember-me cookie flags as configured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask, Response
from flask_login import LoginManager

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]


class TestSessionSecure:
    def test_fires(self, make_app: MakeApp) -> None:
        """SESSION_COOKIE_SECURE off is an error."""
        assert messages_of(make_app(SESSION_COOKIE_SECURE=False), "cookies.session_secure") == [
            ("error", "SESSION_COOKIE_SECURE is off: the session cookie travels over HTTP.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """On: no finding."""
        assert messages_of(make_app(), "cookies.session_secure") == []


class TestSessionHttponly:
    def test_fires(self, make_app: MakeApp) -> None:
        """SESSION_COOKIE_HTTPONLY off is an error."""
        app = make_app(SESSION_COOKIE_HTTPONLY=False)
        assert messages_of(app, "cookies.session_httponly") == [
            ("error", "SESSION_COOKIE_HTTPONLY is off: any injected script can steal the session.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """On (Flask's default): no finding."""
        assert messages_of(make_app(), "cookies.session_httponly") == []


class TestSessionSamesite:
    @pytest.mark.parametrize("value", [None, "None"])
    def test_fires(self, make_app: MakeApp, value: str | None) -> None:
        """Unset or None is a warning."""
        app = make_app(SESSION_COOKIE_SAMESITE=value)
        assert messages_of(app, "cookies.session_samesite") == [
            (
                "warning",
                f"SESSION_COOKIE_SAMESITE is {value!r}: the browser sends the session "
                "with cross-site requests.",
            )
        ]

    @pytest.mark.parametrize("value", ["Lax", "Strict"])
    def test_quiet(self, make_app: MakeApp, value: str) -> None:
        """Lax or Strict: no finding."""
        assert (
            messages_of(make_app(SESSION_COOKIE_SAMESITE=value), "cookies.session_samesite") == []
        )


class TestRememberSecure:
    def login_app(self, make_app: MakeApp, **config: object) -> Flask:
        app = make_app(**config)
        LoginManager(app)
        return app

    def test_fires_with_flask_login(self, make_app: MakeApp) -> None:
        """Flask-Login in use, a REMEMBER_COOKIE_* setting and no REMEMBER_COOKIE_SECURE:
        a warning (the setting shows the app issues the cookie)."""
        app = self.login_app(make_app, REMEMBER_COOKIE_DURATION=timedelta(days=30))
        assert messages_of(app, "cookies.remember_secure") == [
            (
                "warning",
                "REMEMBER_COOKIE_SECURE is off: the long-lived login cookie travels over HTTP "
                "(the app issues it: the config sets REMEMBER_COOKIE_DURATION).",
            )
        ]

    def test_quiet_when_secure(self, make_app: MakeApp) -> None:
        """REMEMBER_COOKIE_SECURE on: no finding."""
        app = self.login_app(make_app, REMEMBER_COOKIE_SECURE=True)
        assert messages_of(app, "cookies.remember_secure") == []

    def test_skipped_without_flask_login(self, make_app: MakeApp) -> None:
        """Without Flask-Login there is no remember cookie to judge: skipped with a reason."""
        outcome = outcome_of(make_app(), "cookies.remember_secure")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "Flask-Login is not set up on this app",
        )


class TestObservedInsecure:
    def app_setting(self, make_app: MakeApp, **flags: object) -> Flask:
        app = make_app()

        @app.route("/set")
        def set_cookie() -> Response:
            response = Response("ok")
            response.set_cookie("prefs", "dark-mode-value", **flags)  # type: ignore[arg-type]
            response.set_cookie("csrf_token", "t0k3n-value", secure=True)
            response.delete_cookie("old")
            return response

        client = app.test_client()
        client.get("/set")
        for _ in range(10):  # ordinary traffic: a live verdict needs a sample
            client.get("/nowhere")
        return app

    def test_fires_on_a_cookie_sent_without_flags(self, make_app: MakeApp) -> None:
        """A Set-Cookie actually sent without Secure and HttpOnly is an error, by name only."""
        app = self.app_setting(make_app)
        outcome = outcome_of(app, "cookies.observed_insecure", "live")
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            ("error", "The app sent the cookie 'prefs' without Secure and HttpOnly (1 of 1 times).")
        ]
        assert "dark-mode-value" not in repr(outcome)

    def test_quiet_when_flags_are_set(self, make_app: MakeApp) -> None:
        """Secure and HttpOnly cookies, a secure CSRF cookie for scripts, a deletion: quiet."""
        app = self.app_setting(make_app, secure=True, httponly=True)
        assert messages_of(app, "cookies.observed_insecure", "live") == []

    def test_skipped_without_traffic(self, make_app: MakeApp) -> None:
        """No request seen yet: skipped, not passed."""
        assert outcome_of(make_app(), "cookies.observed_insecure", "live").status.value == "skipped"

    def test_skipped_from_the_cli(self, make_app: MakeApp) -> None:
        """From the CLI no cookie is sent: skipped."""
        assert outcome_of(make_app(), "cookies.observed_insecure").status.value == "skipped"
