"""A run in which no check could judge is ``unknown``: never a pass, in every surface.

The report's rule is pinned on hand-built reports; the CLI's exit 2 on a real
``flask readiness --audit --tag dependencies`` whose pip-audit cannot reach its
vulnerability service (a refused loopback port), and the HTTP answer on a real app.
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine.findings import CheckOutcome, Finding, Level, Report, Status, WorkerInfo
from flask_prodready.render import render

from .support import result_of
from .test_cli import run_flask

WORKER = WorkerInfo(pid=1, hostname="web-1", server=None)
TIMED_OUT = Finding("myapp.slow", Level.ERROR, "myapp.slow timed out.", tags=("prodready",))


def report_of(*outcomes: CheckOutcome) -> Report:
    return Report(
        outcomes={o.check_id: o for o in outcomes},
        worker=WORKER,
        generated_at="2026-12-06T00:00:00Z",
        mode="cli",
    )


def skipped(check_id: str, reason: str) -> CheckOutcome:
    return CheckOutcome(check_id, Status.SKIPPED, reason=reason)


class TestReportStatus:
    def test_every_check_skipped_is_unknown(self) -> None:
        """Two checks, both skipped: unknown, and the reason names each check's reason."""
        report = report_of(skipped("a.one", "no database"), skipped("b.two", "no audit"))
        assert report.status is Status.UNKNOWN
        assert report.unjudged_reason() == (
            "nothing could be judged: a.one: no database; b.two: no audit"
        )

    def test_checks_held_back_by_one_reason_are_named_together(self) -> None:
        """The same reason is said once, with every check it held back."""
        report = report_of(skipped("a.one", "live only"), skipped("b.two", "live only"))
        assert report.unjudged_reason() == "nothing could be judged: a.one, b.two: live only"

    def test_a_crash_alone_is_not_a_judgment(self) -> None:
        """The only check timed out: its error-level finding does not make a verdict."""
        report = report_of(CheckOutcome("myapp.slow", Status.ERROR, (TIMED_OUT,), "timed out"))
        assert report.status is Status.UNKNOWN
        assert report.unjudged_reason() == "nothing could be judged: myapp.slow: timed out"

    def test_one_check_that_passed_is_a_judgment(self) -> None:
        """One pass among skips: the run judged, and it passed."""
        report = report_of(skipped("a.one", "no database"), CheckOutcome("b.two", Status.PASS))
        assert report.status is Status.PASS

    def test_findings_keep_their_status(self) -> None:
        """A check with a warning: warn, as before."""
        warning = Finding("b.two", Level.WARNING, "Something.")
        report = report_of(skipped("a.one", "x"), CheckOutcome("b.two", Status.FAIL, (warning,)))
        assert report.status is Status.WARN

    def test_no_check_selected_is_unknown(self) -> None:
        """An empty run judged nothing."""
        report = report_of()
        assert report.status is Status.UNKNOWN
        assert report.unjudged_reason() == "nothing could be judged: no check was selected"

    def test_a_check_the_run_asked_for_must_judge(self) -> None:
        """The audit was asked for and could not run: unknown, though another check passed
        and another found something; the reason names only the asked-for check."""
        warning = Finding("b.two", Level.WARNING, "Something.")
        report = report_of(
            CheckOutcome("a.one", Status.PASS),
            CheckOutcome("b.two", Status.FAIL, (warning,)),
            CheckOutcome("c.audit", Status.SKIPPED, reason="service unreachable", asked=True),
            skipped("d.four", "live only"),
        )
        assert report.status is Status.UNKNOWN
        assert report.unjudged_reason() == (
            "what was asked for could not be judged: c.audit: service unreachable"
        )

    def test_an_asked_check_that_judged_changes_nothing(self) -> None:
        """asked only matters when the check could not judge."""
        report = report_of(CheckOutcome("c.audit", Status.PASS, asked=True))
        assert report.status is Status.PASS

    @pytest.mark.parametrize("fmt", ["json", "text", "junit", "sarif", "openmetrics", "html"])
    def test_every_format_says_unknown(self, fmt: str) -> None:
        """No format shows an unjudged run as a pass."""
        body = render(report_of(skipped("a.one", "no audit")), fmt)
        assert "unknown" in body.lower()
        if fmt == "json":
            assert json.loads(body)["status"] == "unknown"
        if fmt == "text":
            assert "PASS" not in body
            assert click.unstyle(body).startswith(" UNKNOWN ")
        if fmt == "openmetrics":
            assert 'prodready_status{status="unknown",pid="1",hostname="web-1"} 1' in body
            assert 'prodready_status{status="pass",pid="1",hostname="web-1"} 0' in body


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


AUDIT_APP = """
from flask import Flask
from flask_prodready import ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 40,
        PRODREADY_CHECK_TIMEOUT=60.0,
        PRODREADY_PIP_AUDIT_ARGS=[
            "-r", "requirements.txt", "--no-deps", "--disable-pip",
            "-s", "osv", "--osv-url", "http://127.0.0.1:{port}/v1/query",
        ],
    )
    ProdReady(app)
    return app
"""


class TestCommandLine:
    @pytest.fixture
    def project(self, tmp_path: Path, closed_port: int) -> Path:
        folder = tmp_path / "proj"
        folder.mkdir()
        (folder / "requirements.txt").write_text("flask==0.12\n")
        (folder / "auditapp.py").write_text(textwrap.dedent(AUDIT_APP).format(port=closed_port))
        return folder

    def test_audit_that_cannot_reach_its_service_exits_2(self, project: Path) -> None:
        """--audit --tag dependencies, service unreachable: exit 2, status unknown, the
        reason on one line of stderr, and no PASS anywhere, though the area's other check
        (dependencies.environment) judged."""
        done = run_flask(project, "auditapp", "--audit", "--tag", "dependencies")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "PASS" not in done.stdout
        assert done.stdout.startswith(" UNKNOWN ")
        assert done.stderr.startswith(
            "Error: what was asked for could not be judged: dependencies.vulnerable: "
            "pip-audit could not audit (exit 1): "
        )
        assert done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr

    def test_json_says_unknown(self, project: Path) -> None:
        """The JSON body on stdout stays parseable and says unknown."""
        done = run_flask(
            project, "auditapp", "--audit", "--tag", "dependencies", "--format", "json"
        )
        assert done.returncode == 2, done.stderr
        body = json.loads(done.stdout)
        assert body["status"] == "unknown"
        assert result_of(body, "dependencies.vulnerable") == "skipped"

    def test_without_audit_the_skip_is_no_verdict(self, project: Path) -> None:
        """Without --audit the audit was not asked for: its skip does not make the run
        unknown while dependencies.environment judges."""
        done = run_flask(project, "auditapp", "--tag", "dependencies", "--format", "json")
        body = json.loads(done.stdout)
        assert body["status"] != "unknown"
        assert done.returncode in (0, 1), done.stderr


TOKEN = "t" * 32


def app_with_a_check_that_cannot_judge(**config: object) -> Flask:
    """An app with one check of its own, which cannot judge in a running server."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 40, PRODREADY_TOKEN=TOKEN, **config)
    prodready = ProdReady()

    @prodready.check("myapp.queue", title="The job queue is drained", modes=["cli"])
    def queue(ctx: object) -> None:
        return None

    prodready.init_app(app)
    return app


class TestHttp:
    def test_report_of_unjudged_checks_is_503_unknown(self) -> None:
        """?tag=myapp live: its only check cannot judge in a server, so the report is
        unknown and answered 503 (a readiness probe must not read it as ready)."""
        app = app_with_a_check_that_cannot_judge()
        response = app.test_client().get(
            "/_readiness?tag=myapp", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 503
        assert response.get_json()["status"] == "unknown"

    def test_healthz_of_unjudged_checks_is_a_warning(self) -> None:
        """/healthz naming only checks that cannot judge in a server: 200 warn, not pass."""
        app = app_with_a_check_that_cannot_judge(PRODREADY_HEALTHZ_CHECKS=["myapp"])
        response = app.test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "warn"}
