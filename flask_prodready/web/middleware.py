"""The WSGI middleware ProdReady puts around the app: liveness, the report, observation.

It answers ``/healthz`` itself (see :mod:`flask_prodready.web.healthz` for why), answers
the report and its stylesheet itself too, in front of the app's own request hooks and
with the app context pushed (:class:`~flask_prodready.web.views.ReportEndpoint`), and
records every other response in the
worker's :class:`~flask_prodready.engine.observation.TrafficRecord` as its headers go out.
The per-request cost is one wrapped ``start_response`` and a few counter updates.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..engine.observation import PROBE_MARK, static_prefixes
from ..engine.sharing import sharing_for
from .healthz import STATUS_LINES, healthz_answer, healthz_headers

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from ..engine.state import AppState
    from .views import ReportEndpoint


class ProdReadyMiddleware:
    """Answers the liveness path, and observes the rest of the traffic."""

    def __init__(
        self, wsgi_app: WSGIApplication, app: Flask, state: AppState, report: ReportEndpoint
    ) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self.state = state
        self.report = report
        self.healthz_path = state.settings.healthz_path
        self.readiness_path = state.settings.readiness_path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        state = self.state
        if state.shared_pid != os.getpid():  # this worker's first request (after a fork)
            state.shared_pid = os.getpid()
            state.shared = sharing_for(state.traffic, environ)
        path = environ.get("PATH_INFO", "")
        if path == self.healthz_path and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            state.traffic.record_healthz()
            code, body = healthz_answer(self.app, self.state, environ.get("SERVER_SOFTWARE"))
            start_response(STATUS_LINES[code], healthz_headers(body))
            return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        if path.startswith(self.readiness_path) or environ.get(PROBE_MARK):
            if self.report.handles(path) and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
                # In front of the app's hooks: a login wall, a setup redirect, a rate limit
                # or a CSRF check never answers in the report's place.
                with self.app.app_context():
                    response = self.report.answer(environ)
                return response(environ, start_response)
            return self.wsgi_app(environ, start_response)

        record = state.traffic
        if record.static_prefixes is None:
            record.static_prefixes = static_prefixes(self.app)
        entry_remote = environ.get("REMOTE_ADDR")

        def observing_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            # Observation must never break a response. A bare try is cheaper per response
            # than contextlib.suppress.
            try:  # noqa: SIM105
                record.record(environ, entry_remote, status, headers)
            except Exception:
                pass
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, observing_start_response)
