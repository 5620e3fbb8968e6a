"""``tls.*``: what only a client outside the server can see (remote mode).

The app behind a proxy never holds the certificate and never sees a plain-HTTP request
the proxy turned away, so these checks run on the client: ``prodready --url`` or
``flask readiness --url`` runs them after fetching the report, and adds their outcomes to
it. They read ``ctx.remote``: ``url`` (the report URL), ``cafile``, ``timeout`` (seconds
per connection) and ``http_port`` (where plain HTTP is asked, 80 by default).
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import time
from datetime import datetime, timezone
from urllib.parse import SplitResult, urljoin, urlsplit

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import REMOTE, check

#: Days before expiry when a certificate is an error, and when it is a warning.
EXPIRY_ERROR_DAYS = 14
EXPIRY_WARNING_DAYS = 30
#: Seconds per connection when the front end gives none.
DEFAULT_TIMEOUT = 10.0
#: The port plain HTTP is asked on when the front end gives none.
DEFAULT_HTTP_PORT = 80
#: Answers that count as a redirect, and how many plain-HTTP hops are followed.
REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
MAX_REDIRECTS = 5
#: Seconds kept back from the check's deadline, so it skips rather than times out.
DEADLINE_MARGIN = 0.2
#: Most bytes of a plain-HTTP answer's body read before the connection is closed.
MAX_BODY = 64 * 1024

DAY = 86400.0


def _https_target(ctx: CheckContext) -> SplitResult:
    """The report URL given to the front end; skip when there is none or it is not https."""
    remote = ctx.remote
    if remote is None or not remote.url:
        ctx.skip("no URL to judge: run prodready --url URL or flask readiness --url URL")
    target = urlsplit(remote.url)
    if target.scheme != "https" or not target.hostname:
        ctx.skip(
            f"the URL is {target.scheme}://, not https://: no certificate and no https:// "
            "site to judge"
        )
    return target


def _io_timeout(ctx: CheckContext) -> float:
    """Seconds the next connection may take: the front end's timeout, within the deadline."""
    given = ctx.remote.timeout if ctx.remote is not None else None
    wanted = float(given) if given is not None and given > 0 else DEFAULT_TIMEOUT
    left = ctx.time_left() - DEADLINE_MARGIN
    if left <= 0:
        ctx.skip("no time left to connect before the check's deadline")
    return min(wanted, left)


def _netloc(host: str, port: int, default: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def _reason(exc: BaseException) -> str:
    """A short, one-line description of a connection error."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _days(seconds: float) -> str:
    days = math.floor(seconds / DAY)
    if days < 1:
        return "less than a day"
    return "1 day" if days == 1 else f"{days} days"


@check(
    "tls.certificate_expiry",
    level=Level.ERROR,
    tags=["security"],
    modes=[REMOTE],
    blocking=True,
    title="The TLS certificate does not expire within 30 days",
    hint="Renew the certificate (certbot renew, or your provider's renewal), make sure "
    "renewal runs by itself (a timer or cron job), and reload the server so it serves the "
    "new one.",
)
def check_certificate_expiry(ctx: CheckContext) -> Finding | None:
    """The certificate the server presents in the TLS handshake, on the report URL's host
    and port, verified like the report fetch (``cafile`` included)."""
    target = _https_target(ctx)
    host = target.hostname or ""
    port = target.port or 443
    where = _netloc(host, port, 443)
    cafile = ctx.remote.cafile if ctx.remote is not None else None
    context = ssl.create_default_context(cafile=cafile if isinstance(cafile, str) else None)
    try:
        with (
            socket.create_connection((host, port), timeout=_io_timeout(ctx)) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            certificate = tls.getpeercert()
    except OSError as exc:  # ssl.SSLError is an OSError
        ctx.skip(f"could not open a TLS connection to {where}: {_reason(exc)}")
    not_after = certificate.get("notAfter") if certificate else None
    if not isinstance(not_after, str):
        ctx.skip(f"the certificate of {where} has no expiry date to read")
    expires = ssl.cert_time_to_seconds(not_after)
    left = expires - time.time()
    if left >= EXPIRY_WARNING_DAYS * DAY:
        return None
    level = Level.ERROR if left < EXPIRY_ERROR_DAYS * DAY else Level.WARNING
    stamp = datetime.fromtimestamp(expires, timezone.utc)
    return ctx.finding(
        f"The TLS certificate of {where} expires in {_days(left)}, on {stamp:%Y-%m-%d %H:%M} UTC.",
        level=level,
        observed={
            "host": host,
            "port": port,
            "not_after": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": math.floor(left / DAY),
        },
    )


def _ask(url: str, timeout: float) -> tuple[int, str, str | None]:
    """``GET url`` over plain HTTP: status, reason phrase and ``Location``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        connection.request(
            "GET",
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            headers={"User-Agent": "flask-prodready", "Accept": "*/*"},
        )
        response = connection.getresponse()
        response.read(MAX_BODY)
        return response.status, response.reason, response.getheader("Location")
    finally:
        connection.close()


@check(
    "tls.http_redirect",
    level=Level.WARNING,
    tags=["security"],
    modes=[REMOTE],
    blocking=True,
    title="Plain http:// redirects to https://",
    hint="Answer every plain-HTTP request with a redirect to https:// (nginx: a port-80 "
    "server with 'return 301 https://$host$request_uri;'), and send "
    "Strict-Transport-Security so browsers stop asking over plain HTTP.",
)
def check_http_redirect(ctx: CheckContext) -> Finding | None:
    """``GET /`` over plain HTTP on the report URL's host: a redirect that reaches
    ``https://`` passes; nothing listening passes too (plain HTTP is not served at all)."""
    target = _https_target(ctx)
    host = target.hostname or ""
    given = ctx.remote.http_port if ctx.remote is not None else None
    port = given if given is not None and given > 0 else DEFAULT_HTTP_PORT
    start = f"http://{_netloc(host, port, 80)}/"
    url = start
    for hop in range(MAX_REDIRECTS + 1):
        try:
            status, reason, location = _ask(url, _io_timeout(ctx))
        except ConnectionRefusedError:
            if hop == 0:
                return None  # nothing serves plain HTTP: nothing to send unencrypted
            ctx.skip(f"{start} redirects to {url}, which refused the connection")
        except http.client.HTTPException as exc:
            ctx.skip(f"{url} did not answer plain HTTP ({type(exc).__name__})")
        except OSError as exc:
            ctx.skip(f"could not ask {url}: {_reason(exc)}")
        except ValueError:  # a Location with a port that is not a number
            ctx.skip(f"{start} redirects to {url[:200]}, which is not a valid URL")
        if status not in REDIRECT_STATUSES or not location:
            hops = "1 redirect" if hop == 1 else f"{hop} redirects"
            via = "" if hop == 0 else f" (reached from {start} after {hops})"
            return ctx.finding(
                f"{url} answered {status} {reason} instead of redirecting to https://{via}.",
                observed={"url": url, "status": status, "redirects": hop},
            )
        following = urljoin(url, location.strip())
        scheme = urlsplit(following).scheme.lower()
        if scheme == "https":
            return None
        if scheme != "http":
            return ctx.finding(
                f"{url} redirects to {following[:200]}, not to https://.",
                observed={"url": url, "status": status, "location": following[:200]},
            )
        url = following
    return ctx.finding(
        f"{start} redirects more than {MAX_REDIRECTS} times over plain HTTP without "
        "reaching https://.",
        observed={"url": start, "redirects": MAX_REDIRECTS + 1},
    )
