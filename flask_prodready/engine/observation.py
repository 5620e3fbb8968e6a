"""What the running server actually receives and sends, in one place, over a sliding window.

The middleware (:mod:`flask_prodready.web.middleware`) calls :meth:`TrafficRecord.record`
once per response: a handful of counter updates under a lock held for microseconds,
never across I/O. Counts go into time buckets (a thirtieth of
``PRODREADY_EVIDENCE_WINDOW`` each), so a report can look at the last window only and
memory stays bounded whatever the traffic: buckets older than the window are dropped,
and within a bucket every key is capped (direct peers, header values, cookie names,
example paths). Cookie *values* are never kept, only names and flags.

A bucket's published form (:meth:`TrafficRecord.buckets`) is plain JSON data: what a
worker shares with its siblings (:mod:`.sharing`) and what :class:`.evidence.Evidence`
adds up. When no HTML traffic has been seen (and from the CLI) the header checks use
:func:`probe_response`: one request through the app's whole WSGI stack, so the verdict
reflects what the app sends, not its settings.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .evidence import PEER_COUNTS

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
#: Distinct cookie names counted per bucket.
MAX_COOKIE_NAMES = 20
#: Distinct direct peers counted per bucket; the rest share the key "*".
MAX_PEERS = 64
#: Distinct values counted per header and kind of response per bucket; the rest share "".
MAX_VALUES = 8
#: Example paths kept per kind of problem and bucket.
MAX_SAMPLES = 5
#: Distinct logger names counted per bucket for error records; the rest share "*".
MAX_LOGGERS = 20
#: Longest logger name kept.
MAX_LOGGER_LENGTH = 100
#: Longest header value kept.
MAX_VALUE_LENGTH = 512
#: Longest path kept as an example (made inert before it reaches a finding).
MAX_PATH_LENGTH = 200
#: Buckets per window: the window slides in steps of a thirtieth of it.
BUCKETS_PER_WINDOW = 30
#: Shortest bucket, so a tiny window does not mean a bucket per request.
MIN_BUCKET_SECONDS = 0.05
#: environ key marking the internal probe request, which is not traffic.
PROBE_MARK = "prodready.probe"
#: How long a probe's answer is reused.
PROBE_TTL = 60.0
#: Cookies that scripts must read by design (double-submit CSRF): exempt from HttpOnly.
SCRIPT_READABLE_COOKIES = ("csrf", "xsrf")
#: The kinds of response whose security headers are judged.
KINDS = ("page", "other")

# A CSP nonce is new on every response: counted as one value, so values stay few.
_NONCE = re.compile(r"'nonce-[^']*'", re.IGNORECASE)


@dataclass(frozen=True)
class ResponseSample:
    """The security headers of one response (or of the probe), by lower-case name."""

    path: str
    status: int
    content_type: str
    headers: Mapping[str, str]


def _lower_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    found: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            cookies.append(value)
        elif lowered == "content-type":
            found[lowered] = value[:MAX_VALUE_LENGTH]
        elif lowered in SECURITY_HEADERS:
            found[lowered] = value if len(value) <= MAX_VALUE_LENGTH else _shortened(lowered, value)
    return found, cookies


class _Peer:
    """Counts of one direct peer in one bucket."""

    __slots__ = (
        "chains",
        "https_as_http",
        "requests",
        "rewritten",
        "static",
        "with_xff",
        "with_xfh",
        "with_xfp",
        "xfp_applied",
        "xfp_values",
    )

    def __init__(self) -> None:
        self.requests = self.with_xff = self.with_xfp = self.with_xfh = 0
        self.rewritten = self.xfp_applied = self.https_as_http = self.static = 0
        self.chains: dict[int, int] = {}
        self.xfp_values: dict[str, int] = {}

    def published(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in PEER_COUNTS},
            "chains": {str(k): v for k, v in self.chains.items()},
            "xfp_values": dict(self.xfp_values),
        }


class _Kind:
    """The security headers of one kind of response in one bucket."""

    __slots__ = ("judged", "lacking", "paths", "unframed", "values")

    def __init__(self) -> None:
        self.judged = 0
        #: Responses guarded against framing by neither X-Frame-Options (DENY or
        #: SAMEORIGIN) nor a CSP frame-ancestors: judged per response, since a site may
        #: guard some pages one way and others the other.
        self.unframed = 0
        # Responses counted by the set of security headers they lacked: one increment
        # per response; per-header counts are summed when published.
        self.lacking: dict[frozenset[str], int] = {}
        self.values: dict[str, dict[str, int]] = {}
        self.paths: dict[str, list[str]] = {}

    def published(self) -> dict[str, Any]:
        missing: dict[str, int] = {}
        for lacking, count in self.lacking.items():
            for name in lacking:
                missing[name] = missing.get(name, 0) + count
        return {
            "judged": self.judged,
            "unframed": self.unframed,
            "missing": missing,
            "values": {h: dict(v) for h, v in self.values.items()},
            "paths": {h: list(p) for h, p in self.paths.items()},
        }


class _Bucket:
    """Everything counted during one slice of the window."""

    __slots__ = (
        "cookies",
        "error_samples",
        "healthz",
        "kinds",
        "logged_errors",
        "peers",
        "requests",
        "server_errors",
        "start",
        "static_samples",
    )

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = 0
        self.peers: dict[str, _Peer] = {}
        self.kinds = {kind: _Kind() for kind in KINDS}
        self.cookies: dict[str, list[Any]] = {}  # name: [sent, insecure, missing flags]
        self.static_samples: list[str] = []
        self.server_errors = 0  # responses with a 5xx status
        self.error_samples: list[str] = []  # paths of some of them
        self.healthz = 0  # requests to /healthz (answered in front of the app)
        self.logged_errors: dict[str, int] = {}  # logger name: records at ERROR or above

    def published(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "requests": self.requests,
            "peers": {address: peer.published() for address, peer in self.peers.items()},
            "kinds": {name: kind.published() for name, kind in self.kinds.items()},
            "cookies": {
                name: [sent, insecure, list(missing)]
                for name, (sent, insecure, missing) in self.cookies.items()
            },
            "static_samples": list(self.static_samples),
            "server_errors": self.server_errors,
            "error_samples": list(self.error_samples),
            "healthz": self.healthz,
            "logged_errors": dict(self.logged_errors),
        }


class TrafficRecord:
    """The record the middleware writes and reports read, for one worker process."""

    def __init__(self, window: float = 900.0) -> None:
        self._lock = threading.Lock()
        #: URL prefixes of the app's static routes; set by the middleware on first use,
        #: when every blueprint is registered.
        self.static_prefixes: tuple[str, ...] | None = None
        self.window = float(window)
        self.bucket_seconds = max(MIN_BUCKET_SECONDS, self.window / BUCKETS_PER_WINDOW)
        self._buckets: deque[_Bucket] = deque()
        self._current: _Bucket | None = None
        self._current_end = 0.0
        #: Set on every count, cleared by whoever publishes the buckets for siblings.
        self.changed = False

    def _rotate(self, now: float) -> _Bucket:
        """A new current bucket; buckets wholly outside the window are dropped."""
        start = now - now % self.bucket_seconds
        bucket = _Bucket(start)
        self._buckets.append(bucket)
        self._current = bucket
        self._current_end = start + self.bucket_seconds
        oldest = now - self.window - self.bucket_seconds
        while self._buckets and self._buckets[0].start < oldest:
            self._buckets.popleft()
        return bucket

    def _bucket(self) -> _Bucket:
        """The current bucket (the lock held)."""
        self.changed = True
        bucket = self._current
        now = time.time()
        if bucket is None or now >= self._current_end:
            bucket = self._rotate(now)
        return bucket

    def record_healthz(self) -> None:
        """Count one request to ``/healthz`` (an uptime monitor or a probe polling)."""
        with self._lock:
            self._bucket().healthz += 1

    def record_log(self, logger_name: str) -> None:
        """Count one log record at ERROR or above, by logger name (never its message)."""
        name = logger_name[:MAX_LOGGER_LENGTH]
        with self._lock:
            counts = self._bucket().logged_errors
            if name not in counts and len(counts) >= MAX_LOGGERS:
                name = "*"
            counts[name] = counts.get(name, 0) + 1

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
        cookies: list[tuple[str, tuple[str, ...]]] | None = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered == "set-cookie":
                flags = cookie_flags(value)
                if flags is not None:  # a deletion carries nothing to judge
                    if cookies is None:
                        cookies = []
                    cookies.append(flags)
            elif lowered in _SECURITY_HEADER_SET:
                if found is None:
                    found = {}
                if lowered == "content-security-policy" and ("once-" in value or "ONCE-" in value):
                    value = _NONCE.sub("'nonce-…'", value)
                if len(value) > MAX_VALUE_LENGTH:
                    value = _shortened(lowered, value)
                found[lowered] = value
        if content_type.startswith("text/html"):
            kind_name: str | None = "page"
        else:
            kind_name = "other" if status[:1] == "2" else None
        prefixes = self.static_prefixes
        static = bool(prefixes) and path.startswith(prefixes) and status[:3] in _STATIC_CODES
        # The direct peer: the socket's address as the server gave it, before ProxyFix
        # (which keeps the original when it rewrites REMOTE_ADDR).
        orig = get("werkzeug.proxy_fix.orig")
        peer_address = orig.get("REMOTE_ADDR") if isinstance(orig, dict) else entry_remote
        peer_address = peer_address or ""
        failed = status[:1] == "5"

        with self._lock:
            bucket = self._bucket()
            bucket.requests += 1
            if failed:
                bucket.server_errors += 1
                if len(bucket.error_samples) < MAX_SAMPLES and path not in bucket.error_samples:
                    bucket.error_samples.append(path[:MAX_PATH_LENGTH])
            peer = bucket.peers.get(peer_address)
            if peer is None:
                if len(bucket.peers) >= MAX_PEERS:
                    peer_address = "*"
                peer = bucket.peers.get(peer_address)
                if peer is None:
                    peer = bucket.peers[peer_address] = _Peer()
            peer.requests += 1
            if xff:
                peer.with_xff += 1
                chain = min(xff.count(",") + 1, MAX_CHAIN_BUCKET)
                peer.chains[chain] = peer.chains.get(chain, 0) + 1
                if get("REMOTE_ADDR") != peer_address:
                    peer.rewritten += 1
            if xfp:
                proto = xfp.rsplit(",", 1)[-1].strip().lower()
                proto = proto if proto in _SCHEMES else "other"  # keys stay bounded
                peer.with_xfp += 1
                peer.xfp_values[proto] = peer.xfp_values.get(proto, 0) + 1
                if proto == scheme:
                    peer.xfp_applied += 1
                elif proto == "https" and scheme == "http":
                    peer.https_as_http += 1
            if get("HTTP_X_FORWARDED_HOST"):
                peer.with_xfh += 1
            if kind_name is not None:
                kind = bucket.kinds[kind_name]
                kind.judged += 1
                if not framing_guarded(found):
                    kind.unframed += 1
                lacking = _ALL_LACKING if found is None else _SECURITY_HEADER_SET.difference(found)
                kind.lacking[lacking] = kind.lacking.get(lacking, 0) + 1
                if found is not None:
                    for header, value in found.items():
                        values = kind.values.get(header)
                        if values is None:
                            values = kind.values[header] = {}
                        if value not in values and len(values) >= MAX_VALUES:
                            value = ""
                        values[value] = values.get(value, 0) + 1
                for header in lacking:  # example paths, until each list is full
                    samples = kind.paths.setdefault(header, [])
                    if len(samples) < MAX_SAMPLES and path not in samples:
                        samples.append(path[:MAX_PATH_LENGTH])
            if cookies is not None:
                for cookie_name, missing in cookies:
                    entry = bucket.cookies.get(cookie_name)
                    if entry is None:
                        if len(bucket.cookies) >= MAX_COOKIE_NAMES:
                            continue
                        entry = bucket.cookies[cookie_name] = [0, 0, ()]
                    entry[0] += 1
                    if missing:
                        entry[1] += 1
                        if missing != entry[2]:  # every flag it lacked on any send
                            lacked = (*entry[2], *missing)
                            entry[2] = tuple(f for f in ("Secure", "HttpOnly") if f in lacked)
            if static:
                peer.static += 1
                samples = bucket.static_samples
                if len(samples) < MAX_SAMPLES and path not in samples:
                    samples.append(path[:MAX_PATH_LENGTH])

    def buckets(self, now: float | None = None) -> list[dict[str, Any]]:
        """The buckets of the last window, in their published form (plain JSON data)."""
        since = (time.time() if now is None else now) - self.window
        with self._lock:
            return [b.published() for b in self._buckets if b.start + self.bucket_seconds > since]


def cookie_flags(set_cookie: str) -> tuple[str, tuple[str, ...]] | None:
    """(cookie name, the flags it lacks of Secure and HttpOnly) of one ``Set-Cookie``, or
    ``None`` for a deletion (``Max-Age=0`` or an expiry in 1970), which carries nothing.

    CSRF cookies meant for scripts are not asked for HttpOnly. The value is never kept.
    """
    name, _, rest = set_cookie.partition("=")
    name = name.strip()[:64]
    attributes = [part.strip().lower() for part in rest.split(";")[1:]]
    if any(a == "max-age=0" or a.startswith("expires=thu, 01 jan 1970") for a in attributes):
        return None
    flags = {a.split("=", 1)[0] for a in attributes}
    missing = []
    if "secure" not in flags:
        missing.append("Secure")
    script_readable = any(word in name.lower() for word in SCRIPT_READABLE_COOKIES)
    if "httponly" not in flags and not script_readable:
        missing.append("HttpOnly")
    return name, tuple(missing)


def cookie_problems(set_cookie: str) -> tuple[str, tuple[str, ...]] | None:
    """(cookie name, missing flags) for a ``Set-Cookie`` lacking Secure or HttpOnly."""
    flags = cookie_flags(set_cookie)
    return flags if flags is not None and flags[1] else None


def framing_guarded(found: Mapping[str, str] | None) -> bool:
    """Whether a response's headers forbid other sites to frame it."""
    if found is None:
        return False
    frame_options = found.get("x-frame-options")
    if frame_options is not None and frame_options.strip().upper() in ("DENY", "SAMEORIGIN"):
        return True
    policy = found.get("content-security-policy")
    if policy is None:
        return False
    lowered = policy.lower()
    return "frame-ancestors" in lowered and any(
        part.split(None, 1)[:1] == ["frame-ancestors"] for part in lowered.split(";")
    )


#: The CSP directives the header checks judge: what is kept of a policy too long to keep.
_JUDGED_DIRECTIVES = ("default-src", "script-src", "frame-ancestors")


def _shortened(header: str, value: str) -> str:
    """A header value longer than :data:`MAX_VALUE_LENGTH`, cut so that what the checks
    judge survives: of a long CSP, the judged directives with their keywords (``'self'``,
    ``'unsafe-inline'``, a nonce or hash as ``'nonce-…'``, ``'sha256-…'``) and without
    host sources; of other headers, the start."""
    if header != "content-security-policy":
        return value[:MAX_VALUE_LENGTH]
    kept = []
    for part in value.split(";"):
        tokens = part.split()
        if not tokens or tokens[0].lower() not in _JUDGED_DIRECTIVES:
            continue
        keywords = [
            token.split("-", 1)[0] + "-…'"
            if token.lower().startswith(("'nonce-", "'sha"))
            else token
            for token in tokens[1:]
            if token.startswith("'")
        ]
        kept.append(" ".join([tokens[0], *dict.fromkeys(keywords)]))
    return "; ".join(kept)[:MAX_VALUE_LENGTH]


def valid_bucket(data: Any) -> bool:
    """Whether ``data`` has the shape of a published bucket (read from a sibling's file,
    which must not be able to crash or skew the merge with a wrong type)."""
    try:
        if not isinstance(data, dict) or not isinstance(data["start"], (int, float)):
            return False
        if not _count(data["requests"]) or not isinstance(data["peers"], dict):
            return False
        for address, peer in data["peers"].items():
            if not isinstance(address, str) or not isinstance(peer, dict):
                return False
            if not all(_count(peer[key]) for key in PEER_COUNTS):
                return False
            if not _counts(peer["chains"], numeric_keys=True) or not _counts(peer["xfp_values"]):
                return False
        kinds = data["kinds"]
        if not isinstance(kinds, dict) or set(kinds) != set(KINDS):
            return False
        for kind in kinds.values():
            if not _count(kind["judged"]) or not _count(kind["unframed"]):
                return False
            if not _counts(kind["missing"]):
                return False
            values, paths = kind["values"], kind["paths"]
            if not isinstance(values, dict) or not all(_counts(v) for v in values.values()):
                return False
            if not isinstance(paths, dict) or not all(_strings(p) for p in paths.values()):
                return False
        cookies = data["cookies"]
        if not isinstance(cookies, dict):
            return False
        for entry in cookies.values():
            if not (isinstance(entry, list) and len(entry) == 3):
                return False
            if not (_count(entry[0]) and _count(entry[1]) and _strings(entry[2])):
                return False
        if not (_count(data["server_errors"]) and _count(data["healthz"])):
            return False
        if not _strings(data["error_samples"]) or not _counts(data["logged_errors"]):
            return False
        return _strings(data["static_samples"])
    except (KeyError, TypeError, AttributeError):
        return False


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts(value: Any, *, numeric_keys: bool = False) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and (not numeric_keys or k.isdigit()) and _count(v)
        for k, v in value.items()
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def static_prefixes(app: Flask) -> tuple[str, ...]:
    """URL prefixes of the app's and its blueprints' static routes (``/static/``)."""
    prefixes = {
        rule.rule.split("<", 1)[0]
        for rule in app.url_map.iter_rules()
        if rule.endpoint == "static" or rule.endpoint.endswith(".static")
    }
    return tuple(sorted(p for p in prefixes if p))


_SECURITY_HEADER_SET = frozenset(SECURITY_HEADERS)
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
