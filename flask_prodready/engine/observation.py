"""What the running server actually receives and sends, per worker, in one place.

The middleware (:mod:`flask_prodready.web.middleware`) calls :meth:`TrafficRecord.record`
once per response: a handful of counter updates under a lock held for microseconds,
never across I/O. Memory is bounded: counters have capped keys, and only a few sample
paths and header values are kept. Cookie *values* are never kept, only names and flags.

Checks read an immutable :class:`TrafficSnapshot`. When no traffic has been seen (and
from the CLI) the header checks use :func:`probe_response`: one request through the
app's whole WSGI stack, so the verdict reflects what the app sends, not its settings.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

#: Security headers the header checks judge (lower-case names).
SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)
#: Longest X-Forwarded-For chain counted separately; longer ones share this bucket.
MAX_CHAIN_BUCKET = 10
#: Distinct insecure cookie names kept.
MAX_COOKIE_NAMES = 20
#: Sample paths kept per observation.
MAX_SAMPLES = 5
#: Longest header value kept as a sample.
MAX_VALUE_LENGTH = 512
#: environ key marking the internal probe request, which is not traffic.
PROBE_MARK = "prodready.probe"
#: How long a probe's answer is reused.
PROBE_TTL = 60.0
#: Cookies that scripts must read by design (double-submit CSRF): exempt from HttpOnly.
SCRIPT_READABLE_COOKIES = ("csrf", "xsrf")


@dataclass(frozen=True)
class ResponseSample:
    """The security headers of one response (or of the probe), by lower-case name."""

    path: str
    status: int
    content_type: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class TrafficSnapshot:
    """A consistent copy of a worker's record, for checks to read."""

    requests: int = 0
    forwarded: int = 0  # requests carrying X-Forwarded-For or -Proto
    with_xff: int = 0
    with_xfp: int = 0
    with_xfh: int = 0
    xff_chain_lengths: Mapping[int, int] = field(default_factory=dict)
    xfp_values: Mapping[str, int] = field(default_factory=dict)
    remote_rewritten: int = 0  # forwarded-for requests whose REMOTE_ADDR the chain changed
    scheme_seen: Mapping[str, int] = field(default_factory=dict)
    https_forwarded_seen_as_http: int = 0
    xfp_applied: int = 0  # requests whose final scheme equals their X-Forwarded-Proto
    judged_responses: int = 0  # text/html responses, whose security headers are judged
    missing_headers: Mapping[str, int] = field(default_factory=dict)  # among judged ones
    header_samples: Mapping[str, str] = field(default_factory=dict)  # last value seen
    missing_samples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cookies_seen: int = 0
    insecure_cookies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    static_served: int = 0
    static_samples: tuple[str, ...] = ()
    since: float = 0.0


def _lower_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    found: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            cookies.append(value)
        elif lowered in SECURITY_HEADERS or lowered == "content-type":
            found[lowered] = value[:MAX_VALUE_LENGTH]
    return found, cookies


def cookie_problems(set_cookie: str) -> tuple[str, tuple[str, ...]] | None:
    """(cookie name, missing flags) for a ``Set-Cookie`` lacking Secure or HttpOnly.

    Deleting cookies (``Max-Age=0`` or an expiry in 1970) carry nothing and are ignored;
    CSRF cookies meant for scripts are not asked for HttpOnly. The value is never kept.
    """
    name, _, rest = set_cookie.partition("=")
    attributes = [part.strip().lower() for part in rest.split(";")[1:]]
    if any(a in {"max-age=0"} or a.startswith("expires=thu, 01 jan 1970") for a in attributes):
        return None
    flags = {a.split("=", 1)[0] for a in attributes}
    missing = []
    if "secure" not in flags:
        missing.append("Secure")
    script_readable = any(word in name.lower() for word in SCRIPT_READABLE_COOKIES)
    if "httponly" not in flags and not script_readable:
        missing.append("HttpOnly")
    return (name.strip()[:64], tuple(missing)) if missing else None


class TrafficRecord:
    """The per-worker record the middleware writes and checks read through snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: URL prefixes of the app's static routes; set by the middleware on first use,
        #: when every blueprint is registered.
        self.static_prefixes: tuple[str, ...] | None = None
        self._since = time.time()
        # Plain dicts with every key present: an increment is a third of a Counter's.
        self._counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._chains: dict[int, int] = {}
        self._xfp: dict[str, int] = {}
        self._schemes: dict[str, int] = dict.fromkeys((*_SCHEMES, "other"), 0)
        # Judged responses counted by the set of security headers they lacked: one
        # increment per response; per-header counts are summed when a snapshot is taken.
        self._lacking: dict[frozenset[str], int] = {}
        self._samples: dict[str, str] = {}
        self._missing_samples: dict[str, list[str]] = {}
        self._cookies: dict[str, tuple[str, ...]] = {}
        self._static_samples: list[str] = []

    def record(
        self,
        environ: Mapping[str, Any],
        entry_remote: str | None,
        status: str,
        headers: Iterable[tuple[str, str]],
    ) -> None:
        """Count one response; ``entry_remote`` is REMOTE_ADDR as the request arrived here.

        Kept lean: it runs on every response. Work that needs the headers is done in one
        pass over them, and the lock covers only the counter updates.
        """
        get = environ.get
        xff = get("HTTP_X_FORWARDED_FOR")
        xfp = get("HTTP_X_FORWARDED_PROTO")
        scheme = get("wsgi.url_scheme", "")
        path = get("PATH_INFO", "")
        content_type = ""
        found: dict[str, str] | None = None
        bad_cookies: list[tuple[str, tuple[str, ...]]] | None = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "set-cookie":
                problem = cookie_problems(value)
                if bad_cookies is None:
                    bad_cookies = []
                if problem is not None:
                    bad_cookies.append(problem)
            elif lowered in _SECURITY_HEADER_SET:
                if found is None:
                    found = {}
                found[lowered] = value[:MAX_VALUE_LENGTH]
        judged = content_type.startswith("text/html")
        prefixes = self.static_prefixes
        static = bool(prefixes) and path.startswith(prefixes) and status[:3] in _STATIC_CODES
        if xff:
            orig = get("werkzeug.proxy_fix.orig")
            peer = orig.get("REMOTE_ADDR") if isinstance(orig, dict) else entry_remote
            rewritten = get("REMOTE_ADDR") != peer

        with self._lock:
            counts = self._counts
            counts["requests"] += 1
            self._schemes[scheme if scheme in _SCHEMES else "other"] += 1
            if xff or xfp:
                counts["forwarded"] += 1
            if xff:
                counts["with_xff"] += 1
                chain = min(xff.count(",") + 1, MAX_CHAIN_BUCKET)
                self._chains[chain] = self._chains.get(chain, 0) + 1
                if rewritten:
                    counts["remote_rewritten"] += 1
            if xfp:
                proto = xfp.rsplit(",", 1)[-1].strip().lower()
                proto = proto if proto in _SCHEMES else "other"  # keys stay bounded
                counts["with_xfp"] += 1
                self._xfp[proto] = self._xfp.get(proto, 0) + 1
                if proto == scheme:
                    counts["xfp_applied"] += 1
                elif proto == "https" and scheme == "http":
                    counts["https_forwarded_seen_as_http"] += 1
            if get("HTTP_X_FORWARDED_HOST"):
                counts["with_xfh"] += 1
            if judged:
                counts["judged"] += 1
                lacking = _ALL_LACKING if found is None else _SECURITY_HEADER_SET.difference(found)
                self._lacking[lacking] = self._lacking.get(lacking, 0) + 1
                if found is not None:
                    self._samples.update(found)
                for name in lacking:  # sample paths, until each list is full
                    samples = self._missing_samples.setdefault(name, [])
                    if len(samples) < MAX_SAMPLES and path not in samples:
                        samples.append(path[:200])
            if bad_cookies is not None:
                counts["cookies"] += 1
                for cookie_name, missing in bad_cookies:
                    if cookie_name in self._cookies or len(self._cookies) < MAX_COOKIE_NAMES:
                        self._cookies[cookie_name] = missing
            if static:
                counts["static"] += 1
                if len(self._static_samples) < MAX_SAMPLES and path not in self._static_samples:
                    self._static_samples.append(path[:200])

    def _missing_counts(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for lacking, count in self._lacking.items():
            for name in lacking:
                totals[name] += count
        return dict(totals)

    def snapshot(self) -> TrafficSnapshot:
        with self._lock:
            c = self._counts
            return TrafficSnapshot(
                requests=c["requests"],
                forwarded=c["forwarded"],
                with_xff=c["with_xff"],
                with_xfp=c["with_xfp"],
                with_xfh=c["with_xfh"],
                xff_chain_lengths=dict(self._chains),
                xfp_values=dict(self._xfp),
                remote_rewritten=c["remote_rewritten"],
                scheme_seen={k: n for k, n in self._schemes.items() if n},
                https_forwarded_seen_as_http=c["https_forwarded_seen_as_http"],
                xfp_applied=c["xfp_applied"],
                missing_headers=self._missing_counts(),
                judged_responses=c["judged"],
                header_samples=dict(self._samples),
                missing_samples={k: tuple(v) for k, v in self._missing_samples.items()},
                cookies_seen=c["cookies"],
                insecure_cookies=dict(self._cookies),
                static_served=c["static"],
                static_samples=tuple(self._static_samples),
                since=self._since,
            )


def static_prefixes(app: Flask) -> tuple[str, ...]:
    """URL prefixes of the app's and its blueprints' static routes (``/static/``)."""
    prefixes = {
        rule.rule.split("<", 1)[0]
        for rule in app.url_map.iter_rules()
        if rule.endpoint == "static" or rule.endpoint.endswith(".static")
    }
    return tuple(sorted(p for p in prefixes if p))


_SECURITY_HEADER_SET = frozenset(SECURITY_HEADERS)
_COUNTS = (
    "requests",
    "forwarded",
    "with_xff",
    "with_xfp",
    "with_xfh",
    "remote_rewritten",
    "https_forwarded_seen_as_http",
    "xfp_applied",
    "judged",
    "cookies",
    "static",
)
_ALL_LACKING = _SECURITY_HEADER_SET
_STATIC_CODES = frozenset({"200", "206", "304"})
#: Schemes counted by name; anything else a client sends is counted as "other".
_SCHEMES = frozenset({"http", "https"})

_probe_lock = threading.Lock()
#: Per app: the lock one probe is sent under, and its kept answer (weakly keyed, so a
#: test's or a factory's throwaway app does not live on here).
_probe_locks: weakref.WeakKeyDictionary[Flask, threading.Lock] = weakref.WeakKeyDictionary()
_probes: weakref.WeakKeyDictionary[Flask, tuple[float, ResponseSample]] = (
    weakref.WeakKeyDictionary()
)


def _probe_host(app: Flask) -> str:
    hosts = app.config.get("TRUSTED_HOSTS") or []
    for host in hosts:
        if isinstance(host, str) and host and not host.startswith("."):
            return host
    server_name = app.config.get("SERVER_NAME")
    return str(server_name) if server_name else "localhost"


def probe_response(app: Flask) -> ResponseSample:
    """Send one GET through the app's whole WSGI stack (middleware and after-request hooks
    included) to a path no app serves, over https, and keep its security headers.

    A 404 is harmless and still passes through every hook that adds headers. The header
    checks run side by side and all ask at once: they share one probe.
    """
    with _probe_lock:
        lock = _probe_locks.setdefault(app, threading.Lock())
    with lock:
        cached = _probes.get(app)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        sample = _send_probe(app)
        _probes[app] = (time.monotonic() + PROBE_TTL, sample)
        return sample


def _send_probe(app: Flask) -> ResponseSample:
    path = f"/.well-known/prodready-probe-{secrets.token_hex(4)}"
    client = app.test_client()
    response = client.get(
        path,
        base_url=f"https://{_probe_host(app)}",
        environ_overrides={PROBE_MARK: True},
    )
    try:
        found, _ = _lower_headers(response.headers.items())
        sample = ResponseSample(
            path=path,
            status=response.status_code,
            content_type=found.pop("content-type", ""),
            headers=found,
        )
    finally:
        response.close()
    return sample


def clear_probes() -> None:
    with _probe_lock:
        _probes.clear()
