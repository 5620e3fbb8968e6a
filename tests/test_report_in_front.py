"""The report answers whatever the app does before requests: a login wall, a forced-https
redirect, a rate limit, a CSRF check on every method, a setup-wizard redirect. Real
Flask-Login, Flask-Talisman, Flask-Limiter and Flask-WTF, through the whole WSGI stack."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, redirect, request
from flask.typing import ResponseReturnValue

from .support import TOKEN

MakeApp = Callable[..., Flask]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPORT_TYPE = "application/health+json"


def login_wall(app: Flask) -> str:
    """Flask-Login with every view behind login_required, through a before_request hook."""
    from flask_login import LoginManager, login_required

    manager = LoginManager(app)
    manager.user_loader(lambda user_id: None)

    @app.before_request
    @login_required
    def everything_needs_a_login() -> None:
        return None

    return "401"


def forced_https(app: Flask) -> str:
    """Flask-Talisman with force_https (its default)."""
    from flask_talisman import Talisman

    Talisman(app, force_https=True)
    return "302"


def rate_limited(app: Flask) -> str:
    """Flask-Limiter with a default limit of 1 request a minute."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    Limiter(get_remote_address, app=app, default_limits=["1/minute"], storage_uri="memory://")
    return "429"


def csrf_on_every_method(app: Flask) -> str:
    """Flask-WTF's CSRF protection, checking GET too (as pgAdmin configures it)."""
    from flask_wtf.csrf import CSRFProtect

    app.config["WTF_CSRF_METHODS"] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    CSRFProtect(app)
    return "400"


def setup_wizard(app: Flask) -> str:
    """A before_request hook sending every request to a setup page until set up."""

    @app.before_request
    def to_the_wizard() -> ResponseReturnValue | None:
        if request.path != "/setup":
            return redirect("/setup")
        return None

    @app.route("/setup")
    def setup() -> str:
        return "set me up"

    return "302"


@pytest.mark.parametrize(
    "install", [login_wall, forced_https, rate_limited, csrf_on_every_method, setup_wizard]
)
def test_the_report_answers_in_front_of_the_apps_hooks(make_app: MakeApp, install: object) -> None:
    """With the token: the report (200 or 503, application/health+json), every time; without
    it: 401; the app's own routes still answer as the app decides."""
    assert callable(install)
    app = make_app()

    @app.route("/page")
    def page() -> str:
        return "a page"

    app_status = install(app)
    client = app.test_client()
    plain = "http://localhost"  # plain http, as a monitor behind a TLS proxy asks
    for _ in range(3):  # a rate limit of 1/minute would refuse the second
        response = client.get("/_readiness", headers=AUTH, base_url=plain)
        assert response.status_code in (200, 503), response.get_data(as_text=True)[:300]
        assert response.headers["Content-Type"] == REPORT_TYPE
        assert "status" in response.get_json(force=True)
        assert "Set-Cookie" not in response.headers
    assert client.get("/_readiness", base_url=plain).status_code == 401
    css = client.get("/_readiness/report.css", base_url=plain)
    assert (css.status_code, css.headers["Content-Type"]) == (200, "text/css; charset=utf-8")
    statuses = {str(client.get("/page", base_url=plain).status_code) for _ in "ab"}
    assert app_status in statuses, statuses


def test_the_apps_hooks_never_run_for_the_report(make_app: MakeApp) -> None:
    """Neither before_request, after_request, teardown nor error handlers of the app run
    when the report is answered (the header checks' own probe request, which goes through
    the app's whole stack on purpose, is left out here)."""
    app = make_app()
    ran: list[str] = []
    app.before_request(lambda: ran.append("before") and None)

    @app.after_request
    def after(response):  # type: ignore[no-untyped-def]
        ran.append("after")
        return response

    app.teardown_request(lambda exc: ran.append("teardown") and None)
    app.register_error_handler(401, lambda exc: ("handled", 200))
    client = app.test_client()
    assert client.get("/_readiness?tag=config", headers=AUTH).status_code in (200, 503)
    assert client.get("/_readiness").status_code == 401
    assert ran == []
