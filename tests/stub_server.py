"""A small HTTP or HTTPS server on loopback, in a thread, answering what a test tells it.

Used where a real app server cannot be made to answer what the test needs (a 502 page, a
redirect to another port, a slow answer, a body that is not a report). It records every
request it receives, headers included, and stops its thread when the ``with`` block ends.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .loopback import require_loopback_host

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Canned:
    """One answer: status, body, headers, and seconds to wait before answering."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]


Answer = Canned | Callable[[str], Canned]


class StubServer:
    """``with StubServer(Canned(200, b"hi")) as server:`` serves on ``server.port``."""

    def __init__(self, answer: Answer, *, context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.requests: list[Seen] = []
        self._stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                stub.requests.append(Seen(self.path, dict(self.headers.items())))
                canned = stub.answer if isinstance(stub.answer, Canned) else stub.answer(self.path)
                if canned.delay:
                    stub._stopping.wait(canned.delay)
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(canned.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer((require_loopback_host(HOST, "StubServer"), 0), Handler)
        self._server.daemon_threads = True
        if context is not None:
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def tls_context(certificate: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context presenting ``certificate``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context
