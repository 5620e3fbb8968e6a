"""``proxy.*``: do the forwarded headers the proxy sends reach the app as they should?

Judged live, from what the server's workers received over the evidence window
(:class:`~flask_prodready.engine.evidence.Evidence`) and from the WSGI chain around the
app: ProxyFix (or anything with ``x_for``/``x_proto`` hop counts) found by walking
``app.wsgi_app``. gunicorn applies ``X-Forwarded-Proto`` itself for peers in
``forwarded_allow_ips``; that counts as applied, since the scheme the app sees is what
is observed. ``proxy.missing_proxyfix`` names which part the app gets wrong (the client's
address, the scheme) and who already applies the other (the ProxyFix-like layer, or
gunicorn); gunicorn never rewrites ``REMOTE_ADDR`` from X-Forwarded-For.

Forwarded headers count as the proxies' only when they come from the direct peers that
carry the app's normal traffic (see ``Evidence.proxy_peers``): a client that reaches the
server directly and forges ``X-Forwarded-For`` steers no verdict here unless it sends
most of the traffic itself (its requests are reported at info level, as what they are).
Every verdict on the proxies' requests goes by majority.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..engine.context import CheckContext
from ..engine.evidence import (
    MAJORITY,
    MIN_SAMPLE,
    Evidence,
    PeerEvidence,
    share,
    significant,
)
from ..engine.findings import Finding, Level
from ..engine.registry import LIVE, check
from ..engine.server import GUNICORN, server_kind
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


def _median_chain(chains: Mapping[int, int]) -> int:
    """The median chain length: the shortest length that at least half of the requests'
    chains do not exceed."""
    total = sum(chains.values())
    seen = 0
    for length in sorted(chains):
        seen += chains[length]
        if seen >= MAJORITY * total:
            return length
    return max(chains, default=1)


def proxy_peer(traffic: Evidence) -> PeerEvidence | None:
    """The proxies in front of the server taken together (see ``Evidence.proxy``)."""
    return traffic.proxy


def _forged(traffic: Evidence) -> int:
    """Requests with forwarded headers from peers that are not proxies (at least)."""
    proxies = {peer.address for peer in traffic.proxy_peers()}
    return sum(
        max(peer.with_xff, peer.with_xfp) for peer in traffic.peers if peer.address not in proxies
    )


def _gunicorn_trusts(allowed: Iterable[str], addresses: Iterable[str]) -> bool:
    """Whether gunicorn's ``forwarded_allow_ips`` covers every one of the proxies'
    addresses (entries are addresses, networks or ``*``; a peer on a unix socket, with no
    IP address, is always trusted by gunicorn)."""
    entries = [entry.strip() for entry in allowed]
    if "*" in entries:
        return True
    networks = []
    for entry in entries:
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(entry, strict=False))
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue  # a unix socket peer
        if not any(ip.version == net.version and ip in net for net in networks):
            return False
    return True


def _scheme_applied_by(
    ctx: CheckContext, trust: ProxyTrust | None, traffic: Evidence, proxy: PeerEvidence
) -> str:
    """Who makes the app see X-Forwarded-Proto's scheme, when it does: the ProxyFix-like
    layer, else gunicorn (it sets ``wsgi.url_scheme`` from its ``secure_scheme_headers``
    for peers in ``forwarded_allow_ips``), else something else in front of the app."""
    if trust is not None and trust.x_proto:
        return f"{trust.name}(x_proto={trust.x_proto}) applies X-Forwarded-Proto"
    settings = ctx.gunicorn
    if (
        server_kind(ctx.server_software) == GUNICORN
        and settings is not None
        and _gunicorn_trusts(
            settings.forwarded_allow_ips, (peer.address for peer in traffic.proxy_peers())
        )
    ):
        allowed = ",".join(settings.forwarded_allow_ips)
        return f"gunicorn's forwarded_allow_ips ({allowed}) already applies X-Forwarded-Proto"
    if proxy.xfp_values.get("https", 0):
        return "something in front of the app already applies X-Forwarded-Proto"
    # Only http was forwarded: what the app sees equals it whether or not it is applied.
    return "the proxy forwards http, which the app sees anyway"


def _address_applied_by(trust: ProxyTrust | None) -> str:
    """Who makes the app see the client's address from X-Forwarded-For, when it does."""
    if trust is not None and trust.x_for:
        return f"{trust.name}(x_for={trust.x_for}) applies X-Forwarded-For"
    # No ProxyFix-like layer, yet REMOTE_ADDR was rewritten: the server or a middleware
    # of another shape did it (gunicorn never rewrites REMOTE_ADDR).
    return "something in front of the app already rewrites REMOTE_ADDR from X-Forwarded-For"


@check(
    "proxy.missing_proxyfix",
    level=Level.ERROR,
    title="Forwarded headers are trusted by the WSGI chain",
    hint="Wrap the app: app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1) "
    "(werkzeug.middleware.proxy_fix), with one hop per proxy in front.",
    modes=[LIVE],
)
def check_missing_proxyfix(ctx: CheckContext) -> Iterator[Finding]:
    """What the app gets wrong of what the proxies forward, each part on its own: the
    client's address (X-Forwarded-For) and the scheme (X-Forwarded-Proto), and who already
    applies the parts it gets right. The host and port are not judged: the evidence
    counts X-Forwarded-Host but not whether it was applied, and not X-Forwarded-Port."""
    traffic = observed_traffic(ctx)
    trust = proxy_trust(ctx.app)
    proxy = proxy_peer(traffic)
    if proxy is not None:
        ignored, wrong, right, effects = [], [], [], []
        address_wrong = proxy.rewritten < MAJORITY * proxy.with_xff
        if not (trust and trust.x_for) and address_wrong:
            ignored.append(f"X-Forwarded-For ({share(proxy.with_xff, proxy.requests)} requests)")
            wrong.append("address")
            effects.append("rate limits and logs see the proxy instead of the client")
        elif not address_wrong:
            right.append(f"The client's address is right: {_address_applied_by(trust)}.")
        sends_proto = proxy.with_xfp >= MAJORITY * proxy.requests
        scheme_wrong = proxy.xfp_applied < MAJORITY * proxy.with_xfp
        if sends_proto and not (trust and trust.x_proto) and scheme_wrong:
            ignored.append(f"X-Forwarded-Proto ({share(proxy.with_xfp, proxy.requests)} requests)")
            wrong.append("scheme")
            effects.append("url_for(_external=True) and redirects use the proxy's scheme")
        elif sends_proto and not scheme_wrong:
            right.append(f"The scheme is right: {_scheme_applied_by(ctx, trust, traffic, proxy)}.")
        if ignored:
            names = {"address": "the client's address", "scheme": "the scheme"}
            seen = {"address": "request.remote_addr", "scheme": "request.scheme"}
            yield ctx.finding(
                f"Requests arrive through a proxy ({proxy.address}) with "
                f"{' and '.join(ignored)}, but nothing in the WSGI chain trusts "
                f"{'them' if len(ignored) > 1 else 'it'}: the app gets "
                f"{' and '.join(names[part] for part in wrong)} wrong "
                f"({' and '.join(seen[part] for part in wrong)} "
                f"{'are' if len(wrong) > 1 else 'is'} the proxy's), so "
                f"{', and '.join(effects)}.{''.join(' ' + text for text in right)}",
                observed={
                    "requests": proxy.requests,
                    "with_x_forwarded_for": proxy.with_xff,
                    "with_x_forwarded_proto": proxy.with_xfp,
                    "proxy_fix": None if trust is None else trust.name,
                    "wrong": wrong,
                    "workers": traffic.workers,
                },
            )
    forged = _forged(traffic)
    if significant(forged, traffic.requests):
        yield ctx.finding(
            f"{share(forged, traffic.requests)} requests carried X-Forwarded-For or "
            "X-Forwarded-Proto from a peer that is not a proxy: clients that reach the "
            "server directly sent them, and they are not judged as a proxy's.",
            level=Level.INFO,
            hint="Nothing to fix in the app if no proxy is meant to be in front; otherwise "
            "let only the proxy reach the server (bind to 127.0.0.1 or a unix socket).",
            observed={"requests": traffic.requests, "forwarded_by_clients": forged},
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
    proxy = proxy_peer(observed_traffic(ctx))
    if proxy is not None and proxy.with_xfp < MAJORITY * proxy.requests:
        yield ctx.finding(
            f"{share(proxy.with_xff, proxy.requests)} requests came through a proxy "
            f"({proxy.address}) with X-Forwarded-For, but only {proxy.with_xfp} carried "
            "X-Forwarded-Proto: the app cannot tell HTTPS from HTTP, so secure cookies, "
            "redirects and external URLs go wrong.",
            observed={
                "requests": proxy.requests,
                "with_x_forwarded_for": proxy.with_xff,
                "with_x_forwarded_proto": proxy.with_xfp,
            },
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
    proxy = proxy_peer(traffic)
    if proxy is None:
        return
    https = proxy.xfp_values.get("https", 0)

    def mismatched(peer: PeerEvidence) -> bool:
        said_https = peer.xfp_values.get("https", 0)
        return said_https > 0 and peer.https_as_http >= MAJORITY * said_https

    if (
        significant(proxy.https_as_http, https)
        and proxy.https_as_http >= MAJORITY * https
        and traffic.proxies_agree(mismatched)  # not one peer's say among the proxies
    ):
        yield ctx.finding(
            f"The proxy said https (X-Forwarded-Proto) on {https} requests, but the app saw "
            f"http on {proxy.https_as_http} of them: it builds http:// links and redirects, "
            "and HSTS or secure-only logic may not apply.",
            observed={"https_forwarded": https, "https_seen_as_http": proxy.https_as_http},
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
    proxy = proxy_peer(traffic)
    if proxy is None and traffic.proxy_peers():
        ctx.skip(
            "the proxies carried fewer than "
            f"{MIN_SAMPLE} requests in the window: too few to count their hops"
        )
    if proxy is None:
        carried = sum(p.with_xff for p in traffic.peers)
        yield ctx.finding(
            f"{trust.name} trusts {trust.x_for} X-Forwarded-For hop(s), but the server is "
            f"reached directly (only {share(carried, traffic.requests)} requests carried the "
            "header): any client can set the address it is seen with.",
            observed={"x_for": trust.x_for, "requests": traffic.requests},
        )
        return
    # The chain length at least half of the proxies' requests arrive with: a client can
    # lengthen its own chain, and a minority of short ones (or a peer posing as a proxy
    # with a few requests) does not decide how many proxies there are.
    shortest = _median_chain(proxy.chains)
    if trust.x_for > shortest:
        yield ctx.finding(
            f"{trust.name} trusts {trust.x_for} X-Forwarded-For hops, but requests arrive with "
            f"chains of {shortest}: a client that sends its own X-Forwarded-For entries "
            "chooses the address the app sees.",
            observed={"x_for": trust.x_for, "chains": dict(proxy.chains)},
        )
