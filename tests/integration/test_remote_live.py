"""Remote mode against real servers on loopback: `prodready --url` fetching the report of
an app under gunicorn, directly and through nginx terminating TLS with certificates made
by openssl in the test's folder."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ..support import check_of, result_of
from .processes import environment, fetch, free_port, gunicorn, nginx_tls, self_signed_certificate

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
PRODREADY = str(Path(sys.executable).parent / "prodready")

APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SESSION_COOKIE_SECURE=True,
    SESSION_COOKIE_SAMESITE="Lax",
    MAX_CONTENT_LENGTH=1024 * 1024,
    PREFERRED_URL_SCHEME="https",
    TRUSTED_HOSTS=["127.0.0.1", "localhost"],
    PRODREADY_CACHE_SECONDS=0,
    PRODREADY_SILENCED={
        "server.root": "the test suite may run as root",
        "supervision.unsupervised": "the test suite starts gunicorn itself",
    },
)
ProdReady(app)

@app.route("/")
def index():
    return "<!doctype html><p>remote</p>"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("remote-live")
    folder.chmod(0o755)
    (folder / "remoteapp.py").write_text(textwrap.dedent(APP))
    return folder


@pytest.fixture(scope="module")
def upstream(project: Path) -> Iterator[int]:
    """The app under one gunicorn worker, shared by the tests of this module."""
    with gunicorn(project, "remoteapp:app", ["-w", "1"], ENV) as port:
        yield port


def prodready(
    project: Path, *args: str, token: str = TOKEN, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`prodready ARGS` with ``token`` in PRODREADY_TOKEN, as an operator runs it."""
    done = subprocess.run(
        [PRODREADY, *args],
        cwd=cwd or project,
        env=environment(project, {"PRODREADY_TOKEN": token}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert token not in done.stdout + done.stderr
    return done


def not_after(certificate: Path) -> datetime:
    done = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(certificate)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    text = done.stdout.strip().removeprefix("notAfter=")
    return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)


def outcome(body: dict[str, Any], check_id: str) -> tuple[str, list[tuple[str, str]]]:
    """(status, [(level, message)]) of one check in a JSON report."""
    findings = [(f["level"], f["message"]) for f in body["findings"] if f["id"] == check_id]
    return result_of(body, check_id), findings


def test_json_is_the_live_report(project: Path, upstream: int) -> None:
    """--format json prints the server's own /_readiness body, in mode remote, with the
    tls checks judged here (skipped on an http:// URL)."""
    url = f"http://127.0.0.1:{upstream}/_readiness"
    done = prodready(project, "--url", url, "--format", "json")
    direct = fetch(upstream, "/_readiness", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    body = json.loads(done.stdout)
    assert body["mode"] == "remote"
    assert body["worker"]["server"].startswith("gunicorn/")
    assert body["worker"]["pid"] == direct["worker"]["pid"]
    assert body["findings"] == direct["findings"]
    tls = {"tls.certificate_expiry", "tls.http_redirect"}

    def steady(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each check's entry but its time and duration, which differ from run to run."""
        return {
            k: {f: x for f, x in check_of(report, k).items() if f not in ("time", "duration_ms")}
            for k in report["checks"]
            if k not in tls
        }

    assert steady(body) == steady(direct)
    reason = "the URL is http://, not https://: no certificate and no https:// site to judge"
    for check_id in tls:
        assert check_of(direct, check_id)["reason"] == (
            "can only judge from a remote client, not here"
        )
        assert (result_of(body, check_id), check_of(body, check_id)["reason"]) == (
            "skipped",
            reason,
        )
    assert "server.workers" in {f["id"] for f in body["findings"]}
    assert done.returncode == 0, done.stdout


def test_text_and_fail_level(project: Path, upstream: int) -> None:
    """Text names the live findings; exit 0 at --fail-level error, 1 at warning (one
    gunicorn worker is a warning)."""
    url = f"http://127.0.0.1:{upstream}"
    text = prodready(project, "--url", url)
    assert text.returncode == 0
    assert text.stdout.startswith(" WARN   flask-prodready · mode remote · pid ")
    assert "  WARNING   server.workers\n" in text.stdout
    gate = prodready(project, "--url", url, "--tag", "server", "--fail-level", "warning")
    assert gate.returncode == 1
    assert gate.stdout.count("\nserver\n") == 1


def test_wrong_token(project: Path, upstream: int) -> None:
    """A wrong token: exit 2, one line saying 401, neither token printed."""
    wrong = secrets.token_urlsafe(32)
    done = prodready(project, "--url", f"http://127.0.0.1:{upstream}/_readiness", token=wrong)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"Error: http://127.0.0.1:{upstream}/_readiness answered 401: the token in "
        "PRODREADY_TOKEN was refused (set PRODREADY_TOKEN or --token-env NAME to the "
        "server's token)\n"
    )
    assert TOKEN not in done.stderr


def test_flask_readiness_url_without_an_app(project: Path, upstream: int, tmp_path: Path) -> None:
    """`flask readiness --url` from a folder without any app fetches the same report."""
    env = environment(tmp_path, {"PRODREADY_TOKEN": TOKEN})
    env.pop("PYTHONPATH")
    done = subprocess.run(
        [sys.executable, "-m", "flask", "readiness", "--url", f"http://127.0.0.1:{upstream}/"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(" WARN   flask-prodready · mode remote · pid ")
    assert TOKEN not in done.stdout + done.stderr


def test_certificate_expiring_in_5_days(project: Path, upstream: int, tmp_path: Path) -> None:
    """Through nginx with a 5-day certificate and --cafile: tls.certificate_expiry is an
    error (exit 1); with nothing on the plain-HTTP port, tls.http_redirect passes."""
    certificate, key = self_signed_certificate(tmp_path, 5)
    closed = free_port()
    with nginx_tls(tmp_path, upstream, certificate, key) as ports:
        url = f"https://127.0.0.1:{ports.https}/_readiness"
        done = prodready(
            project, "--url", url, "--cafile", str(certificate), "--http-port", str(closed)
        )
        body = json.loads(
            prodready(
                project,
                *("--url", url, "--cafile", str(certificate), "--http-port", str(closed)),
                *("--format", "json", "--tag", "tls"),
            ).stdout
        )
    expires = not_after(certificate)
    message = (
        f"The TLS certificate of 127.0.0.1:{ports.https} expires in 4 days, on "
        f"{expires:%Y-%m-%d %H:%M} UTC."
    )
    assert done.returncode == 1
    assert "  ERROR     tls.certificate_expiry\n" in done.stdout
    assert message in done.stdout.replace("\n            ", " ")
    assert outcome(body, "tls.certificate_expiry") == ("fail", [("error", message)])
    assert outcome(body, "tls.http_redirect") == ("pass", [])
    assert body["worker"]["server"].startswith("gunicorn/")


def test_certificate_valid_for_60_days(project: Path, upstream: int, tmp_path: Path) -> None:
    """A 60-day certificate passes, and plain HTTP redirecting to https:// passes."""
    certificate, key = self_signed_certificate(tmp_path, 60)
    with nginx_tls(tmp_path, upstream, certificate, key, plain_http="redirect") as ports:
        assert ports.http is not None
        redirect = fetch(ports.http, "/")
        assert (redirect.status, redirect.headers["Location"]) == (
            301,
            f"https://127.0.0.1:{ports.https}/",
        )
        done = prodready(
            project,
            *("--url", f"https://127.0.0.1:{ports.https}/", "--cafile", str(certificate)),
            *("--http-port", str(ports.http), "--tag", "tls", "--format", "json"),
        )
    body = json.loads(done.stdout)
    assert outcome(body, "tls.certificate_expiry") == ("pass", [])
    assert outcome(body, "tls.http_redirect") == ("pass", [])
    assert body["status"] == "pass"
    assert done.returncode == 0


def test_plain_http_serving_the_app(project: Path, upstream: int, tmp_path: Path) -> None:
    """nginx serving the app over plain HTTP as well: tls.http_redirect warns, which fails
    the gate at --fail-level warning only."""
    certificate, key = self_signed_certificate(tmp_path, 60)
    with nginx_tls(tmp_path, upstream, certificate, key, plain_http="proxy") as ports:
        args = ("--url", f"https://127.0.0.1:{ports.https}/", "--cafile", str(certificate))
        args += ("--http-port", str(ports.http), "--tag", "tls")
        done = prodready(project, *args, "--format", "json")
        gate = prodready(project, *args, "--fail-level", "warning")
    body = json.loads(done.stdout)
    assert outcome(body, "tls.http_redirect") == (
        "fail",
        [
            (
                "warning",
                f"http://127.0.0.1:{ports.http}/ answered 200 OK instead of redirecting to "
                "https://.",
            )
        ],
    )
    assert (done.returncode, gate.returncode) == (0, 1)
    assert "  WARNING   tls.http_redirect\n" in gate.stdout


def test_untrusted_certificate_without_cafile(project: Path, upstream: int, tmp_path: Path) -> None:
    """Without --cafile the self-signed certificate fails verification: exit 2, one line."""
    certificate, key = self_signed_certificate(tmp_path, 60)
    with nginx_tls(tmp_path, upstream, certificate, key) as ports:
        done = prodready(project, "--url", f"https://127.0.0.1:{ports.https}/_readiness")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"Error: TLS verification of 127.0.0.1:{ports.https} failed: self-signed certificate; "
        "pass --cafile FILE to trust a private CA\n"
    )
