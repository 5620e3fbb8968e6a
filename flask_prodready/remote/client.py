"""Remote mode's client: fetch a live instance's report and read it back.

``prodready --url URL`` and ``flask readiness --url URL`` ask ``GET /_readiness`` of a
running server with the bearer token from the environment and turn the JSON body back
into a report. Everything that keeps the report from being read (no token, a refused
token, a 404, a server that does not answer, a TLS error, an answer that is not a
report: too big, too deep, not JSON, the wrong shape) raises :class:`RemoteError` with
one line, already redacted; the command line prints it and exits 2. The token is read
from the environment only, is sent only to the URL given (redirects are not followed,
proxies are not used), and is masked in every message.

HTTP is urllib3's (imported when a report is fetched, not with the package). Its
timeouts bound each socket operation, which a server that trickles its headers or body
a byte at a time never trips; so the exchange runs on a daemon thread, and the caller
waits for it until one deadline, ``--timeout`` seconds after the start, then shuts the
connection down and reports the timeout. Connecting, the TLS handshake, the headers and
the body all fall under that one deadline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlencode, urlsplit

from .._version import __version__
from ..engine.findings import Report
from ..engine.redaction import Redactor
from ..engine.runner import in_daemon_thread
from .reader import report_from_dict

if TYPE_CHECKING:
    from urllib3.connection import HTTPConnection

#: Where the token is read from unless ``--token-env NAME`` names another variable.
DEFAULT_TOKEN_ENV = "PRODREADY_TOKEN"
#: The path a URL without one gets (``PRODREADY_READINESS_PATH``'s default).
DEFAULT_PATH = "/_readiness"
#: Seconds for connecting (TLS handshake included) and for the whole answer.
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 120.0
#: Seconds the remote checks get beyond the connection timeout before they time out.
CHECK_MARGIN = 2.0
#: Largest answer read; a report is a few kilobytes.
MAX_BODY = 16 * 1024 * 1024
#: Deepest nesting of JSON read as a report. A report is a few levels deep, and the
#: ``observed`` values in it at most 32 more; a body nested deeper was built to exhaust
#: the reader's stack.
MAX_DEPTH = 48
#: Longest text of the server's own error message shown in the one-line error.
SHOWN_ERROR = 200
_READ_CHUNK = 64 * 1024
_REPORT_STATUSES = frozenset({200, 503})
#: Environment variable names shown in messages; anything else might be a token pasted
#: into ``--token-env`` by mistake and is never echoed.
_SHOWN_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


class RemoteError(Exception):
    """The report could not be had; ``message`` says why in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fail(message: str) -> RemoteError:
    return RemoteError(message)


@dataclass(frozen=True)
class Target:
    """The report URL, checked: scheme, host, port and path, no credentials, no query."""

    scheme: str
    host: str
    port: int
    path: str
    netloc: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def parse_url(url: str) -> Target:
    """``--url`` as a :class:`Target`; a URL without a path gets ``/_readiness``.

    A URL with any other path is used as it is (an app mounted under a prefix, or with
    its own ``PRODREADY_READINESS_PATH``). Credentials and query strings are refused
    without being echoed: they would put a secret on the command line.
    """
    try:
        parts: SplitResult = urlsplit(url.strip())
    except ValueError:
        raise _fail("--url is not a valid URL") from None
    if "@" in parts.netloc:
        raise _fail(
            "--url must not carry a user or password (user:password@host): the token comes "
            f"from the environment ({DEFAULT_TOKEN_ENV} or --token-env NAME)"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise _fail("--url must be a full http:// or https:// URL, like https://host/_readiness")
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise _fail(
            "--url must not have a query string or fragment: narrow the report with --tag and "
            "--exclude (the token comes from the environment)"
        )
    try:
        port = parts.port
    except ValueError:
        raise _fail("--url has an invalid port") from None
    host = parts.hostname
    if not host:
        raise _fail("--url has no host")
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return Target(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        path=path,
        netloc=parts.netloc.lower(),
    )


def read_token(env_name: str | None) -> tuple[str, str]:
    """The token and the name of the variable it came from; one-line errors never show it."""
    name = env_name or DEFAULT_TOKEN_ENV
    shown = name if _SHOWN_NAME.match(name) else "the variable named by --token-env"
    value = os.environ.get(name, "")
    if not value.strip():
        raise _fail(
            f"no token: {shown} is not set or empty; set it to the server's PRODREADY_TOKEN"
            + (" (or name another variable with --token-env NAME)" if env_name is None else "")
        )
    token = value.strip()
    if not all(" " <= char <= "~" for char in token):
        raise _fail(
            f"the token in {shown} has characters an HTTP header cannot carry "
            "(only printable ASCII is sent)"
        )
    return token, shown


def ssl_context(cafile: str | None) -> ssl.SSLContext:
    """The system's trusted CAs, or only those in ``cafile`` when given."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise _fail(
            f"--cafile {cafile}: not a readable PEM file of CA certificates ({reason})"
        ) from None


def _one_line(text: str, limit: int = SHOWN_ERROR) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists and objects deeper than ``limit`` (walked without
    recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            items: Iterable[Any] = value.values()
        elif isinstance(value, list):
            items = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in items)
    return False


class _TooBig(Exception):
    """The answer is larger than :data:`MAX_BODY`."""


@dataclass(frozen=True)
class _Answer:
    """What the server answered: status line, the headers that matter, and the body."""

    status: int
    reason: str
    content_type: str
    location: str | None
    body: bytes


class _Exchange:
    """One ``GET`` with urllib3, run on a thread of its own; :meth:`abort` ends it from the
    thread that waits."""

    def __init__(
        self,
        target: Target,
        path: str,
        headers: Mapping[str, str],
        context: ssl.SSLContext,
        deadline: float,
    ) -> None:
        self.target = target
        self.path = path
        self.headers = dict(headers)
        self.context = context
        self.deadline = deadline
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self._aborted = False

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self._aborted:
            raise TimeoutError
        return left

    def run(self) -> _Answer:
        from urllib3.connection import HTTPConnection, HTTPSConnection

        target = self.target
        connection: HTTPConnection
        if target.scheme == "https":
            connection = HTTPSConnection(
                target.host, target.port, timeout=self._left(), ssl_context=self.context
            )
        else:
            connection = HTTPConnection(target.host, target.port, timeout=self._left())
        with self._lock:
            self._connection = connection
            if self._aborted:
                raise TimeoutError
        try:
            connection.connect()
            self.connected.set()
            connection.timeout = self._left()
            connection.request("GET", self.path, headers=self.headers, preload_content=False)
            response = connection.getresponse()
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_BODY:
                raise _TooBig
            chunks: list[bytes] = []
            size = 0
            while True:
                if connection.sock is not None:
                    connection.sock.settimeout(self._left())
                chunk = response.read(_READ_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY:
                    raise _TooBig
                chunks.append(chunk)
            return _Answer(
                status=response.status,
                reason=response.reason or "",
                content_type=response.headers.get("Content-Type", ""),
                location=response.headers.get("Location"),
                body=b"".join(chunks),
            )
        finally:
            connection.close()

    def abort(self) -> None:
        """Stop the exchange where it is: the socket is shut down, so a read waiting on
        it returns at once (closing alone would not wake it)."""
        with self._lock:
            self._aborted = True
            sock = None if self._connection is None else self._connection.sock
        if sock is not None:
            # The plain socket's shutdown, also under TLS: it ends the read at once.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Fetch:
    """One ``GET`` of the report, with every way it can fail turned into one line."""

    def __init__(self, target: Target, token: str, token_env: str, redactor: Redactor) -> None:
        self.target = target
        self.token = token
        self.token_env = token_env
        self.redactor = redactor

    def fail(self, message: str) -> RemoteError:
        return _fail(self.redactor.text(message))

    def shown(self, text: str, limit: int = SHOWN_ERROR) -> str:
        """Text from the server or an exception, masked, then on one line and cut: masked
        first, so neither joining its lines nor the cut can leave a piece of a secret."""
        return _one_line(self.redactor.text(text), limit)

    def connection_error(
        self, exc: BaseException, *, cafile: str | None, timeout: float
    ) -> RemoteError:
        where = self.target.netloc
        # urllib3 wraps the socket's own error (refused, unresolvable) in one of its own.
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        if isinstance(cause, ssl.SSLCertVerificationError):
            advice = (
                f"--cafile {cafile} does not vouch for it"
                if cafile
                else "pass --cafile FILE to trust a private CA"
            )
            return self.fail(
                f"TLS verification of {where} failed: {cause.verify_message}; {advice}"
            )
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or self.shown(str(cause))
            if reason == "WRONG_VERSION_NUMBER":  # the usual answer of a plain-HTTP port
                reason += " (is it a plain http:// server?)"
            return self.fail(f"TLS handshake with {where} failed: {reason}")
        if isinstance(cause, socket.gaierror):
            return self.fail(f"could not resolve {self.target.host}: {cause.strerror}")
        if isinstance(cause, ConnectionRefusedError):
            return self.fail(f"could not connect to {where}: connection refused")
        if isinstance(cause, TimeoutError) or type(exc).__name__ == "ConnectTimeoutError":
            return self.fail(f"could not connect to {where} within {timeout:g} s (--timeout)")
        reason = getattr(cause, "strerror", None) or self.shown(str(cause)) or type(cause).__name__
        return self.fail(f"could not connect to {where}: {reason}")

    def run(
        self,
        *,
        context: ssl.SSLContext,
        cafile: str | None,
        timeout: float,
        tags: Iterable[str],
        exclude: Iterable[str],
    ) -> Report:
        target = self.target
        query = urlencode([*(("tag", t) for t in tags), *(("exclude", i) for i in exclude)])
        exchange = _Exchange(
            target,
            target.path + (f"?{query}" if query else ""),
            {
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/health+json, application/json;q=0.9",
                "User-Agent": f"flask-prodready/{__version__} (remote)",
            },
            context,
            time.monotonic() + timeout,
        )
        too_slow = self.fail(f"{target.url} did not answer within {timeout:g} s (--timeout)")
        future = in_daemon_thread("prodready:remote", exchange.run)
        try:
            answer = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            exchange.abort()
            if exchange.connected.is_set():
                raise too_slow from None
            raise self.fail(
                f"could not connect to {target.netloc} within {timeout:g} s (--timeout)"
            ) from None
        except _TooBig:
            raise self.fail(
                f"{target.url} answered more than {MAX_BODY // (1024 * 1024)} MB: "
                "not a readiness report"
            ) from None
        except Exception as exc:
            if not exchange.connected.is_set():
                raise self.connection_error(exc, cafile=cafile, timeout=timeout) from None
            if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
                raise too_slow from None
            raise self.fail(
                f"{target.url} did not answer with HTTP ({type(exc).__name__})"
            ) from None
        return self.judge(answer)

    def judge(self, answer: _Answer) -> Report:
        """The report in a ``200``/``503`` answer, or the one line that says why there is none."""
        url = self.target.url
        status = answer.status
        content_type = answer.content_type.split(";")[0].strip().lower()
        data: Any = None
        if content_type.endswith(("/json", "+json")):
            try:
                data = json.loads(answer.body)
            except RecursionError:
                data = None
                too_deep = True
            except ValueError:
                data = None
                too_deep = False
            else:
                too_deep = _too_deep(data, MAX_DEPTH)
            if too_deep:
                raise self.fail(
                    f"{url} answered {status} with JSON nested deeper than {MAX_DEPTH} "
                    "levels: not a readiness report"
                )
        error = data.get("error") if isinstance(data, Mapping) else None
        detail = f": {self.shown(error)}" if isinstance(error, str) and error.strip() else ""
        if status == 401:
            raise self.fail(
                f"{url} answered 401: the token in {self.token_env} was refused (set "
                f"{DEFAULT_TOKEN_ENV} or --token-env NAME to the server's token)"
            )
        if status == 404:
            raise self.fail(
                f"{url} answered 404: no readiness report there (is PRODREADY_TOKEN set on "
                "the server, and is the path its PRODREADY_READINESS_PATH?)"
            )
        if 300 <= status < 400:
            location = self.shown(answer.location or "nowhere")
            raise self.fail(
                f"{url} answered {status}, a redirect to {location}: not followed, so the "
                "token goes nowhere else; use the final URL"
            )
        if status in _REPORT_STATUSES and isinstance(data, Mapping) and "error" not in data:
            try:
                return report_from_dict(data)
            except (ValueError, TypeError) as exc:
                raise self.fail(
                    f"{url} answered {status} with JSON that is not a readiness report: "
                    f"{self.shown(str(exc))}"
                ) from None
        if detail:
            raise self.fail(f"{url} answered {status}{detail}")
        shown_type = content_type or "no content type"
        phrase = self.shown(answer.reason, 60)
        raise self.fail(
            f"{url} answered {' '.join(filter(None, [str(status), phrase]))} with {shown_type}, "
            "not a readiness report"
        )


def fetch_report(
    target: Target,
    *,
    token: str,
    token_env: str,
    redactor: Redactor,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tags: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Report:
    """The report at ``target``, narrowed by ``tags`` and ``exclude`` on the server.

    ``token_env`` is the name shown in messages for where the token came from. Raises
    :class:`RemoteError` when the report cannot be had.
    """
    return _Fetch(target, token, token_env, redactor).run(
        context=ssl_context(cafile), cafile=cafile, timeout=timeout, tags=tags, exclude=exclude
    )
