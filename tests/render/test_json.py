"""The JSON body: the shape of the application/health+json draft, its JSON Schema, and
what each check entry says."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from flask import Flask
from jsonschema import Draft202012Validator

from flask_prodready._version import __version__
from flask_prodready.engine.findings import CheckOutcome, Finding, Level, Status
from flask_prodready.engine.state import get_state
from flask_prodready.render.json import SCHEMA_RESOURCE, render_json, report_schema

from ..support import check_of
from .samples import CRASHED, GENERATED_AT, mixed_report, sample_report

#: The structure the draft (Health Check Response Format for HTTP APIs) gives a body:
#: written from the draft, independently of the shipped schema.
DRAFT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["pass", "warn", "fail"]},
        "version": {"type": "string"},
        "releaseId": {"type": "string"},
        "notes": {"type": "array", "items": {"type": "string"}},
        "output": {"type": "string"},
        "serviceId": {"type": "string"},
        "description": {"type": "string"},
        "links": {"type": "object"},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["componentId", "status"],
                    "properties": {
                        "componentId": {"type": "string"},
                        "componentType": {"type": "string"},
                        "observedValue": {},
                        "observedUnit": {"type": "string"},
                        "status": {"enum": ["pass", "warn", "fail"]},
                        "affectedEndpoints": {"type": "array", "items": {"type": "string"}},
                        "time": {"type": "string"},
                        "output": {"type": "string"},
                        "links": {"type": "object"},
                    },
                },
            },
        },
    },
}

BAD = {"DEBUG": True, "SECRET_KEY": "dev", "SESSION_COOKIE_SECURE": False}


def live_body(app: Flask) -> dict[str, Any]:
    return (
        get_state(app).build_report(app, mode="live", server_software="gunicorn/23.0.0").to_dict()
    )


def entries(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check_id: check_of(body, check_id) for check_id in body["checks"]}


class TestDraftShape:
    def test_a_sample_report_follows_the_draft(self, make_app: Callable[..., Flask]) -> None:
        """A bad app's live report is a draft body: every check an array of objects with
        its componentId and a status of pass, warn or fail."""
        body = live_body(make_app(**BAD))
        assert body["status"] == "fail"
        Draft202012Validator(DRAFT).validate(body)
        assert {entry["status"] for entry in entries(body).values()} == {"pass", "warn", "fail"}
        for check_id, entry in entries(body).items():
            assert entry["componentId"] == check_id
            assert entry["componentType"] == "component"
            assert entry["time"] == body["generated_at"]

    def test_every_check_carries_its_duration_and_tags(
        self, make_app: Callable[..., Flask]
    ) -> None:
        """duration_ms is a number of milliseconds for every check; tags are the
        registry's, also for a check that passed."""
        app = make_app()
        body = live_body(app)
        registry = get_state(app).registry
        for check_id, entry in entries(body).items():
            assert isinstance(entry["duration_ms"], float), check_id
            assert entry["duration_ms"] >= 0
            assert entry["tags"] == list(registry.get(check_id).tags), check_id  # type: ignore[union-attr]
        assert check_of(body, "config.debug")["result"] == "pass"
        assert check_of(body, "config.debug")["tags"] == ["config", "security"]

    def test_the_json_text_is_the_body(self) -> None:
        """render_json writes to_dict as indented JSON."""
        report = mixed_report()
        assert json.loads(render_json(report)) == report.to_dict()


class TestCheckEntries:
    def test_each_outcome_in_both_vocabularies(self) -> None:
        """result says how the check ended; status is the draft's: a silenced finding is
        pass, a warning or a skip warn, an error, a critical or a crash fail."""
        body = mixed_report().to_dict()
        common = {"componentType": "component", "time": GENERATED_AT, "tags": []}
        assert entries(body) == {
            "config.testing": {
                **common,
                "componentId": "config.testing",
                "status": "pass",
                "result": "pass",
                "duration_ms": 1.0,
                "silenced": False,
            },
            "config.debug": {
                **common,
                "componentId": "config.debug",
                "status": "fail",
                "result": "fail",
                "duration_ms": 2.0,
                "output": "The app runs in debug mode (DEBUG is true).",
                "level": "critical",
                "silenced": False,
            },
            "config.max_content_length": {
                **common,
                "componentId": "config.max_content_length",
                "status": "warn",
                "result": "fail",
                "duration_ms": 0.0,
                "output": "MAX_CONTENT_LENGTH is not set: request bodies are unbounded.",
                "level": "warning",
                "silenced": False,
            },
            "cookies.session_secure": {
                **common,
                "componentId": "cookies.session_secure",
                "status": "pass",
                "result": "fail",
                "duration_ms": 0.0,
                "silenced": True,
            },
            "server.workers": {
                **common,
                "componentId": "server.workers",
                "status": "warn",
                "result": "skipped",
                "duration_ms": 0.0,
                "output": "not under gunicorn",
                "reason": "not under gunicorn",
                "silenced": False,
            },
            "demo.crashes": {
                **common,
                "componentId": "demo.crashes",
                "status": "fail",
                "result": "error",
                "duration_ms": 0.0,
                "output": CRASHED.message,
                "reason": "raised ZeroDivisionError",
                "level": "error",
                "silenced": False,
            },
        }

    @pytest.mark.parametrize(
        ("level", "status"),
        [
            (Level.INFO, "warn"),
            (Level.WARNING, "warn"),
            (Level.ERROR, "fail"),
            (Level.CRITICAL, "fail"),
        ],
    )
    def test_status_follows_the_highest_unsilenced_level(self, level: Level, status: str) -> None:
        """Below error a finding makes the check warn; error and critical make it fail;
        a silenced finding beside it changes nothing."""
        found = Finding("demo.check", level, "found")
        quiet = Finding("demo.check", Level.CRITICAL, "accepted", silenced=True)
        report = sample_report(CheckOutcome("demo.check", Status.FAIL, (found, quiet)))
        entry = check_of(report.to_dict(), "demo.check")
        assert (entry["status"], entry["level"], entry["output"]) == (status, level.value, "found")

    def test_output_lists_every_unsilenced_message(self) -> None:
        """Several findings give one output, a message a line."""
        first = Finding("demo.check", Level.WARNING, "first")
        second = Finding("demo.check", Level.INFO, "second")
        report = sample_report(CheckOutcome("demo.check", Status.FAIL, (first, second)))
        assert check_of(report.to_dict(), "demo.check")["output"] == "first\nsecond"

    @pytest.mark.parametrize(
        ("observed", "expected"),
        [(3, 3), (0.25, 0.25), (True, None), ("3", None), ({"value": 3}, None), (None, None)],
    )
    def test_observed_value_only_for_one_number(self, observed: Any, expected: Any) -> None:
        """observedValue is the observed of the only finding when it is a number; no unit
        is ever made up."""
        found = Finding("demo.check", Level.WARNING, "found", observed=observed)
        entry = check_of(
            sample_report(CheckOutcome("demo.check", Status.FAIL, (found,))).to_dict(),
            "demo.check",
        )
        assert entry.get("observedValue") == expected
        assert ("observedValue" in entry) is (expected is not None)
        assert "observedUnit" not in entry

    def test_no_observed_value_for_two_findings(self) -> None:
        """Two numbers are not one observation."""
        findings = tuple(Finding("demo.check", Level.WARNING, f"{n}", observed=n) for n in (1, 2))
        report = sample_report(CheckOutcome("demo.check", Status.FAIL, findings))
        assert "observedValue" not in check_of(report.to_dict(), "demo.check")

    def test_duration_in_milliseconds_rounded_to_the_microsecond(self) -> None:
        """0.0123456 s is 12.346 ms."""
        report = sample_report(CheckOutcome("demo.check", Status.PASS, duration=0.0123456))
        assert check_of(report.to_dict(), "demo.check")["duration_ms"] == 12.346


class TestTopLevel:
    def test_identity_and_notes(
        self, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """serviceId is the app's name, releaseId PRODREADY_RELEASE (before SENTRY_RELEASE),
        notes name this flask-prodready; an app installed by no distribution has no version."""
        monkeypatch.setenv("SENTRY_RELEASE", "sentry-release")
        monkeypatch.setenv("PRODREADY_RELEASE", "v2.4.1-3-gabc1234")
        body = live_body(make_app())
        assert body["serviceId"] == "testapp"
        assert body["releaseId"] == "v2.4.1-3-gabc1234"
        assert body["notes"] == [f"flask-prodready {__version__}"]
        assert "version" not in body

    def test_nothing_made_up_without_a_release(self, make_app: Callable[..., Flask]) -> None:
        """Without PRODREADY_RELEASE and SENTRY_RELEASE there is no releaseId."""
        assert "releaseId" not in live_body(make_app())

    def test_output_of_a_failing_run(self) -> None:
        """For fail, output names the findings that make it fail."""
        assert mixed_report().to_dict()["output"] == (
            "2 unsilenced findings at level error or above: config.debug, prodready.check_crashed"
        )

    def test_output_names_at_most_five(self) -> None:
        """A long list is cut, saying how many more there are."""
        outcomes = [
            CheckOutcome(
                f"demo.check{n}", Status.FAIL, (Finding(f"demo.check{n}", Level.ERROR, "x"),)
            )
            for n in range(7)
        ]
        assert sample_report(*outcomes).to_dict()["output"] == (
            "7 unsilenced findings at level error or above: demo.check0, demo.check1, "
            "demo.check2, demo.check3, demo.check4 and 2 more"
        )

    def test_output_of_an_unknown_run(self) -> None:
        """For unknown, output says why nothing could be judged."""
        report = sample_report(CheckOutcome("server.workers", Status.SKIPPED, reason="no gunicorn"))
        body = report.to_dict()
        assert (body["status"], body["output"]) == (
            "unknown",
            "nothing could be judged: server.workers: no gunicorn",
        )

    @pytest.mark.parametrize("level", [None, Level.WARNING])
    def test_no_output_for_pass_and_warn(self, level: Level | None) -> None:
        """pass and warn need no explanation: no output."""
        findings = () if level is None else (Finding("demo.check", level, "found"),)
        status = Status.PASS if level is None else Status.FAIL
        body = sample_report(CheckOutcome("demo.check", status, findings)).to_dict()
        assert body["status"] in ("pass", "warn")
        assert "output" not in body


class TestSchema:
    def test_ships_in_the_package(self) -> None:
        """The schema is a file of the package (the wheel holds the package folder whole),
        found with importlib.resources, and a valid draft 2020-12 schema."""
        resource = files("flask_prodready").joinpath(SCHEMA_RESOURCE)
        assert resource.is_file()
        schema = json.loads(resource.read_text("utf-8"))
        assert schema == report_schema()
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)

    def test_every_sample_validates(self) -> None:
        """The hand-built reports of the renderer tests match the schema."""
        validator = Draft202012Validator(report_schema())
        validator.validate(mixed_report().to_dict())
        validator.validate(sample_report().to_dict())

    def test_rejects_the_previous_shape(self) -> None:
        """A body with the previous release's checks ({"status": ...}) does not match."""
        body = mixed_report().to_dict()
        body["checks"] = {"config.debug": {"status": "fail"}}
        with pytest.raises(jsonschema.ValidationError):
            Draft202012Validator(report_schema()).validate(body)

    @pytest.mark.parametrize(
        "change",
        [
            {"status": "fail"},  # a pass reported as the draft's fail
            {"output": "something"},  # output for a check that passed
            {"result": "skipped"},  # a skip without its reason
            {"duration_ms": -1},
            {"componentType": "datastore"},
            {"extra": True},
        ],
    )
    def test_rejects_an_inconsistent_entry(self, change: dict[str, Any]) -> None:
        """The schema pins how status, result, output and reason go together."""
        body = sample_report(CheckOutcome("demo.check", Status.PASS)).to_dict()
        body["checks"]["demo.check"][0].update(change)
        with pytest.raises(jsonschema.ValidationError):
            Draft202012Validator(report_schema()).validate(body)

    def test_room_for_more_top_level_keys(self) -> None:
        """A key added at the top level in a later release still validates."""
        body = {**sample_report().to_dict(), "description": "the shop's web app"}
        Draft202012Validator(report_schema()).validate(body)
