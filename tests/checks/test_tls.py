"""tls.*: real TLS and plain-HTTP servers on loopback, certificates made by openssl."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_prodready.engine.context import RemoteTarget
from tests.integration.processes import free_port, self_signed_certificate

from ..stub_server import Canned, StubServer, tls_context
from ..support import outcome_of

MakeApp = Callable[..., Flask]
EXPIRY = "tls.certificate_expiry"
REDIRECT = "tls.http_redirect"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """Self-signed certificates for 127.0.0.1 valid for 5, 20 and 60 days."""
    folder = tmp_path_factory.mktemp("certificates")
    return {days: self_signed_certificate(folder, days) for days in (5, 20, 60)}


def not_after(certificate: Path) -> datetime:
    """The certificate's expiry, as openssl reads it."""
    done = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(certificate)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    text = done.stdout.strip().removeprefix("notAfter=")
    return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)


def remote(app: Flask, check_id: str, **target: Any) -> Any:
    """The outcome of one tls check run in remote mode against this target."""
    return outcome_of(app, check_id, mode="remote", remote=RemoteTarget(**target))


class TestCertificateExpiry:
    def test_error_within_14_days(
        self, make_app: MakeApp, certificates: dict[int, tuple[Path, Path]]
    ) -> None:
        """A certificate with 5 days left: an error naming the host, the days and the date."""
        certificate, key = certificates[5]
        with StubServer(Canned(200), context=tls_context(str(certificate), str(key))) as server:
            outcome = remote(
                make_app(),
                EXPIRY,
                url=f"https://127.0.0.1:{server.port}/_readiness",
                cafile=str(certificate),
            )
        expires = not_after(certificate)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The TLS certificate of 127.0.0.1:{server.port} expires in 4 days, on "
                f"{expires:%Y-%m-%d %H:%M} UTC.",
            )
        ]
        assert outcome.findings[0].observed == {
            "host": "127.0.0.1",
            "port": server.port,
            "not_after": f"{expires:%Y-%m-%dT%H:%M:%SZ}",
            "days_left": 4,
        }

    def test_warning_within_30_days(
        self, make_app: MakeApp, certificates: dict[int, tuple[Path, Path]]
    ) -> None:
        """A certificate with 20 days left: a warning."""
        certificate, key = certificates[20]
        with StubServer(Canned(200), context=tls_context(str(certificate), str(key))) as server:
            outcome = remote(
                make_app(),
                EXPIRY,
                url=f"https://localhost:{server.port}/",
                cafile=str(certificate),
            )
        expires = not_after(certificate)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "warning",
                f"The TLS certificate of localhost:{server.port} expires in 19 days, on "
                f"{expires:%Y-%m-%d %H:%M} UTC.",
            )
        ]

    def test_quiet_with_60_days_left(
        self, make_app: MakeApp, certificates: dict[int, tuple[Path, Path]]
    ) -> None:
        """A certificate with 60 days left passes."""
        certificate, key = certificates[60]
        with StubServer(Canned(200), context=tls_context(str(certificate), str(key))) as server:
            outcome = remote(
                make_app(),
                EXPIRY,
                url=f"https://127.0.0.1:{server.port}/_readiness",
                cafile=str(certificate),
            )
        assert (outcome.status.value, outcome.findings) == ("pass", ())

    def test_skipped_when_the_certificate_is_not_trusted(
        self, make_app: MakeApp, certificates: dict[int, tuple[Path, Path]]
    ) -> None:
        """Without the cafile the handshake is refused: skipped with the reason, never passed."""
        certificate, key = certificates[60]
        with StubServer(Canned(200), context=tls_context(str(certificate), str(key))) as server:
            outcome = remote(make_app(), EXPIRY, url=f"https://127.0.0.1:{server.port}/")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"could not open a TLS connection to 127.0.0.1:{server.port}: certificate verify "
            "failed: self-signed certificate",
        )

    def test_skipped_for_an_http_url(self, make_app: MakeApp) -> None:
        """An http:// URL has no certificate: skipped with that reason."""
        outcome = remote(make_app(), EXPIRY, url="http://127.0.0.1:8000/_readiness")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the URL is http://, not https://: no certificate and no https:// site to judge",
        )

    def test_skipped_when_nothing_listens(self, make_app: MakeApp) -> None:
        """A closed port: skipped, naming the refused connection."""
        port = free_port()
        outcome = remote(make_app(), EXPIRY, url=f"https://127.0.0.1:{port}/")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"could not open a TLS connection to 127.0.0.1:{port}: connection refused",
        )

    def test_skipped_outside_remote_mode(self, make_app: MakeApp) -> None:
        """From the command line the check cannot judge: skipped, saying where it can."""
        outcome = outcome_of(make_app(), EXPIRY)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "can only judge from a remote client, not here",
        )


def https_url(port: int = 8443) -> str:
    return f"https://127.0.0.1:{port}/_readiness"


class TestHttpRedirect:
    def test_quiet_when_http_redirects_to_https(self, make_app: MakeApp) -> None:
        """A 301 to https:// passes; the request is GET / with the host's name."""
        answer = Canned(301, headers={"Location": "https://127.0.0.1:8443/"})
        with StubServer(answer) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert (outcome.status.value, outcome.findings) == ("pass", ())
        assert [seen.path for seen in plain.requests] == ["/"]
        assert plain.requests[0].headers["Host"] == f"127.0.0.1:{plain.port}"

    @pytest.mark.parametrize("status", [302, 307, 308])
    def test_other_redirect_codes_count(self, make_app: MakeApp, status: int) -> None:
        """302, 307 and 308 to https:// pass too."""
        with StubServer(Canned(status, headers={"Location": "https://example.test/"})) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert outcome.status.value == "pass"

    def test_fires_when_http_serves_the_site(self, make_app: MakeApp) -> None:
        """Plain HTTP answering 200: a warning naming the URL and the answer."""
        with StubServer(Canned(200, b"<p>hello</p>")) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "warning",
                f"http://127.0.0.1:{plain.port}/ answered 200 OK instead of redirecting to "
                "https://.",
            )
        ]
        assert outcome.findings[0].observed == {
            "url": f"http://127.0.0.1:{plain.port}/",
            "status": 200,
            "redirects": 0,
        }

    def test_follows_plain_redirects_to_https(self, make_app: MakeApp) -> None:
        """http://host/ -> http://host/www/ -> https://: the chain reaches https and passes."""

        def answer(path: str) -> Canned:
            if path == "/":
                return Canned(301, headers={"Location": "/www/"})
            return Canned(308, headers={"Location": "https://127.0.0.1:8443/www/"})

        with StubServer(answer) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert outcome.status.value == "pass"
        assert [seen.path for seen in plain.requests] == ["/", "/www/"]

    def test_fires_when_the_chain_stays_on_http(self, make_app: MakeApp) -> None:
        """A redirect to another http:// page that answers 200: reported, with the chain."""

        def answer(path: str) -> Canned:
            if path == "/":
                return Canned(302, headers={"Location": "/home"})
            return Canned(200)

        with StubServer(answer) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        start = f"http://127.0.0.1:{plain.port}/"
        assert [f.message for f in outcome.findings] == [
            f"{start}home answered 200 OK instead of redirecting to https:// (reached from "
            f"{start} after 1 redirect)."
        ]

    def test_fires_on_a_redirect_loop(self, make_app: MakeApp) -> None:
        """Plain HTTP redirecting to itself: reported after 5 redirects, not followed forever."""
        with StubServer(Canned(301, headers={"Location": "/"})) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert [f.message for f in outcome.findings] == [
            f"http://127.0.0.1:{plain.port}/ redirects more than 5 times over plain HTTP "
            "without reaching https://."
        ]
        assert len(plain.requests) == 6

    def test_skipped_on_a_redirect_to_an_invalid_url(self, make_app: MakeApp) -> None:
        """A Location whose port is not a number: skipped with the reason, not a crash."""
        answer = Canned(301, headers={"Location": "http://127.0.0.1:eighty/"})
        with StubServer(answer) as plain:
            outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=plain.port)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"http://127.0.0.1:{plain.port}/ redirects to http://127.0.0.1:eighty/, which is "
            "not a valid URL",
        )

    def test_quiet_when_plain_http_is_not_served(self, make_app: MakeApp) -> None:
        """Nothing listens on the plain-HTTP port: nothing is sent unencrypted, so it passes."""
        outcome = remote(make_app(), REDIRECT, url=https_url(), http_port=free_port())
        assert (outcome.status.value, outcome.findings) == ("pass", ())

    def test_skipped_for_an_http_url(self, make_app: MakeApp) -> None:
        """An http:// report URL: no https:// site to redirect to; skipped with the reason."""
        outcome = remote(make_app(), REDIRECT, url="http://127.0.0.1:8000/", http_port=8000)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the URL is http://, not https://: no certificate and no https:// site to judge",
        )
