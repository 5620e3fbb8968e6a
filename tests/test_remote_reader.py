"""Remote mode reads both shapes of a body's checks: this release's and the previous one's."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_prodready.engine.findings import ServiceInfo, Status
from flask_prodready.engine.state import get_state
from flask_prodready.remote.reader import report_from_dict
from flask_prodready.render import render

#: A body as the previous release answered it: checks as {"status": ..., "reason": ...}.
PREVIOUS = {
    "status": "fail",
    "findings": [
        {
            "id": "config.debug",
            "level": "critical",
            "message": "The app runs in debug mode (DEBUG is true).",
            "hint": "Set DEBUG = False.",
            "tags": ["config", "security"],
            "silenced": False,
            "observed": True,
        },
        {
            "id": "prodready.check_crashed",
            "level": "error",
            "message": "check myapp.redis raised ConnectionError",
            "hint": "A bug in the check.",
            "tags": ["prodready", "myapp"],
            "silenced": False,
            "observed": {"check": "myapp.redis", "exception": "ConnectionError"},
        },
    ],
    "checks": {
        "config.debug": {"status": "fail"},
        "config.testing": {"status": "pass"},
        "myapp.redis": {"status": "error", "reason": "raised ConnectionError"},
        "server.workers": {"status": "skipped", "reason": "not under gunicorn"},
    },
    "summary": {
        "critical": 1,
        "error": 1,
        "warning": 0,
        "info": 0,
        "passed": 1,
        "skipped": 1,
        "errored": 1,
        "silenced": 0,
    },
    "worker": {"pid": 8021, "hostname": "web-1", "server": "gunicorn/23.0.0"},
    "mode": "live",
    "generated_at": "2026-11-27T10:00:00Z",
    "cached": False,
}


def live_body(app: Flask) -> dict[str, Any]:
    report = get_state(app).build_report(app, mode="live", server_software="gunicorn/23.0.0")
    body: dict[str, Any] = json.loads(json.dumps(report.to_dict()))
    return body


class TestThisRelease:
    def test_checks_and_identity_read_back(
        self, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Read back and written again, the checks (result, reason, duration, tags, output)
        and serviceId, releaseId and notes are the server's."""
        monkeypatch.setenv("PRODREADY_RELEASE", "v2.0.0")
        body = live_body(make_app(DEBUG=True, PRODREADY_SILENCED={"config.testing": "ok"}))
        again = report_from_dict(body).to_dict()
        assert again["checks"] == body["checks"]
        keys = ("status", "output", "serviceId", "releaseId", "notes", "findings", "summary")
        assert {k: again.get(k) for k in keys} == {k: body.get(k) for k in keys}
        assert report_from_dict(body).service == ServiceInfo("testapp", release="v2.0.0")

    def test_duration_and_tags(self, make_app: Callable[..., Flask]) -> None:
        """duration_ms comes back as seconds, tags as the check's."""
        body = live_body(make_app())
        body["checks"]["config.debug"][0]["duration_ms"] = 1500
        outcome = report_from_dict(body).outcomes["config.debug"]
        assert (outcome.duration, outcome.tags) == (1.5, ("config", "security"))

    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            ([], "checks['config.debug'] must be a list holding one object"),
            ([{}, {}], "checks['config.debug'] must be a list holding one object"),
            (["pass"], "checks['config.debug'] must be a list holding one object"),
            ("pass", "checks['config.debug'] is neither a list nor an object"),
            ([{"status": "pass"}], "checks['config.debug'] has no 'result'"),
            ([{"result": "warn"}], "checks['config.debug']: unknown result 'warn'"),
            (
                [{"result": "pass", "duration_ms": -1}],
                "checks['config.debug']: 'duration_ms' must be a number of milliseconds",
            ),
            (
                [{"result": "pass", "duration_ms": "1"}],
                "checks['config.debug']: 'duration_ms' has the wrong type (str)",
            ),
            (
                [{"result": "pass", "tags": [1]}],
                "checks['config.debug']: 'tags' must be a list of strings",
            ),
        ],
    )
    def test_a_wrong_entry_is_named(
        self, make_app: Callable[..., Flask], entry: Any, message: str
    ) -> None:
        """An entry that is not one object with a known result raises ValueError naming it."""
        body = live_body(make_app())
        body["checks"]["config.debug"] = entry
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            report_from_dict(body)
        assert str(caught.value) == message


class TestPreviousRelease:
    def test_read(self) -> None:
        """The previous release's checks are read: status, reason, findings back to their
        check, tags from the check's own findings; no duration, identity or notes."""
        report = report_from_dict(copy.deepcopy(PREVIOUS))
        outcomes = report.outcomes
        assert {cid: o.status for cid, o in outcomes.items()} == {
            "config.debug": Status.FAIL,
            "config.testing": Status.PASS,
            "myapp.redis": Status.ERROR,
            "server.workers": Status.SKIPPED,
        }
        assert outcomes["server.workers"].reason == "not under gunicorn"
        assert [f.id for f in outcomes["myapp.redis"].findings] == ["prodready.check_crashed"]
        assert outcomes["config.debug"].tags == ("config", "security")
        assert outcomes["myapp.redis"].tags == ()
        assert {o.duration for o in outcomes.values()} == {0.0}
        assert (report.service, report.notes) == (None, ())

    def test_written_in_the_new_shape(self) -> None:
        """Written again, the previous release's report has this release's shape."""
        body = report_from_dict(copy.deepcopy(PREVIOUS)).to_dict()
        assert body["checks"]["myapp.redis"] == [
            {
                "componentId": "myapp.redis",
                "componentType": "component",
                "status": "fail",
                "result": "error",
                "time": "2026-11-27T10:00:00Z",
                "duration_ms": 0.0,
                "output": "check myapp.redis raised ConnectionError",
                "reason": "raised ConnectionError",
                "level": "error",
                "tags": [],
                "silenced": False,
            }
        ]
        assert body["notes"] == []
        assert "serviceId" not in body

    @pytest.mark.parametrize("output_format", ["text", "junit", "sarif", "openmetrics", "json"])
    def test_every_renderer_takes_it(self, output_format: str) -> None:
        """Each format of remote mode renders a report read from the previous shape."""
        report = report_from_dict(copy.deepcopy(PREVIOUS))
        assert "config.debug" in render(report, output_format)
