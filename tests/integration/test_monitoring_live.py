"""What the running app says about itself, through real gunicorn on loopback: error records
and server errors across two workers, and whether anything polls /healthz."""

from __future__ import annotations

import secrets
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ..support import result_of
from .processes import CLIENT_ADDRESS, fetch, gunicorn

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
LIVE_IDS = ("monitoring.errors_logged", "monitoring.server_errors", "monitoring.healthz_unpolled")

APP = """
import logging, os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_EVIDENCE_WINDOW=float(os.environ.get("WINDOW", "900")),
)
ProdReady(app)
log = logging.getLogger("shop.checkout")

@app.route("/")
def index():
    return "ok"

@app.route("/pay")
def pay():
    log.error("card declined for %s", "4111-1111-1111-1111")
    return "payment failed", 500
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("monitoring-live")
    folder.chmod(0o755)
    (folder / "shopapp.py").write_text(textwrap.dedent(APP))
    return folder


def report(port: int) -> dict[str, Any]:
    answer = fetch(port, "/_readiness?tag=monitoring", headers=AUTH, source=CLIENT_ADDRESS)
    assert answer.status in (200, 503), answer.body[:300]
    body: dict[str, Any] = answer.json()
    return body


def live_findings(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in body["findings"] if f["id"] in LIVE_IDS}


def test_errors_on_5_of_100_requests(project: Path) -> None:
    """Two workers; a route that logs an ERROR and answers 500 on 5 of 100 requests:
    monitoring.errors_logged (count and logger, never the message) and
    monitoring.server_errors, whichever worker answers the report."""
    with gunicorn(project, "shopapp:app", ["-w", "2"], ENV) as port:
        for index in range(100):
            expected = 500 if index % 20 == 0 else 200
            path = "/pay" if expected == 500 else "/"
            assert fetch(port, path, source=CLIENT_ADDRESS).status == expected
        time.sleep(1.5)  # each worker publishes its evidence for its sibling
        bodies = [report(port) for _ in range(4)]
    for body in bodies:
        found = live_findings(body)
        assert found["monitoring.errors_logged"]["message"] == (
            "5 log records at ERROR or above in the last 900 s, from shop.checkout 5: "
            "errors the app reports, which someone should read."
        )
        assert found["monitoring.server_errors"]["message"] == (
            "5 of 100 responses in the last 900 s were server errors (5xx), more than 1%, "
            "for example /pay."
        )
        assert "4111" not in str(body)


def test_clean_traffic_is_quiet(project: Path) -> None:
    """100 good requests: neither error check fires."""
    with gunicorn(project, "shopapp:app", ["-w", "1"], ENV) as port:
        for _ in range(100):
            assert fetch(port, "/", source=CLIENT_ADDRESS).status == 200
        body = report(port)
    found = live_findings(body)
    assert "monitoring.errors_logged" not in found
    assert "monitoring.server_errors" not in found
    assert result_of(body, "monitoring.server_errors") == "pass"


def test_healthz_unpolled_until_polled(project: Path) -> None:
    """A 2 s window, the server up longer and no /healthz request: the warning; one
    /healthz request later it is quiet."""
    with gunicorn(project, "shopapp:app", ["-w", "1"], {**ENV, "WINDOW": "2"}) as port:
        time.sleep(2.5)
        before = live_findings(report(port))
        assert fetch(port, "/healthz", source=CLIENT_ADDRESS).status == 200
        after = live_findings(report(port))
    message = before["monitoring.healthz_unpolled"]["message"]
    assert message.startswith("The server has been up ")
    assert message.endswith(
        "nothing requested /healthz in the last 2 s: no uptime monitor or probe is polling it."
    )
    assert "monitoring.healthz_unpolled" not in after
