"""``/healthz``: liveness for monitors, answered in front of Flask's request handling
(by :class:`flask_prodready.web.middleware.ProdReadyMiddleware`).

Why in front: Flask validates the ``Host`` header against ``TRUSTED_HOSTS`` before any
route runs, and a Kubernetes probe or a load balancer sends the pod's IP as ``Host``.
Behind that check, an app that follows ``config.trusted_hosts`` would fail its own
liveness probe and be restarted forever. Answering here also keeps ``/healthz`` as
cheap as a bare route: no request context, no session, no cookie, no after-request hook.
The route of the same path stays registered (``url_for("prodready.healthz")``, ``flask
routes``) and answers the same way.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from ..engine.findings import Status

if TYPE_CHECKING:
    from flask import Flask

    from ..engine.state import AppState

logger = logging.getLogger("flask_prodready")

HEALTH_JSON = "application/health+json"
PASS_BODY = b'{"status": "pass"}\n'
STATUS_LINES = {200: "200 OK", 503: "503 Service Unavailable"}


def healthz_answer(app: Flask, state: AppState, server_software: str | None) -> tuple[int, bytes]:
    """(HTTP status, body) of ``/healthz``: a constant unless checks are configured.

    Never raises: a failure to judge is a ``fail``, which is what a probe must see. When
    the named checks were all skipped (they cannot judge in this server, which
    ``init_app`` logs), the answer is ``200`` ``warn``: the process is up, and a probe
    that restarted it would not make the checks judge.
    """
    if not state.healthz_checks:
        return 200, PASS_BODY
    try:
        report = state.cached_report(
            app, key=("healthz",), checks=state.healthz_checks, server_software=server_software
        )
        status = report.status
        if status is Status.UNKNOWN:
            status = Status.FAIL if any(f.blocking for f in report.findings) else Status.WARN
    except Exception as exc:  # a probe gets an answer, whatever happened
        logger.error("flask-prodready /healthz could not judge: %s", type(exc).__name__)
        status = Status.FAIL
    code = 503 if status is Status.FAIL else 200
    return code, (json.dumps({"status": status.value}) + "\n").encode()


def healthz_headers(body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", HEALTH_JSON),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ]
