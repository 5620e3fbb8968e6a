"""Live evidence no client can steer, one verdict per server, over a window: real gunicorn
(one and four sync workers) and real nginx on loopback.

Ordinary traffic comes from 127.0.0.2; the reports are fetched like an operator would,
with the token, and the remote command line reads them as a release pipeline does.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flask_prodready.engine.sharing import PUBLISH_SECONDS, default_base

from .processes import CLIENT_ADDRESS, environment, fetch, gunicorn, nginx

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
BIN = Path(sys.executable).parent
FORGED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}

APP = """
import os
from flask import Flask, request
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
    PRODREADY_HEALTHZ_CHECKS=["proxy"],
    PRODREADY_EVIDENCE_WINDOW=float(os.environ.get("WINDOW", "900")),
)
ProdReady(app)

STRICT = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
WEAK = {
    **STRICT,
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'",
    "Strict-Transport-Security": "max-age=300",
}

@app.route("/")
def index():
    return "<!doctype html><p>plain</p>"

@app.route("/page")
def page():
    headers = {"strict": STRICT, "weak": WEAK}.get(request.args.get("headers"), {})
    return "<!doctype html><p>page</p>", 200, headers
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the app and a static file (served by the app: no nginx location)."""
    folder = tmp_path_factory.mktemp("live-evidence")
    folder.chmod(0o755)
    (folder / "evidenceapp.py").write_text(textwrap.dedent(APP))
    (folder / "static").mkdir()
    (folder / "static" / "site.css").write_text("body { color: #111; }\n")
    return folder


def get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    return fetch(port, path, headers=headers, source=CLIENT_ADDRESS).status


def report(port: int, query: str = "") -> dict[str, Any]:
    answer = fetch(port, f"/_readiness{query}", headers=AUTH, source=CLIENT_ADDRESS)
    assert answer.status in (200, 503), answer.body[:300]
    body: dict[str, Any] = answer.json()
    return body


def findings(body: dict[str, Any], check_id: str) -> list[dict[str, Any]]:
    return [f for f in body["findings"] if f["id"] == check_id]


def fired(body: dict[str, Any]) -> set[str]:
    return {f["id"] for f in body["findings"] if not f["silenced"]}


def test_forged_headers_on_gunicorn_reached_directly(project: Path) -> None:
    """Gunicorn reached directly, no ProxyFix: 20 requests forging X-Forwarded-For/-Proto
    among 200 ordinary ones raise no proxy.* error, and /healthz with the proxy checks
    stays 200."""
    with gunicorn(project, "evidenceapp:app", ["-w", "1"], ENV) as port:
        for index in range(220):
            assert get(port, "/", FORGED if index % 11 == 0 else None) == 200
        body = report(port)
        healthz = fetch(port, "/healthz", source=CLIENT_ADDRESS)
    proxy = [f for f in body["findings"] if f["id"].startswith("proxy.")]
    assert [(f["id"], f["level"]) for f in proxy] == [("proxy.missing_proxyfix", "info")]
    assert healthz.status == 200
    assert healthz.json() == {"status": "pass"}


def test_client_supplied_proto_does_not_hide_a_missing_header(project: Path) -> None:
    """nginx without X-Forwarded-Proto, 200 ordinary requests and 5 carrying a client's
    X-Forwarded-Proto: http (which nginx passes on): proxy.no_forwarded_proto stays."""
    with (
        gunicorn(project, "evidenceapp:app", ["-w", "1"], ENV) as upstream,
        nginx(project, upstream) as port,
    ):
        for index in range(205):
            proto = {"X-Forwarded-Proto": "http"} if index % 41 == 0 else None
            assert get(port, "/", proto) == 200
        body = report(port)
    [finding] = findings(body, "proxy.no_forwarded_proto")
    assert finding["message"].startswith("205 of 205 requests came through a proxy (127.0.0.1)")
    assert "only 5 carried X-Forwarded-Proto" in finding["message"]


@pytest.mark.parametrize("kind", ["weak", "none"])
def test_one_strict_page_does_not_clear_the_header_findings(project: Path, kind: str) -> None:
    """100 pages whose CSP allows 'unsafe-inline' and whose HSTS is 300 s (or that lack
    both), then one page with strict values: headers.csp and headers.hsts are still
    reported, naming the share."""
    with gunicorn(project, "evidenceapp:app", ["-w", "1"], ENV) as port:
        for _ in range(100):
            assert get(port, f"/page?headers={kind}") == 200
        assert get(port, "/page?headers=strict") == 200
        body = report(port)
    [csp] = findings(body, "headers.csp")
    [hsts] = findings(body, "headers.hsts")
    if kind == "weak":
        assert csp["message"] == (
            "The Content-Security-Policy allows 'unsafe-inline' scripts on 100 of 101 HTML "
            "responses: it does not stop injected scripts."
        )
        assert hsts["message"] == (
            "Strict-Transport-Security has max-age=300, under 180 days (15552000) on 100 of "
            "101 HTML responses."
        )
    else:
        assert csp["message"] == (
            "No Content-Security-Policy on 100 of 101 HTML responses (for example /page)."
        )
        assert hsts["message"] == (
            "No Strict-Transport-Security on 100 of 101 HTML responses (for example /page)."
        )


def test_four_workers_give_one_verdict(project: Path) -> None:
    """gunicorn -w 4 behind nginx, static files served through the app a few times among
    ordinary traffic: 20 reports (cache off) all carry static.served_by_app, all with the
    same finding ids, and say they cover several workers."""
    with (
        gunicorn(project, "evidenceapp:app", ["-w", "4"], ENV) as upstream,
        nginx(project, upstream) as port,
    ):
        for index in range(80):
            assert get(port, "/static/site.css" if index % 20 == 0 else "/") == 200
        time.sleep(PUBLISH_SECONDS * 2.5)  # every worker has written what it counted
        bodies = [report(port) for _ in range(20)]
    answered_by = {body["worker"]["pid"] for body in bodies}
    ids = [frozenset(fired(body)) for body in bodies]
    assert all("static.served_by_app" in found for found in ids)
    assert len(set(ids)) == 1, [sorted(found) for found in set(ids)]
    [served] = findings(bodies[0], "static.served_by_app")
    assert served["message"].startswith("The app itself served 4 of ")
    assert all(body["evidence"]["requests"] >= 80 for body in bodies)
    assert max(body["evidence"]["workers"] for body in bodies) >= 2
    assert len(answered_by) >= 2  # the reports came from more than one worker


def test_the_window_forgets(project: Path) -> None:
    """With a 3 s window: a forged burst is reported (at info) and then forgotten, and
    static files no longer served through the app clear static.served_by_app."""
    env = {**ENV, "WINDOW": "3"}
    with gunicorn(project, "evidenceapp:app", ["-w", "1"], env) as port:
        for index in range(30):
            path = "/static/site.css" if index < 5 else "/"
            assert get(port, path, FORGED if index % 3 == 0 else None) == 200
        before = report(port)
        time.sleep(3.5)
        for _ in range(20):  # the problem fixed: ordinary traffic only
            assert get(port, "/") == 200
        after = report(port)
    assert "static.served_by_app" in fired(before)
    assert [f["level"] for f in findings(before, "proxy.missing_proxyfix")] == ["info"]
    assert "static.served_by_app" not in fired(after)
    assert findings(after, "proxy.missing_proxyfix") == []
    assert after["evidence"]["requests"] == 20
    assert after["evidence"]["window_seconds"] == 3


def test_the_evidence_folder_is_private(project: Path) -> None:
    """Under gunicorn -w 2 the server's evidence folder is mode 0700 and the server's
    user's, and holds one 0600 file per worker that served a request."""
    with gunicorn(project, "evidenceapp:app", ["-w", "2"], ENV) as port:
        for _ in range(20):
            assert get(port, "/") == 200
        time.sleep(PUBLISH_SECONDS * 2.5)
        body = report(port)
        worker = body["worker"]["pid"]
        base = default_base() / f"prodready-{os.geteuid()}"
        folders = [f for f in base.iterdir() if f.name.startswith("server-")]
        ours = [f for f in folders if any(p.name == f"{worker}.json" for p in f.iterdir())]
        assert len(ours) == 1
        folder = ours[0]
        for level in (base, folder):
            found = os.lstat(level)
            assert stat.S_ISDIR(found.st_mode)
            assert stat.S_IMODE(found.st_mode) == 0o700
            assert found.st_uid == os.geteuid()
        files = sorted(folder.glob("*.json"))
        assert 1 <= len(files) <= 2
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


PATH_WITH_ESCAPES = "/%1b]0;owned%07%1b[2J%1b[32mALL%20GOOD%1b[0m%9b1A"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _control_bytes(text: str) -> list[str]:
    """Control characters in ``text`` other than the newline and tab a renderer writes."""
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def test_request_data_is_inert_in_every_output(project: Path) -> None:
    """A request path holding ESC, BEL and CSI sequences becomes an example path of the
    header findings: prodready --url and flask readiness --url print no control character
    (besides their own newlines), and JSON, HTML, JUnit and SARIF still parse."""
    with gunicorn(project, "evidenceapp:app", ["-w", "1"], ENV) as port:
        for _ in range(15):
            assert get(port, PATH_WITH_ESCAPES) == 404
        url = f"http://127.0.0.1:{port}/_readiness"
        body = report(port)
        html = fetch(port, "/_readiness?format=html", headers=AUTH).body.decode()
        env = environment(project, {"PRODREADY_TOKEN": TOKEN})
        outputs = {}
        for command in ([str(BIN / "prodready")], [str(BIN / "flask"), "readiness"]):
            for output_format in ("text", "json", "junit", "sarif"):
                done = subprocess.run(
                    [*command, "--url", url, "--format", output_format],
                    cwd=project,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode in (0, 1), done.stderr
                label = "prodready" if len(command) == 1 else "flask readiness"
                outputs[(label, output_format)] = done.stdout
    examples = [f["message"] for f in body["findings"] if "(for example /" in f["message"]]
    assert examples, body["findings"]
    assert all("\\x1b" in message for message in examples)
    assert _control_bytes(json.dumps(body, ensure_ascii=False)) == []
    parser = _Collect()
    parser.feed(html)
    assert _control_bytes("".join(parser.text)) == []
    for (command, output_format), text in outputs.items():
        assert _control_bytes(text) == [], (command, output_format)
        if output_format in ("json", "sarif"):
            json.loads(text)
        elif output_format == "junit":
            ET.fromstring(text)
    assert "\\x1b" in outputs[("prodready", "text")]
