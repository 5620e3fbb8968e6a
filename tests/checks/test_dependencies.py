"""dependencies.vulnerable: real pip-audit runs against a small OSV server on 127.0.0.1.

pip-audit audits a pinned requirements file (``-r FILE --no-deps --disable-pip``, given
through PRODREADY_PIP_AUDIT_ARGS) so a run takes about a second and needs no index.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.checks.dependencies import AUDIT_TIMEOUT, NOT_ASKED, parse_report
from flask_prodready.engine.findings import CheckOutcome
from flask_prodready.engine.state import get_state

from ..support import GOOD_CONFIG, outcome_of, result_of

MakeApp = Callable[..., Flask]

CHECK = "dependencies.vulnerable"
#: The advisory the stub reports for flask 0.12 (a real one, trimmed).
ADVISORY = {
    "id": "GHSA-5wv5-4vpf-pj6m",
    "aliases": ["CVE-2018-1000656"],
    "summary": "Flask is vulnerable to denial of service via incorrect encoding of JSON data",
    "affected": [
        {
            "package": {"name": "flask", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.12.3"}]}],
        }
    ],
}
#: An advisory without a fixed version yet.
UNFIXED = {
    "id": "PYSEC-0000-0001",
    "summary": "No fix published",
    "affected": [
        {
            "package": {"name": "itsdangerous", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
}
VULNERABLE = {("flask", "0.12"): [ADVISORY], ("itsdangerous", "0.24"): [UNFIXED]}
#: Seconds the stub holds a slow answer at most (released at teardown).
SLOW_ANSWER_LIMIT = 20.0


class OsvStub:
    """An OSV ``/v1/query`` endpoint on 127.0.0.1: ``{"vulns": [...]}`` for the packages
    in VULNERABLE, ``{}`` for every other one; with ``slow=True`` it holds each answer
    until stopped. Use as a context manager: the server and its threads are stopped."""

    def __init__(self, *, slow: bool = False) -> None:
        self.queries: list[dict[str, Any]] = []
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                stub.queries.append(body)
                if slow:
                    stub.release.wait(SLOW_ANSWER_LIMIT)
                key = (body["package"]["name"].lower(), body.get("version"))
                answer = {"vulns": VULNERABLE[key]} if key in VULNERABLE else {}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # pip-audit was stopped before the answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() joins the request threads

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/query"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OsvStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def osv() -> Iterator[OsvStub]:
    with OsvStub() as stub:
        yield stub


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def requirements(folder: Path, *lines: str) -> Path:
    path = folder / "requirements.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def audit_args(url: str, requirements_file: Path | None = None) -> list[str]:
    """pip-audit options for the stub: a pinned requirements file, no pip, no index."""
    source = [] if requirements_file is None else ["-r", str(requirements_file)]
    return [*source, "--no-deps", "--disable-pip", "-s", "osv", "--osv-url", url]


def audit(app: Flask, *, audit: bool = True, mode: str = "cli") -> CheckOutcome:
    return outcome_of(app, CHECK, mode, audit=audit)


@pytest.fixture
def audit_app(make_app: MakeApp) -> Callable[..., Flask]:
    """An app whose pip-audit arguments are given, with time enough for an audit."""

    def factory(args: list[str], timeout: float = 60.0) -> Flask:
        return make_app(PRODREADY_PIP_AUDIT_ARGS=args, PRODREADY_CHECK_TIMEOUT=timeout)

    return factory


class TestVulnerable:
    def test_fires_on_a_vulnerable_package(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """A known advisory is an error naming package, version, advisory ids and the fix."""
        reqs = requirements(tmp_path, "flask==0.12", "itsdangerous==2.2.0")
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert outcome.status.value == "fail", outcome.reason
        [finding] = outcome.findings
        assert finding.level.value == "error"
        # pip-audit shows the CVE alias as the id and the GHSA id as an alias.
        assert finding.message == (
            "flask 0.12 has the known vulnerability CVE-2018-1000656 (GHSA-5wv5-4vpf-pj6m): "
            "fixed in 0.12.3."
        )
        assert finding.hint == (
            "Upgrade flask to a fixed version (0.12.3) and pin it; to accept this advisory, "
            "add --ignore-vuln CVE-2018-1000656 to PRODREADY_PIP_AUDIT_ARGS."
        )
        assert finding.observed == {
            "package": "flask",
            "version": "0.12",
            "id": "CVE-2018-1000656",
            "aliases": ["GHSA-5wv5-4vpf-pj6m"],
            "fix_versions": ["0.12.3"],
        }
        asked = sorted((q["package"]["name"], q["version"]) for q in osv.queries)
        assert asked == [("flask", "0.12"), ("itsdangerous", "2.2.0")]

    def test_fires_on_an_advisory_without_a_fix(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """An advisory with no fixed version says so, and how to accept it."""
        reqs = requirements(tmp_path, "itsdangerous==0.24")
        [finding] = audit(audit_app(audit_args(osv.url, reqs))).findings
        assert (finding.message, finding.hint) == (
            "itsdangerous 0.24 has the known vulnerability PYSEC-0000-0001: no fixed version "
            "is published yet.",
            "Read PYSEC-0000-0001, mitigate, and remove itsdangerous or accept the advisory "
            "with --ignore-vuln PYSEC-0000-0001 in PRODREADY_PIP_AUDIT_ARGS.",
        )

    def test_quiet_when_every_package_is_clean(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """Every package audited and none vulnerable: passed."""
        reqs = requirements(tmp_path, "flask==3.1.0", "itsdangerous==2.2.0")
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert (outcome.status.value, outcome.findings) == ("pass", ())

    def test_quiet_on_this_environment_with_skip_editable(
        self, audit_app: Callable[..., Flask], osv: OsvStub
    ) -> None:
        """Without -r, the running environment is audited; a package skipped because the
        user chose --skip-editable is a choice, not a gap."""
        args = ["--skip-editable", "-s", "osv", "--osv-url", osv.url]
        outcome = audit(audit_app(args))
        assert (outcome.status.value, outcome.reason) == ("pass", None)
        assert {"flask", "pip-audit"} <= {q["package"]["name"] for q in osv.queries}


class TestCouldNotAudit:
    """Whatever keeps pip-audit from auditing makes the check skipped, never passed."""

    def test_service_unreachable(
        self, audit_app: Callable[..., Flask], closed_port: int, tmp_path: Path
    ) -> None:
        """A vulnerability service that refuses connections: skipped with pip-audit's error."""
        reqs = requirements(tmp_path, "flask==0.12")
        url = f"http://127.0.0.1:{closed_port}/v1/query"
        outcome = audit(audit_app(audit_args(url, reqs)))
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith("pip-audit could not audit (exit 1): ")
        assert "ConnectionError" in outcome.reason
        assert "Connection refused" in outcome.reason

    def test_package_the_service_cannot_audit(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """A package pip-audit skips (here a URL requirement) leaves the check skipped."""
        reqs = requirements(tmp_path, "itsdangerous==2.2.0", f"mylib @ {tmp_path.as_uri()}")
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pip-audit could not audit 1 of 2 packages (mylib): URL requirements cannot be "
            "pinned to a specific package version",
        )

    def test_vulnerabilities_are_reported_even_when_the_audit_is_incomplete(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """Known vulnerabilities are never hidden by a gap; the gap is a warning beside them."""
        reqs = requirements(tmp_path, "flask==0.12", f"mylib @ {tmp_path.as_uri()}")
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                "flask 0.12 has the known vulnerability CVE-2018-1000656 "
                "(GHSA-5wv5-4vpf-pj6m): fixed in 0.12.3.",
            ),
            (
                "warning",
                "pip-audit could not audit 1 of 2 packages (mylib): the audit is incomplete.",
            ),
        ]

    def test_the_apps_own_distribution_is_not_a_gap(self, osv: OsvStub, tmp_path: Path) -> None:
        """The app's own distribution is on no index: its skip does not make a gap."""
        app = Flask("flask", root_path=str(tmp_path), instance_path=str(tmp_path / "instance"))
        reqs = requirements(tmp_path, "itsdangerous==2.2.0", f"flask @ {tmp_path.as_uri()}")
        app.config.update(
            GOOD_CONFIG,
            PRODREADY_PIP_AUDIT_ARGS=audit_args(osv.url, reqs),
            PRODREADY_CHECK_TIMEOUT=60.0,
        )
        ProdReady(app)
        outcome = audit(app)
        assert (outcome.status.value, outcome.reason) == ("pass", None)

    def test_output_that_is_not_a_report(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """pip-audit failing before it prints JSON: skipped with its error line."""
        reqs = requirements(tmp_path, "unpinned>=1.0")
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith(
            "pip-audit could not audit (exit 1): requirement unpinned is not pinned to an "
            "exact version: unpinned>=1.0"
        )

    def test_nothing_to_audit(
        self, audit_app: Callable[..., Flask], osv: OsvStub, tmp_path: Path
    ) -> None:
        """An empty requirements file audits nothing: skipped, not passed."""
        reqs = requirements(tmp_path)
        outcome = audit(audit_app(audit_args(osv.url, reqs)))
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pip-audit found no package to audit",
        )

    def test_stopped_at_the_deadline(self, audit_app: Callable[..., Flask], tmp_path: Path) -> None:
        """A service slower than the audit's time budget: pip-audit is killed, the check
        skipped with the reason, and no process is left."""
        reqs = requirements(tmp_path, "flask==0.12")
        with OsvStub(slow=True) as slow:
            app = audit_app(audit_args(slow.url, reqs))
            state = get_state(app)
            registered = state.registry.get(CHECK)
            assert registered is not None
            assert registered.timeout == AUDIT_TIMEOUT
            quick = replace(registered, timeout=2.0)  # the same check with a 2 s budget
            report = state.build_report(app, mode="cli", checks=[quick], audit=True)
            outcome = report.outcomes[CHECK]
            assert outcome.status.value == "skipped"
            assert outcome.reason is not None
            assert re.fullmatch(
                r"pip-audit did not finish within 1\.\d s and was stopped: the audit may take "
                r"180 s; a slow or unreachable vulnerability service can be replaced with -s "
                r"osv --osv-url URL in PRODREADY_PIP_AUDIT_ARGS",
                outcome.reason,
            ), outcome.reason
            left = [p.cmdline() for p in psutil.Process().children(recursive=True)]
            assert not [c for c in left if "pip_audit" in " ".join(c)], left

    def test_pip_audit_not_installed(
        self, audit_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Without pip-audit (importable or next to the interpreter): skipped, naming the extra."""
        monkeypatch.setitem(sys.modules, "pip_audit", None)
        monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
        outcome = audit(audit_app(["-r", "requirements.txt"]))
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pip-audit is not installed (pip install 'flask-prodready[audit]')",
        )


class TestWhenItRuns:
    def test_skipped_without_audit(self, make_app: MakeApp) -> None:
        """Without --audit the check does not run pip-audit and says how to ask for it."""
        outcome = audit(make_app(), audit=False)
        assert (outcome.status.value, outcome.reason) == ("skipped", NOT_ASKED)
        assert NOT_ASKED == "run `flask readiness --audit` to audit dependencies"

    def test_never_on_the_http_path(self, make_app: MakeApp) -> None:
        """In the running server it is never run, even with audit asked."""
        outcome = audit(make_app(), mode="live")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "can only judge from the command line, not here",
        )

    def test_readiness_endpoint_lists_it_as_skipped(
        self, make_app: MakeApp, auth: dict[str, str]
    ) -> None:
        """GET /_readiness reports it skipped: no audit runs behind a web request."""
        app = make_app()
        body = app.test_client().get("/_readiness?tag=dependencies", headers=auth).get_json()
        assert result_of(body, CHECK) == "skipped"
        assert get_state(app).registry.get(CHECK) is not None

    @pytest.mark.parametrize(
        ("args", "option"),
        [(["--fix"], "--fix"), (["-o", "out.json"], "-o"), (["--output=x"], "--output")],
    )
    def test_refuses_options_that_change_the_environment_or_the_output(
        self, make_app: MakeApp, args: list[str], option: str
    ) -> None:
        """--fix (would upgrade packages) and an output file are refused, not run."""
        outcome = audit(make_app(PRODREADY_PIP_AUDIT_ARGS=args))
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith(f"PRODREADY_PIP_AUDIT_ARGS holds {option}, which is ")


class TestParseReport:
    def test_reads_vulnerabilities_and_gaps(self) -> None:
        """pip-audit's JSON: vulnerabilities per package, skipped packages as gaps."""
        text = json.dumps(
            {
                "dependencies": [
                    {"name": "a", "version": "1", "vulns": [{"id": "X-1", "fix_versions": []}]},
                    {"name": "b", "skip_reason": "Dependency not found on PyPI"},
                    {"name": "c", "skip_reason": "distribution marked as editable"},
                    {"name": "my-app", "skip_reason": "Dependency not found on PyPI"},
                ],
                "fixes": [],
            }
        )
        result = parse_report(text, own=frozenset({"my-app"}))
        assert [(v.package, v.id, v.fix_versions) for v in result.vulnerabilities] == [
            ("a", "X-1", ())
        ]
        assert result.audited == 1
        assert result.unaudited == (("b", "Dependency not found on PyPI"),)

    @pytest.mark.parametrize("text", ["", "No known vulnerabilities found", "[]", '{"x": 1}'])
    def test_refuses_what_is_not_a_report(self, text: str) -> None:
        """Anything but a pip-audit JSON report is a ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 - json's error is a ValueError too
            parse_report(text)
