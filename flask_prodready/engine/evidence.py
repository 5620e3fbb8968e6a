"""What the live checks judge: the traffic of every worker of the server over a window.

The middleware counts each response into time buckets (:mod:`.observation`); each worker
publishes its buckets for its siblings (:mod:`.sharing`); a report merges the buckets of
the last ``PRODREADY_EVIDENCE_WINDOW`` seconds of every live worker into one
:class:`Evidence`. So any worker answers with the same verdict, an old odd request ages
out, and a fixed problem clears once the window has passed.

Verdicts go by share, with a minimum sample (:func:`significant`): one odd request
among many can neither raise a finding nor silence one. Forwarded headers count as the
proxies' only from the direct peers that carry the app's normal traffic
(:meth:`Evidence.proxy_peers`: peers with X-Forwarded-For on most of their requests,
together carrying most of the traffic), so a client that reaches the server directly
and forges them steers nothing unless it sends most of the traffic itself. Everything
that came from a request is made inert (:func:`inert`) before it can enter a finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Fewest requests (or responses of a kind) in the window before a live verdict is given.
MIN_SAMPLE = 10
#: Fewest occurrences of a problem that can raise a finding: one odd request cannot.
MIN_COUNT = 2
#: Smallest share of the sample a problem must have to raise a finding.
MIN_SHARE = 0.05
#: A peer is a proxy when at least this share of its requests carry X-Forwarded-For,
#: and a header the proxy sets is "sent" when at least this share carries it.
MAJORITY = 0.5

#: A peer joins the proxies only with at least this share of the busiest proxy's
#: requests: load-balancer nodes share the traffic, a client adding a few forged
#: requests beside a real proxy does not.
PROXY_PEER_SHARE = 0.1
#: Longest text taken from a request (a path, a header value) shown in a finding.
SHOWN_LENGTH = 120

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1: escape sequences, bells,
    carriage returns, newlines) written as a visible ``\\xNN`` escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def inert(text: str, limit: int = SHOWN_LENGTH) -> str:
    """``text`` safe to print anywhere: control characters escaped
    (:func:`escape_controls`), and cut to ``limit`` characters (an ellipsis marks the cut)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape_controls(text)


def significant(count: int, total: int) -> bool:
    """Whether ``count`` occurrences among ``total`` are enough to raise a finding."""
    return total >= MIN_SAMPLE and count >= MIN_COUNT and count >= MIN_SHARE * total


def share(count: int, total: int) -> str:
    """``"37 of 120"``: how a finding names its share."""
    return f"{count} of {total}"


@dataclass(frozen=True)
class PeerEvidence:
    """What one direct peer of the server (its socket address, before any ProxyFix) sent."""

    address: str
    requests: int = 0
    with_xff: int = 0
    with_xfp: int = 0
    with_xfh: int = 0
    rewritten: int = 0  # X-Forwarded-For requests whose REMOTE_ADDR the app saw rewritten
    xfp_applied: int = 0  # X-Forwarded-Proto requests whose scheme the app saw equal it
    https_as_http: int = 0  # X-Forwarded-Proto https, seen by the app as http
    static: int = 0  # responses served from a static route
    chains: Mapping[int, int] = field(default_factory=dict)  # X-Forwarded-For lengths
    xfp_values: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def combined(cls, peers: Iterable[PeerEvidence]) -> PeerEvidence:
        """Several peers taken as one (the nodes of a load balancer)."""
        members = list(peers)
        chains: dict[int, int] = {}
        xfp_values: dict[str, int] = {}
        for peer in members:
            for length, count in peer.chains.items():
                chains[length] = chains.get(length, 0) + count
            for value, count in peer.xfp_values.items():
                xfp_values[value] = xfp_values.get(value, 0) + count
        shown = [peer.address for peer in members[:3]]
        address = ", ".join(shown) + (f" and {len(members) - 3} more" if len(members) > 3 else "")
        return cls(
            address=address,
            **{key: sum(getattr(peer, key) for peer in members) for key in PEER_COUNTS},
            chains=dict(sorted(chains.items())),
            xfp_values=xfp_values,
        )


@dataclass(frozen=True)
class KindEvidence:
    """The security headers of one kind of response (HTML pages, other successful ones)."""

    judged: int = 0
    #: Responses guarded against framing by neither X-Frame-Options nor CSP frame-ancestors.
    unframed: int = 0
    missing: Mapping[str, int] = field(default_factory=dict)
    #: Per header: each value seen and how often ("" counts values past the cap).
    values: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: Per header: paths of responses that lacked it (inert, a few).
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def lacking(self, header: str) -> int:
        return self.missing.get(header, 0)


@dataclass(frozen=True)
class CookieEvidence:
    """How often a cookie was sent, how often without Secure or HttpOnly, and which."""

    sent: int = 0
    insecure: int = 0
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """The merged traffic of ``workers`` worker processes over the last ``window`` seconds."""

    window: float
    workers: int = 1
    requests: int = 0
    peers: tuple[PeerEvidence, ...] = ()  # most requests first
    pages: KindEvidence = field(default_factory=KindEvidence)
    other: KindEvidence = field(default_factory=KindEvidence)
    cookies: Mapping[str, CookieEvidence] = field(default_factory=dict)
    static_samples: tuple[str, ...] = ()
    #: Responses with a 5xx status, and some of their paths (made inert).
    server_errors: int = 0
    error_samples: tuple[str, ...] = ()
    #: Requests to ``/healthz``: an uptime monitor or a probe polling.
    healthz_requests: int = 0
    #: Log records at ERROR or above, by logger name (``*``: the names past the cap).
    logged_errors: Mapping[str, int] = field(default_factory=dict)
    #: Why the evidence is this worker's alone on a multi-worker server, if it is.
    note: str | None = None

    @property
    def main_peer(self) -> PeerEvidence | None:
        """The direct peer that carries most of the traffic (nginx, for an app behind it);
        never the ``*`` entry that stands for the peers past the cap."""
        return next((peer for peer in self.peers if peer.address != "*"), None)

    def proxy_peers(self) -> list[PeerEvidence]:
        """The direct peers that carry the app's normal traffic through a proxy: those with
        X-Forwarded-For on most of their requests and at least a tenth of the busiest such
        peer's requests, when together they carry most of the traffic (one nginx, or every
        node of a load balancer). Empty when the server is mostly reached directly: then no
        peer's forwarded headers are the proxy's."""
        forwarding = [
            peer
            for peer in self.peers
            if peer.address != "*" and peer.with_xff >= MAJORITY * peer.requests
        ]
        if not forwarding:
            return []
        busiest = max(peer.requests for peer in forwarding)
        found = [peer for peer in forwarding if peer.requests >= PROXY_PEER_SHARE * busiest]
        carried = sum(peer.requests for peer in found)
        return found if carried >= MAJORITY * self.requests else []

    def proxies_agree(self, holds: Callable[[PeerEvidence], bool]) -> bool:
        """Whether ``holds`` is true of proxies that carry most of the proxies' requests:
        a verdict on the proxies' traffic that one of them alone cannot decide."""
        members = self.proxy_peers()
        total = sum(peer.requests for peer in members)
        agreeing = sum(peer.requests for peer in members if holds(peer))
        return total > 0 and agreeing >= MAJORITY * total

    @property
    def proxy(self) -> PeerEvidence | None:
        """The proxies in front of the server taken together, when they carry enough
        requests for a verdict; ``None`` when the server is reached directly."""
        members = self.proxy_peers()
        if not members:
            return None
        found = members[0] if len(members) == 1 else PeerEvidence.combined(members)
        return found if found.requests >= MIN_SAMPLE else None

    @property
    def front(self) -> PeerEvidence | None:
        """Who carries the app's normal traffic: its proxies, or else the main direct peer."""
        return self.proxy or self.main_peer

    def coverage(self) -> dict[str, Any]:
        """What the report says its live evidence covers."""
        found: dict[str, Any] = {
            "workers": self.workers,
            "requests": self.requests,
            "window_seconds": self.window,
        }
        if self.note:
            found["note"] = self.note
        return found

    @classmethod
    def merge(
        cls,
        buckets: Iterable[Mapping[str, Any]],
        *,
        window: float,
        workers: int = 1,
        note: str | None = None,
    ) -> Evidence:
        """Add up buckets in their published form (see :mod:`.observation`)."""
        requests = 0
        peers: dict[str, dict[str, Any]] = {}
        kinds: dict[str, dict[str, Any]] = {"page": _new_kind(), "other": _new_kind()}
        cookies: dict[str, list[Any]] = {}
        static: list[str] = []
        errors: list[str] = []
        server_errors = healthz = 0
        logged: dict[str, int] = {}
        for bucket in buckets:
            requests += bucket["requests"]
            server_errors += bucket["server_errors"]
            healthz += bucket["healthz"]
            for name, n in bucket["logged_errors"].items():
                logged[name] = logged.get(name, 0) + n
            for path in bucket["error_samples"]:
                if len(errors) < MAX_EXAMPLES and path not in errors:
                    errors.append(path)
            for address, counts in bucket["peers"].items():
                merged = peers.setdefault(address, _new_peer())
                for key in PEER_COUNTS:
                    merged[key] += counts[key]
                for length, n in counts["chains"].items():
                    merged["chains"][int(length)] = merged["chains"].get(int(length), 0) + n
                for value, n in counts["xfp_values"].items():
                    merged["xfp_values"][value] = merged["xfp_values"].get(value, 0) + n
            for name, counts in bucket["kinds"].items():
                merged = kinds[name]
                merged["judged"] += counts["judged"]
                merged["unframed"] += counts["unframed"]
                for header, n in counts["missing"].items():
                    merged["missing"][header] = merged["missing"].get(header, 0) + n
                for header, values in counts["values"].items():
                    into = merged["values"].setdefault(header, {})
                    for value, n in values.items():
                        into[value] = into.get(value, 0) + n
                for header, paths in counts["paths"].items():
                    into = merged["paths"].setdefault(header, [])
                    for path in paths:
                        if len(into) < MAX_EXAMPLES and path not in into:
                            into.append(path)
            for name, (sent, insecure, missing) in bucket["cookies"].items():
                merged_cookie = cookies.setdefault(name, [0, 0, ()])
                merged_cookie[0] += sent
                merged_cookie[1] += insecure
                # Every flag it lacked on any insecure send, in a fixed order.
                lacked = set(merged_cookie[2]) | set(missing)
                merged_cookie[2] = tuple(f for f in ("Secure", "HttpOnly") if f in lacked)
            for path in bucket["static_samples"]:
                if len(static) < MAX_EXAMPLES and path not in static:
                    static.append(path)
        return cls(
            window=window,
            workers=workers,
            requests=requests,
            peers=tuple(
                sorted(
                    (_peer(address, counts) for address, counts in peers.items()),
                    key=lambda p: (-p.requests, p.address),
                )
            ),
            pages=_kind(kinds["page"]),
            other=_kind(kinds["other"]),
            cookies={
                inert(name, 64): CookieEvidence(sent, insecure, tuple(missing))
                for name, (sent, insecure, missing) in sorted(cookies.items())
            },
            static_samples=tuple(inert(p) for p in static),
            server_errors=server_errors,
            error_samples=tuple(inert(p) for p in errors),
            healthz_requests=healthz,
            logged_errors={inert(name, 100): n for name, n in sorted(logged.items())},
            note=note,
        )


#: Example paths kept per kind of problem.
MAX_EXAMPLES = 5
#: The counts of a direct peer, in a bucket's published form and in :class:`PeerEvidence`.
PEER_COUNTS = (
    "requests",
    "with_xff",
    "with_xfp",
    "with_xfh",
    "rewritten",
    "xfp_applied",
    "https_as_http",
    "static",
)


def _new_peer() -> dict[str, Any]:
    return {**dict.fromkeys(PEER_COUNTS, 0), "chains": {}, "xfp_values": {}}


def _new_kind() -> dict[str, Any]:
    return {"judged": 0, "unframed": 0, "missing": {}, "values": {}, "paths": {}}


def _peer(address: str, counts: Mapping[str, Any]) -> PeerEvidence:
    return PeerEvidence(
        address=inert(address, 64),
        **{key: counts[key] for key in PEER_COUNTS},
        chains=dict(sorted(counts["chains"].items())),
        xfp_values=dict(counts["xfp_values"]),
    )


def _kind(counts: Mapping[str, Any]) -> KindEvidence:
    return KindEvidence(
        judged=counts["judged"],
        unframed=counts["unframed"],
        missing=dict(counts["missing"]),
        values={header: dict(values) for header, values in counts["values"].items()},
        paths={header: tuple(inert(p) for p in paths) for header, paths in counts["paths"].items()},
    )
