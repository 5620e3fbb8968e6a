"""`flask readiness --format junit`: one test case per check run, a failure per finding."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from flask_prodready.engine.findings import CheckOutcome, Level, Status
from flask_prodready.render.junit import render_junit

from ..support import results_of
from ..test_cli import run_flask
from .samples import CRASHED, mixed_report, sample_report

KEY = "dev-key-kept-in-ci-" + "q7" * 8

BAD_APP = f"""
from flask import Flask
from flask_prodready import ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(
        DEBUG=True,
        SECRET_KEY="{KEY}",
        SESSION_COOKIE_HTTPONLY=False,
        PRODREADY_SILENCED={{"config.trusted_hosts": "nginx only forwards our Host"}},
    )
    ProdReady(app)
    return app
"""


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


class TestRenderer:
    def test_one_suite_with_the_counts(self) -> None:
        """testsuites holds one testsuite named flask-prodready; both carry the counts."""
        root = ET.fromstring(render_junit(mixed_report(), Level.ERROR))
        counts = {"tests": "6", "failures": "1", "errors": "1", "skipped": "1", "time": "0.003"}
        assert root.tag == "testsuites"
        assert root.attrib == {"name": "flask-prodready", **counts}
        [suite] = list(root)
        assert suite.attrib == {
            "name": "flask-prodready",
            **counts,
            "timestamp": "2026-11-27T10:00:00",
            "hostname": "web-1",
        }
        properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert properties == {
            "status": "fail",
            "mode": "live",
            "fail_level": "error",
            "pid": "1234",
            "server": "gunicorn/23.0.0",
        }

    def test_testcase_per_check_named_by_area_and_id(self) -> None:
        """Each check run is a testcase: classname is its area, name its id, time its duration."""
        root = ET.fromstring(render_junit(mixed_report(), Level.ERROR))
        rows = [(c.get("classname"), c.get("name"), c.get("time")) for c in root.iter("testcase")]
        assert rows == [
            ("config", "config.debug", "0.002"),
            ("config", "config.max_content_length", "0.000"),
            ("config", "config.testing", "0.001"),
            ("cookies", "cookies.session_secure", "0.000"),
            ("demo", "demo.crashes", "0.000"),
            ("server", "server.workers", "0.000"),
        ]

    def test_failure_per_finding_at_or_above_the_fail_level(self) -> None:
        """An unsilenced finding at or above the fail level is a failure: message, level, hint."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.ERROR)))["config.debug"]
        [failure] = list(case)
        assert failure.tag == "failure"
        assert failure.attrib == {
            "message": "The app runs in debug mode (DEBUG is true).",
            "type": "critical",
        }
        assert failure.text == "Set DEBUG = False."

    def test_passed_check_is_an_empty_testcase(self) -> None:
        """A check that passed is a testcase with nothing inside."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.ERROR)))["config.testing"]
        assert list(case) == []

    def test_below_the_fail_level_goes_to_system_out(self) -> None:
        """A warning under --fail-level error does not fail its testcase; it is in system-out."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.ERROR)))[
            "config.max_content_length"
        ]
        assert [child.tag for child in case] == ["system-out"]
        assert case[0].text == (
            "[warning] config.max_content_length (below --fail-level error): "
            "MAX_CONTENT_LENGTH is not set: request bodies are unbounded.\n"
            "    fix: Set MAX_CONTENT_LENGTH."
        )

    def test_silenced_goes_to_system_out(self) -> None:
        """A silenced error fails nothing: it is in system-out with the reason."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.INFO)))[
            "cookies.session_secure"
        ]
        assert [child.tag for child in case] == ["system-out"]
        assert case[0].text is not None
        assert case[0].text.startswith(
            "[error] cookies.session_secure (silenced: TLS ends at the load balancer): "
        )

    def test_fail_level_warning_fails_warnings_too(self) -> None:
        """With --fail-level warning the warning is a failure and the counts follow."""
        root = ET.fromstring(render_junit(mixed_report(), Level.WARNING))
        assert root.get("failures") == "2"
        case = cases(root)["config.max_content_length"]
        assert [(c.tag, c.get("type")) for c in case] == [("failure", "warning")]

    def test_skipped_check_says_why(self) -> None:
        """A skipped check is a testcase with skipped and its reason as message."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.ERROR)))["server.workers"]
        assert [(c.tag, c.attrib) for c in case] == [("skipped", {"message": "not under gunicorn"})]

    def test_errored_check_is_an_error(self) -> None:
        """A crashed check is an error: the reason as message, the finding id as type."""
        case = cases(ET.fromstring(render_junit(mixed_report(), Level.ERROR)))["demo.crashes"]
        [error] = list(case)
        assert (error.tag, error.attrib) == (
            "error",
            {"message": "raised ZeroDivisionError", "type": "prodready.check_crashed"},
        )
        assert error.text == "check demo.crashes raised ZeroDivisionError: division by zero"

    def test_silenced_crash_is_skipped(self) -> None:
        """A crash whose finding is silenced fails nothing: the check counts as skipped."""
        quiet = replace(CRASHED, silenced=True, silence_reason="known flaky")
        report = sample_report(
            CheckOutcome("demo.crashes", Status.ERROR, (quiet,), reason="timed out")
        )
        root = ET.fromstring(render_junit(report, Level.ERROR))
        assert (root.get("errors"), root.get("skipped")) == ("0", "1")
        assert [c.tag for c in cases(root)["demo.crashes"]] == ["skipped", "system-out"]

    def test_text_that_xml_cannot_carry_is_replaced(self) -> None:
        """Control characters in a message are replaced, so the file still parses."""
        finding = replace(CRASHED, id="config.debug", level=Level.CRITICAL, message="a\x00b\x1bc")
        report = sample_report(CheckOutcome("config.debug", Status.FAIL, (finding,)))
        root = ET.fromstring(render_junit(report, Level.ERROR))
        assert cases(root)["config.debug"][0].get("message") == "a\ufffdb\ufffdc"


def test_cli_junit_on_a_bad_app(tmp_path: Path) -> None:
    """`flask readiness --format junit` exits 1 and writes one testcase per check the JSON
    report lists, failures for the blocking findings, and never the key."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (project / "badapp.py").write_text(textwrap.dedent(BAD_APP))

    done = run_flask(project, "badapp", "--format", "junit")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    root = ET.fromstring(done.stdout)
    checks = results_of(json.loads(run_flask(project, "badapp", "--format", "json").stdout))
    by_name = cases(root)
    assert set(by_name) == set(checks)
    failed = {name for name, case in by_name.items() if case.find("failure") is not None}
    assert failed == {
        "config.debug",
        "config.secret_key_in_source",
        "cookies.session_httponly",
        "cookies.session_secure",
    }
    skipped = {name for name, case in by_name.items() if case.find("skipped") is not None}
    assert skipped == {cid for cid, result in checks.items() if result == "skipped"}
    assert "silenced: nginx only forwards our Host" in (
        by_name["config.trusted_hosts"].findtext("system-out") or ""
    )
    assert root.get("failures") == "4"
    assert KEY not in done.stdout + done.stderr

    done = run_flask(project, "badapp", "--format", "JUnit", "--fail-level", "critical")
    assert done.returncode == 1
    assert ET.fromstring(done.stdout).get("failures") == "1"
