"""Remote mode against servers that misbehave (SPEC §6, §8): ``--timeout`` bounds the whole
exchange whatever the server does, and an answer that is not a readable report (too deep,
too big, not JSON) is one line on stderr and exit 2, never a traceback, never exit 1.

The slow servers are real sockets on loopback that trickle their answer a byte a second:
the per-read timeout of an HTTP client never trips on them, only a deadline does.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ..loopback import require_loopback_host
from ..stub_server import Canned, StubServer
from ..test_remote import HEALTH_JSON, one_line, prodready

HOST = "127.0.0.1"
#: Seconds a trickling server keeps sending before it gives up by itself.
TRICKLE_LIMIT = 30


@contextmanager
def trickling_server(prefix: bytes, drip: bytes) -> Iterator[int]:
    """A loopback server that reads one request, sends ``prefix`` at once, then ``drip``
    one byte a second (for at most ``TRICKLE_LIMIT`` seconds); yields its port."""
    stop = threading.Event()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((require_loopback_host(HOST, "trickling_server"), 0))
    listener.listen(4)
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                try:
                    connection.sendall(prefix)
                    for byte in drip[:TRICKLE_LIMIT]:
                        if stop.wait(1.0):
                            return
                        connection.sendall(bytes([byte]))
                except OSError:  # the client gave up: what the test wants
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(
    ("prefix", "drip"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 60, id="headers"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n"
            b"Content-Length: 1000\r\n\r\n",
            b'{"findings": [' + b" " * 60,
            id="body",
        ),
    ],
)
def test_timeout_bounds_a_server_that_trickles(prefix: bytes, drip: bytes) -> None:
    """prodready --url --timeout 3 against a server that trickles its headers, or its
    body, one byte a second: exit 2 with one line within 5 s."""
    with trickling_server(prefix, drip) as port:
        started = time.monotonic()
        done = prodready("--url", f"http://{HOST}:{port}", "--timeout", "3")
        elapsed = time.monotonic() - started
    assert one_line(done) == (
        f"Error: http://{HOST}:{port}/_readiness did not answer within 3 s (--timeout)"
    )
    assert elapsed < 5.0, elapsed


def _nested(levels: int) -> object:
    value: object = "deep"
    for _ in range(levels):
        value = [value]
    return value


def _report_with_observed(observed: object) -> bytes:
    return json.dumps(
        {
            "status": "fail",
            "findings": [
                {"id": "demo.deep", "level": "error", "message": "m", "observed": observed}
            ],
            "checks": {"demo.deep": {"status": "fail"}},
            "worker": {"pid": 1, "hostname": "h", "server": None},
            "generated_at": "2026-11-27T10:00:00Z",
        }
    ).encode()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        pytest.param(
            b"[" * 600 + b"]" * 600,
            "answered 200 with JSON nested deeper than 48 levels: not a readiness report",
            id="600-levels",
        ),
        pytest.param(
            _report_with_observed(_nested(600)),
            "answered 200 with JSON nested deeper than 48 levels: not a readiness report",
            id="600-levels-in-observed",
        ),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000,
            "answered 200 with JSON nested deeper than 48 levels: not a readiness report",
            id="deeper-than-the-parser",
        ),
        pytest.param(
            b'{"findings": [',
            "answered 200 OK with application/health+json, not a readiness report",
            id="not-json",
        ),
    ],
)
def test_unreadable_answer_is_one_line_and_exit_2(body: bytes, said: str) -> None:
    """JSON nested 600 levels (bare, or inside a finding's observed value), deeper than the
    parser goes, or cut short: one line naming why, exit 2, no traceback."""
    with StubServer(Canned(200, body, HEALTH_JSON)) as server:
        done = prodready("--url", f"http://{HOST}:{server.port}")
    assert one_line(done) == f"Error: http://{HOST}:{server.port}/_readiness {said}"


def test_answer_announced_too_big_is_refused_unread() -> None:
    """An answer whose Content-Length is over 16 MB is refused before its body is read."""
    prefix = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n"
        b"Content-Length: 999999999\r\n\r\n"
    )
    with trickling_server(prefix, b"[" * 10) as port:
        started = time.monotonic()
        done = prodready("--url", f"http://{HOST}:{port}", "--timeout", "10")
    assert one_line(done) == (
        f"Error: http://{HOST}:{port}/_readiness answered more than 16 MB: not a readiness report"
    )
    assert time.monotonic() - started < 5.0
