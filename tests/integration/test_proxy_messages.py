"""proxy.missing_proxyfix names what the app gets wrong, behind a real nginx in front of a
real gunicorn on loopback.

nginx sends X-Forwarded-For and, as a TLS-terminating proxy would, X-Forwarded-Proto
https. gunicorn runs with its default forwarded_allow_ips (127.0.0.1,::1), so it applies
X-Forwarded-Proto itself (``wsgi.url_scheme`` from its ``secure_scheme_headers``) and never
rewrites REMOTE_ADDR: without ProxyFix only the client's address is wrong.
"""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flask_prodready.engine.evidence import MIN_SAMPLE

from ..support import result_of
from .processes import CLIENT_ADDRESS, HOST, fetch, gunicorn, nginx

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
#: Comfortably above the minimum sample of a live verdict.
REQUESTS = MIN_SAMPLE * 3
#: What a proxy that terminates TLS adds to the X-Forwarded-For the helper always sets.
TLS_TERMINATION = ["proxy_set_header X-Forwarded-Proto https;"]

APP = """
import os
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
)
ProdReady(app)
if os.environ.get("WITH_PROXYFIX"):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)

@app.route("/whoami")
def whoami():
    return f"{request.remote_addr} {request.scheme}"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world-readable folder with the app (nginx's workers may run as nobody)."""
    folder = tmp_path_factory.mktemp("proxy-messages")
    folder.chmod(0o755)
    (folder / "proxyapp.py").write_text(textwrap.dedent(APP))
    return folder


@pytest.fixture(autouse=True)
def _gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn reads FORWARDED_ALLOW_IPS from the environment: keep its default."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)


def traffic_and_report(project: Path, env: dict[str, str]) -> tuple[set[str], dict[str, Any]]:
    """Send REQUESTS requests from 127.0.0.2 through nginx to gunicorn, then fetch the
    report through nginx; returns what the app said it saw and the report."""
    with (
        gunicorn(project, "proxyapp:app", ["-w", "1"], env) as upstream,
        nginx(project, upstream, TLS_TERMINATION) as port,
    ):
        seen = set()
        for _ in range(REQUESTS):
            answer = fetch(port, "/whoami", source=CLIENT_ADDRESS)
            assert answer.status == 200
            seen.add(answer.body.decode())
        answer = fetch(port, "/_readiness", headers=AUTH, source=CLIENT_ADDRESS)
    assert answer.status in (200, 503), answer.body[:300]
    body: dict[str, Any] = answer.json()
    return seen, body


def findings(body: dict[str, Any], check_id: str) -> list[dict[str, Any]]:
    return [f for f in body["findings"] if f["id"] == check_id]


def test_without_proxyfix_only_the_address_is_named(project: Path) -> None:
    """gunicorn's default forwarded_allow_ips, no ProxyFix: the app sees https but the
    proxy's address, and proxy.missing_proxyfix names the address only, saying gunicorn
    already applies X-Forwarded-Proto."""
    seen, body = traffic_and_report(project, ENV)
    assert seen == {f"{HOST} https"}
    [finding] = findings(body, "proxy.missing_proxyfix")
    assert finding["level"] == "error"
    assert finding["message"] == (
        f"Requests arrive through a proxy ({HOST}) with X-Forwarded-For ({REQUESTS} of "
        f"{REQUESTS} requests), but nothing in the WSGI chain trusts it: the app gets the "
        "client's address wrong (request.remote_addr is the proxy's), so rate limits and "
        "logs see the proxy instead of the client. The scheme is right: gunicorn's "
        "forwarded_allow_ips (127.0.0.1,::1) already applies X-Forwarded-Proto."
    )
    assert finding["observed"]["wrong"] == ["address"]
    assert findings(body, "proxy.scheme_mismatch") == []


def test_quiet_with_proxyfix(project: Path) -> None:
    """ProxyFix(x_for=1, x_proto=1): the app sees the client's address and https, and
    proxy.missing_proxyfix passes."""
    seen, body = traffic_and_report(project, {**ENV, "WITH_PROXYFIX": "1"})
    assert seen == {f"{CLIENT_ADDRESS} https"}
    assert findings(body, "proxy.missing_proxyfix") == []
    assert result_of(body, "proxy.missing_proxyfix") == "pass"  # judged, not skipped
