"""``proxy.*``: do the forwarded headers the proxy sends reach the app as they should?

Judged live, from what this worker received (:class:`TrafficSnapshot`) and from the
WSGI chain around the app: ProxyFix (or anything with ``x_for``/``x_proto`` hop
counts) found by walking ``app.wsgi_app``. gunicorn applies ``X-Forwarded-Proto``
itself for peers in ``forwarded_allow_ips``; that counts as applied, since the
scheme the app sees is what is observed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import LIVE, check
from ._live import observed_traffic

#: How deep the WSGI chain is followed.
MAX_CHAIN_DEPTH = 32


@dataclass(frozen=True)
class ProxyTrust:
    """The hop counts a ProxyFix-like layer trusts, and its class name."""

    name: str
    x_for: int
    x_proto: int


def wsgi_chain(app: Flask) -> list[object]:
    """The middleware objects around the app, outermost first (Flask itself excluded)."""
    chain: list[object] = []
    current: object = app.wsgi_app
    for _ in range(MAX_CHAIN_DEPTH):
        if getattr(current, "__self__", None) is app:  # the bound Flask.wsgi_app
            break
        chain.append(current)
        following = None
        for attribute in ("wsgi_app", "app", "application"):
            candidate = getattr(current, attribute, None)
            if (
                candidate is not None
                and candidate is not current
                and not isinstance(candidate, Flask)
            ):
                following = candidate
                break
        if following is None:
            break
        current = following
    return chain


def proxy_trust(app: Flask) -> ProxyTrust | None:
    """The first ProxyFix-like layer (integer ``x_for`` and ``x_proto``), if any."""
    for layer in wsgi_chain(app):
        x_for: Any = getattr(layer, "x_for", None)
        x_proto: Any = getattr(layer, "x_proto", None)
        if isinstance(x_for, int) and isinstance(x_proto, int):
            return ProxyTrust(type(layer).__name__, x_for, x_proto)
    return None


@check(
    "proxy.missing_proxyfix",
    level=Level.ERROR,
    title="Forwarded headers are trusted by the WSGI chain",
    hint="Wrap the app: app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1) "
    "(werkzeug.middleware.proxy_fix), with one hop per proxy in front.",
    modes=[LIVE],
)
def check_missing_proxyfix(ctx: CheckContext) -> Iterator[Finding]:
    traffic = observed_traffic(ctx)
    trust = proxy_trust(ctx.app)
    ignored = []
    if traffic.with_xff and traffic.remote_rewritten == 0 and not (trust and trust.x_for):
        ignored.append(f"X-Forwarded-For ({traffic.with_xff} requests)")
    if traffic.with_xfp and traffic.xfp_applied == 0 and not (trust and trust.x_proto):
        ignored.append(f"X-Forwarded-Proto ({traffic.with_xfp} requests)")
    if ignored:
        yield ctx.finding(
            f"Requests arrive through a proxy with {' and '.join(ignored)}, but nothing in the "
            "WSGI chain trusts those headers: request.remote_addr and the scheme are the "
            "proxy's, so rate limits, logs and url_for(_external=True) see the wrong client.",
            observed={
                "requests": traffic.requests,
                "forwarded": traffic.forwarded,
                "proxy_fix": None if trust is None else trust.name,
            },
        )


@check(
    "proxy.no_forwarded_proto",
    level=Level.WARNING,
    title="The proxy sends X-Forwarded-Proto",
    hint="In nginx: proxy_set_header X-Forwarded-Proto $scheme; then trust it with "
    "ProxyFix(x_proto=1).",
    modes=[LIVE],
)
def check_no_forwarded_proto(ctx: CheckContext) -> Iterator[Finding]:
    traffic = observed_traffic(ctx)
    if traffic.with_xff and not traffic.with_xfp:
        yield ctx.finding(
            f"{traffic.with_xff} requests came through a proxy (X-Forwarded-For) without "
            "X-Forwarded-Proto: the app cannot tell HTTPS from HTTP, so secure cookies, "
            "redirects and external URLs go wrong.",
            observed={"with_x_forwarded_for": traffic.with_xff, "with_x_forwarded_proto": 0},
        )


@check(
    "proxy.scheme_mismatch",
    level=Level.ERROR,
    tags=["security"],
    modes=[LIVE],
    title="The app sees the scheme the proxy reports",
    hint="Trust X-Forwarded-Proto: ProxyFix(app.wsgi_app, x_proto=1), or gunicorn's "
    "forwarded_allow_ips set to the proxy's address.",
)
def check_scheme_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    traffic = observed_traffic(ctx)
    if traffic.https_forwarded_seen_as_http:
        yield ctx.finding(
            f"The proxy said https (X-Forwarded-Proto) on {traffic.https_forwarded_seen_as_http}"
            " requests, but the app saw http: it builds http:// links and redirects, and "
            "HSTS or secure-only logic may not apply.",
            observed={"https_seen_as_http": traffic.https_forwarded_seen_as_http},
        )


@check(
    "proxy.too_many_hops",
    level=Level.WARNING,
    tags=["security"],
    modes=[LIVE],
    title="ProxyFix trusts no more hops than requests carry",
    hint="Set x_for to the number of proxies in front of the app (1 behind a single "
    "nginx); each extra hop lets clients choose their own address.",
)
def check_too_many_hops(ctx: CheckContext) -> Iterator[Finding]:
    traffic = observed_traffic(ctx)
    trust = proxy_trust(ctx.app)
    if trust is None or trust.x_for <= 0:
        return
    observed = {"x_for": trust.x_for, "chains": dict(traffic.xff_chain_lengths)}
    if not traffic.with_xff:
        yield ctx.finding(
            f"{trust.name} trusts {trust.x_for} X-Forwarded-For hop(s), but none of "
            f"{traffic.requests} requests carried the header: the app is reached directly, "
            "and any client can set the address it is seen with.",
            observed=observed,
        )
        return
    shortest = min(traffic.xff_chain_lengths)
    if trust.x_for > shortest:
        yield ctx.finding(
            f"{trust.name} trusts {trust.x_for} X-Forwarded-For hops, but requests arrive with "
            f"chains of {shortest}: a client that sends its own X-Forwarded-For entries "
            "chooses the address the app sees.",
            observed=observed,
        )
