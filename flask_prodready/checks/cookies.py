"""``cookies.*``: the session and remember-me cookie flags as configured.

What cookies the server actually sends (``cookies.observed_insecure``) is judged from
live traffic; these checks read the configuration Flask and Flask-Login use.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.project import project_root
from ..engine.registry import LIVE, check
from ._code_use import code_use
from ._live import observed_traffic

#: The remember cookie's name when ``REMEMBER_COOKIE_NAME`` is not set (Flask-Login's).
REMEMBER_COOKIE_DEFAULT_NAME = "remember_token"


@check(
    "cookies.session_secure",
    level=Level.ERROR,
    tags=["security"],
    title="The session cookie is Secure",
    hint="Set SESSION_COOKIE_SECURE = True so the browser never sends the session over plain HTTP.",
)
def check_session_secure(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.config.get("SESSION_COOKIE_SECURE"):
        yield ctx.finding(
            "SESSION_COOKIE_SECURE is off: the session cookie travels over HTTP.",
            observed=ctx.config.get("SESSION_COOKIE_SECURE"),
        )


@check(
    "cookies.session_httponly",
    level=Level.ERROR,
    tags=["security"],
    title="The session cookie is HttpOnly",
    hint="Set SESSION_COOKIE_HTTPONLY = True (Flask's default) so scripts cannot read the session.",
)
def check_session_httponly(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.config.get("SESSION_COOKIE_HTTPONLY"):
        yield ctx.finding(
            "SESSION_COOKIE_HTTPONLY is off: any injected script can steal the session.",
            observed=ctx.config.get("SESSION_COOKIE_HTTPONLY"),
        )


@check(
    "cookies.session_samesite",
    level=Level.WARNING,
    tags=["security"],
    title="The session cookie has SameSite Lax or Strict",
    hint="Set SESSION_COOKIE_SAMESITE = 'Lax' to stop most cross-site request forgery.",
)
def check_session_samesite(ctx: CheckContext) -> Iterator[Finding]:
    value = ctx.config.get("SESSION_COOKIE_SAMESITE")
    if value is None or str(value).lower() == "none":
        yield ctx.finding(
            f"SESSION_COOKIE_SAMESITE is {value!r}: the browser sends the session "
            "with cross-site requests.",
            observed=value,
        )


@check(
    "cookies.remember_secure",
    level=Level.WARNING,
    tags=["security"],
    title="Flask-Login's remember cookie is Secure",
    hint="Set REMEMBER_COOKIE_SECURE = True (and keep REMEMBER_COOKIE_HTTPONLY on).",
    blocking=True,
)
def check_remember_secure(ctx: CheckContext) -> Iterator[Finding]:
    if getattr(ctx.app, "login_manager", None) is None:
        ctx.skip("Flask-Login is not set up on this app")
    if ctx.config.get("REMEMBER_COOKIE_SECURE"):
        return
    issued = _remember_cookie_issued(ctx)
    if issued is None:
        name = ctx.config.get("REMEMBER_COOKIE_NAME") or REMEMBER_COOKIE_DEFAULT_NAME
        use = code_use(project_root(ctx.app.root_path), wait=ctx.time_left() - 0.05)
        seen = f", no {name!r} cookie in the Set-Cookie headers seen" if ctx.observation else ""
        if not use.complete:
            ctx.skip(
                f"no sign the app issues the remember cookie yet: read {use.describe_scope()} "
                "before the time limit"
            )
        ctx.skip(
            "the app never issues Flask-Login's remember cookie: no login_user(..., "
            f"remember=...) in {use.describe_scope()}, no REMEMBER_COOKIE_* setting{seen}"
        )
    yield ctx.finding(
        f"REMEMBER_COOKIE_SECURE is off: the long-lived login cookie travels over HTTP "
        f"(the app issues it: {issued}).",
        observed=ctx.config.get("REMEMBER_COOKIE_SECURE"),
    )


def _remember_cookie_issued(ctx: CheckContext) -> str | None:
    """What shows the app issues Flask-Login's remember cookie, or ``None``.

    Flask-Login sets it only after ``login_user(..., remember=True)``, and sets none of
    the ``REMEMBER_COOKIE_*`` settings itself: one in the config was put there by the
    app. Flask-Security's login view asks for it on the user's behalf.
    """
    name = ctx.config.get("REMEMBER_COOKIE_NAME") or REMEMBER_COOKIE_DEFAULT_NAME
    if ctx.observation is not None and name in ctx.observation.cookies:
        return f"the server sent the {name!r} cookie"
    settings = sorted(key for key in ctx.config if key.startswith("REMEMBER_COOKIE_"))
    if settings:
        return f"the config sets {', '.join(settings)}"
    if "security" in ctx.app.extensions:
        return "Flask-Security's login form offers to remember the user"
    use = code_use(project_root(ctx.app.root_path), wait=ctx.time_left() - 0.05)
    if use.remember_logins:
        return f"login_user(..., remember=...) in {use.remember_logins[0]}"
    return None


@check(
    "cookies.observed_insecure",
    level=Level.ERROR,
    tags=["security"],
    modes=[LIVE],
    title="Every Set-Cookie sent has Secure and HttpOnly",
    hint="Set secure=True and httponly=True where the cookie is set (response.set_cookie, "
    "or the extension's *_COOKIE_SECURE / *_COOKIE_HTTPONLY settings).",
)
def check_observed_insecure(ctx: CheckContext) -> Iterator[Finding]:
    traffic = observed_traffic(ctx)
    # Names and missing flags only: a cookie's value is never recorded. A Set-Cookie is
    # the app's own output (no client can forge one), and one insecure send is enough to
    # leak it: every insecure send counts.
    for name, cookie in traffic.cookies.items():
        if cookie.insecure:
            yield ctx.finding(
                f"The app sent the cookie {name!r} without {' and '.join(cookie.missing)} "
                f"({cookie.insecure} of {cookie.sent} times).",
                observed={
                    "cookie": name,
                    "missing": list(cookie.missing),
                    "sent": cookie.sent,
                    "insecure": cookie.insecure,
                },
            )
