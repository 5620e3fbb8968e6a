"""OpenMetrics from a real gunicorn worker, scraped as Prometheus scrapes it."""

from __future__ import annotations

import secrets
import socket
import textwrap
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from ..support import results_of
from .processes import fetch, gunicorn

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
KEY = secrets.token_urlsafe(48)
#: The Accept header of a Prometheus 3 scrape.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)

APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SESSION_COOKIE_HTTPONLY=False,
    PRODREADY_CACHE_SECONDS=30,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
)
ProdReady(app)

@app.route("/")
def index():
    return "<!doctype html><p>metrics</p>"
"""


def test_gunicorn_worker_serves_openmetrics(tmp_path: Path) -> None:
    """Under gunicorn, a Prometheus-style scrape with the token gets 200 OpenMetrics that
    prometheus_client parses, naming the worker that built the report and agreeing with
    the JSON report of the same run; without the token it gets 401."""
    (tmp_path / "metricsapp.py").write_text(textwrap.dedent(APP))
    env = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": KEY}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with gunicorn(tmp_path, "metricsapp:app", ["--workers", "1"], env=env) as port:
        assert fetch(port, "/").status == 200
        scrape = fetch(port, "/_readiness", headers={**auth, "Accept": PROMETHEUS_ACCEPT})
        report = fetch(port, "/_readiness", headers=auth)
        refused = fetch(port, "/_readiness?format=openmetrics")
        head = fetch(port, "/_readiness?format=openmetrics", method="HEAD", headers=auth)

    assert scrape.status == 200  # the report fails (cookies.session_httponly), metrics are 200
    assert scrape.headers["Content-Type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    text = scrape.body.decode("utf-8")
    assert text.endswith("# EOF\n")
    assert KEY not in text
    assert TOKEN not in text
    families = {family.name: family for family in text_string_to_metric_families(text)}

    body = report.json()
    assert report.status == 503
    assert body["cached"] is True  # the same run as the scrape
    worker = {"pid": str(body["worker"]["pid"]), "hostname": socket.gethostname()}
    for family in families.values():
        for sample in family.samples:
            assert {k: sample.labels[k] for k in ("pid", "hostname")} == worker

    statuses = {
        sample.labels["check"]: sample.labels["status"]
        for sample in families["prodready_check_status"].samples
        if sample.value == 1
    }
    assert statuses == results_of(body)
    assert statuses["server.dev_server"] == "pass"  # gunicorn, not the development server
    assert statuses["cookies.session_httponly"] == "fail"
    overall = {s.labels["status"]: s.value for s in families["prodready_status"].samples}
    assert overall == {"pass": 0, "warn": 0, "fail": 1, "unknown": 0}
    findings = {s.labels["level"]: s.value for s in families["prodready_findings"].samples}
    assert findings == {level: body["summary"][level] for level in findings}
    [silenced] = families["prodready_silenced_findings"].samples
    assert silenced.value == body["summary"]["silenced"]

    assert refused.status == 401
    assert (head.status, head.body) == (200, b"")
