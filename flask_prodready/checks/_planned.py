"""Catalogue ids reserved before their checks are built.

Ids are public API: they are fixed from the first release so that silencing lists,
dashboards and CI gates written today keep working. A run reports these as skipped
("not built yet"), never as passed. When an area is built, its rows move out of this
table into the area's module (a registered check replaces its reserved row).
"""

from __future__ import annotations

from ..registry import CLI, LIVE, PLANNED, Check, make_check

_BOTH = (LIVE, CLI)

# (id, default level, extra tags, title, modes)
_ROWS: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    (
        "cookies.observed_insecure",
        "error",
        ("security", "live"),
        "Every Set-Cookie sent has Secure and HttpOnly",
        (LIVE,),
    ),
    (
        "headers.hsts",
        "warning",
        ("security",),
        "Responses carry Strict-Transport-Security with max-age >= 180 days",
        _BOTH,
    ),
    (
        "headers.csp",
        "warning",
        ("security",),
        "Responses carry a Content-Security-Policy without unsafe-inline scripts",
        _BOTH,
    ),
    (
        "headers.nosniff",
        "warning",
        ("security",),
        "Responses carry X-Content-Type-Options: nosniff",
        _BOTH,
    ),
    (
        "headers.framing",
        "warning",
        ("security",),
        "Responses forbid framing (X-Frame-Options or CSP frame-ancestors)",
        _BOTH,
    ),
    ("headers.referrer_policy", "info", ("security",), "Responses carry a Referrer-Policy", _BOTH),
    (
        "proxy.missing_proxyfix",
        "error",
        ("live",),
        "Forwarded headers are trusted by the WSGI chain",
        (LIVE,),
    ),
    (
        "proxy.no_forwarded_proto",
        "warning",
        ("live",),
        "The proxy sends X-Forwarded-Proto",
        (LIVE,),
    ),
    (
        "proxy.scheme_mismatch",
        "error",
        ("live", "security"),
        "The app sees the scheme the proxy reports",
        (LIVE,),
    ),
    (
        "proxy.too_many_hops",
        "warning",
        ("live", "security"),
        "ProxyFix trusts no more hops than requests carry",
        (LIVE,),
    ),
    (
        "server.dev_server",
        "critical",
        ("live",),
        "Not served by the Werkzeug development server",
        (LIVE,),
    ),
    ("server.root", "error", ("security",), "The process does not run as root", _BOTH),
    (
        "server.bind_public",
        "warning",
        ("gunicorn",),
        "gunicorn binds to loopback or a unix socket",
        _BOTH,
    ),
    (
        "server.workers",
        "warning",
        ("gunicorn",),
        "gunicorn worker count fits the CPUs the process may use",
        _BOTH,
    ),
    (
        "server.timeout",
        "warning",
        ("gunicorn",),
        "gunicorn timeout is set and at most 120 s",
        _BOTH,
    ),
    (
        "server.max_requests_jitter",
        "info",
        ("gunicorn",),
        "gunicorn max_requests comes with jitter",
        _BOTH,
    ),
    (
        "static.served_by_app",
        "warning",
        ("live",),
        "The app does not serve /static itself",
        (LIVE,),
    ),
)

PLANNED_CHECKS: tuple[Check, ...] = tuple(
    make_check(cid, level=level, title=title, tags=tags, modes=modes, kind=PLANNED)
    for cid, level, tags, title, modes in _ROWS
)
