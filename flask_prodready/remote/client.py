"""Remote mode's client: fetch a live instance's report and read it back.

``prodready --url URL`` and ``flask readiness --url URL`` ask ``GET /_readiness`` of a
running server with the bearer token from the environment and turn the JSON body back
into a report. Everything that keeps the report from being read (no token, a refused
token, a 404, a server that does not answer, a TLS error, an answer that is not a report)
raises :class:`RemoteError` with one line, already redacted; the command line prints it
and exits 2. The token is read from the environment only, is sent only to the URL given
(redirects are not followed), and is masked in every message.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from .._version import __version__
from ..engine.findings import Report
from ..engine.redaction import Redactor
from .reader import report_from_dict

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


class _Fetch:
    """One ``GET`` of the report, with every way it can fail turned into one line."""

    def __init__(self, target: Target, token: str, token_env: str, redactor: Redactor) -> None:
        self.target = target
        self.token = token
        self.token_env = token_env
        self.redactor = redactor

    def fail(self, message: str) -> RemoteError:
        return _fail(self.redactor.text(message))

    def connection_error(
        self, exc: BaseException, *, cafile: str | None, timeout: float
    ) -> RemoteError:
        where = self.target.netloc
        if isinstance(exc, ssl.SSLCertVerificationError):
            advice = (
                f"--cafile {cafile} does not vouch for it"
                if cafile
                else "pass --cafile FILE to trust a private CA"
            )
            return self.fail(f"TLS verification of {where} failed: {exc.verify_message}; {advice}")
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or _one_line(str(exc))
            if reason == "WRONG_VERSION_NUMBER":  # the usual answer of a plain-HTTP port
                reason += " (is it a plain http:// server?)"
            return self.fail(f"TLS handshake with {where} failed: {reason}")
        if isinstance(exc, socket.gaierror):
            return self.fail(f"could not resolve {self.target.host}: {exc.strerror}")
        if isinstance(exc, ConnectionRefusedError):
            return self.fail(f"could not connect to {where}: connection refused")
        if isinstance(exc, TimeoutError):
            return self.fail(f"could not connect to {where} within {timeout:g} s (--timeout)")
        reason = getattr(exc, "strerror", None) or _one_line(str(exc)) or type(exc).__name__
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
        path = target.path + (f"?{query}" if query else "")
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:
                raise self.connection_error(exc, cafile=cafile, timeout=timeout) from None
            deadline = time.monotonic() + timeout
            try:
                connection.request(
                    "GET",
                    path,
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Accept": "application/health+json, application/json;q=0.9",
                        "User-Agent": f"flask-prodready/{__version__} (remote)",
                    },
                )
                response = connection.getresponse()
                body = self._read(response, connection, deadline)
            except TimeoutError:
                raise self.fail(
                    f"{target.url} did not answer within {timeout:g} s (--timeout)"
                ) from None
            except http.client.HTTPException as exc:
                raise self.fail(
                    f"{target.url} did not answer with HTTP ({type(exc).__name__})"
                ) from None
            except OSError as exc:
                raise self.connection_error(exc, cafile=cafile, timeout=timeout) from None
        finally:
            connection.close()
        return self.judge(response, body)

    def _read(
        self,
        response: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        deadline: float,
    ) -> bytes:
        """The body, within the deadline and the size limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if connection.sock is not None:
                connection.sock.settimeout(left)
            chunk = response.read(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BODY:
                raise self.fail(
                    f"{self.target.url} answered more than {MAX_BODY // (1024 * 1024)} MB: "
                    "not a readiness report"
                )
            chunks.append(chunk)

    def judge(self, response: http.client.HTTPResponse, body: bytes) -> Report:
        """The report in a ``200``/``503`` answer, or the one line that says why there is none."""
        url = self.target.url
        status = response.status
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        data: Any = None
        if content_type.endswith(("/json", "+json")):
            try:
                data = json.loads(body)
            except ValueError:
                data = None
        error = data.get("error") if isinstance(data, Mapping) else None
        detail = f": {_one_line(error)}" if isinstance(error, str) and error.strip() else ""
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
            location = _one_line(response.getheader("Location") or "nowhere")
            raise self.fail(
                f"{url} answered {status}, a redirect to {location}: not followed, so the "
                "token goes nowhere else; use the final URL"
            )
        if status in _REPORT_STATUSES and isinstance(data, Mapping) and "error" not in data:
            try:
                return report_from_dict(data)
            except ValueError as exc:
                raise self.fail(
                    f"{url} answered {status} with JSON that is not a readiness report: "
                    f"{_one_line(str(exc))}"
                ) from None
        if detail:
            raise self.fail(f"{url} answered {status}{detail}")
        shown_type = content_type or "no content type"
        phrase = _one_line(response.reason or "", 60)
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
