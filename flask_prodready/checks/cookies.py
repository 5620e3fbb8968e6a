"""``cookies.*``: the session and remember-me cookie flags as configured.

What cookies the server actually sends (``cookies.observed_insecure``) is judged from
live traffic; these checks read the configuration Flask and Flask-Login use.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import LIVE, check
from ._live import observed_traffic


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
)
def check_remember_secure(ctx: CheckContext) -> Iterator[Finding]:
    if getattr(ctx.app, "login_manager", None) is None:
        ctx.skip("Flask-Login is not set up on this app")
    if not ctx.config.get("REMEMBER_COOKIE_SECURE"):
        yield ctx.finding(
            "REMEMBER_COOKIE_SECURE is off: the long-lived login cookie travels over HTTP.",
            observed=ctx.config.get("REMEMBER_COOKIE_SECURE"),
        )


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
