"""Checks that misbehave in ways beyond a plain exception never break the report, the
endpoint or the app's routes, and are reported for what they did (SPEC §8)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import CheckContext, Finding, ProdReady, Status
from flask_prodready.engine.registry import CLI
from flask_prodready.engine.runner import MAX_FINDINGS
from flask_prodready.engine.state import get_state

from ..support import result_of
from ..test_cli import run_flask

MakeApp = Callable[..., Flask]


class UnprintableError(Exception):
    """An exception whose ``str()`` itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


def _exits(ctx: CheckContext) -> None:
    sys.exit(3)


def _interrupts(ctx: CheckContext) -> None:
    raise KeyboardInterrupt


def _unprintable(ctx: CheckContext) -> None:
    raise UnprintableError


def _endless(ctx: CheckContext) -> Iterator[Finding]:
    while True:
        yield ctx.finding("once more")


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (_exits, "check demo.faulty raised SystemExit: 3"),
        (_interrupts, "check demo.faulty raised KeyboardInterrupt"),
        (_unprintable, "check demo.faulty raised UnprintableError"),
        (
            _endless,
            f"check demo.faulty raised ValueError: yielded more than {MAX_FINDINGS} findings",
        ),
    ],
    ids=["sys-exit", "keyboard-interrupt", "unprintable-exception", "endless-findings"],
)
def test_misbehaving_check_is_reported_as_crashed(
    make_app: MakeApp,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    check: Callable[[CheckContext], object],
    message: str,
) -> None:
    """sys.exit(), KeyboardInterrupt, an exception whose str() raises, and endless findings
    are reported at once as check_crashed (not as a timeout); the report and the app's
    routes answer, and the log has the traceback."""
    ext = ProdReady()
    ext.check("demo.faulty", title="Misbehaves")(check)
    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=5.0, PRODREADY_CACHE_SECONDS=0)

    @app.route("/page")
    def page() -> str:
        return "ok"

    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="flask_prodready"):
        report = get_state(app).build_report(app, mode=CLI, tags=["demo"])
    assert time.monotonic() - started < 2.0  # well within the 5 s timeout
    outcome = report.outcomes["demo.faulty"]
    assert outcome.status is Status.ERROR
    assert [(f.id, f.message) for f in outcome.findings] == [("prodready.check_crashed", message)]
    assert "Traceback" in caplog.text

    client = app.test_client()
    response = client.get("/_readiness?tag=demo", headers=auth)
    assert response.status_code == 503
    assert "Traceback" not in response.text
    assert result_of(response.get_json(force=True), "demo.faulty") == "error"
    assert client.get("/page").text == "ok"


class Unprintable:
    """An object whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("str() of this object fails")

    __repr__ = __str__


def _cyclic(ctx: CheckContext) -> Iterator[Finding]:
    loop: dict[str, object] = {"name": "loop"}
    loop["self"] = loop
    yield ctx.finding("refers to itself", observed=loop)


def _tuple_key(ctx: CheckContext) -> Iterator[Finding]:
    yield ctx.finding("keyed by a tuple", observed={("host", 5432): "up"})


def _unprintable_observed(ctx: CheckContext) -> Iterator[Finding]:
    yield ctx.finding("holds an object that cannot be printed", observed=[Unprintable()])


UNSHOWABLE = [
    (_cyclic, "UnsafeValue: the value contains itself"),
    (_tuple_key, "UnsafeValue: a key of type tuple (JSON keys are names)"),
    (_unprintable_observed, "RuntimeError: str() of this object fails"),
]
UNSHOWABLE_IDS = ["cyclic", "tuple-key", "str-raises"]


@pytest.mark.parametrize(("check", "said"), UNSHOWABLE, ids=UNSHOWABLE_IDS)
@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "pure"])
def test_unshowable_finding_loses_only_its_check(
    make_app: MakeApp,
    auth: dict[str, str],
    check: Callable[[CheckContext], object],
    said: str,
    blocking: bool,
) -> None:
    """A check whose observed value is cyclic, keyed by a tuple, or holds an object whose
    str() raises is prodready.check_crashed for that check alone: every other check's result
    is in the report, in every format, and the endpoint answers 503 with it."""
    ext = ProdReady()
    ext.check("demo.unshowable", title="Hands back what cannot be shown", blocking=blocking)(check)

    @ext.check("demo.fine", title="Passes", blocking=blocking)
    def fine(ctx: CheckContext) -> None:
        return None

    app = make_app(ext, PRODREADY_CACHE_SECONDS=0)
    report = get_state(app).build_report(app, mode=CLI)
    outcome = report.outcomes["demo.unshowable"]
    assert outcome.status is Status.ERROR
    assert [(f.id, f.message) for f in outcome.findings] == [
        (
            "prodready.check_crashed",
            f"check demo.unshowable handed back a finding that cannot be shown: {said}",
        )
    ]
    assert report.outcomes["demo.fine"].status is Status.PASS
    assert report.outcomes["config.debug"].status is Status.PASS
    assert len(report.outcomes) == len(get_state(app).registry.select())

    client = app.test_client()
    for fmt in ("json", "html", "openmetrics"):
        response = client.get(f"/_readiness?format={fmt}", headers=auth)
        assert response.status_code == (200 if fmt == "openmetrics" else 503), fmt
        assert "demo.fine" in response.text, fmt
        assert "Traceback" not in response.text
    body = client.get("/_readiness", headers=auth).get_json(force=True)
    assert result_of(body, "demo.unshowable") == "error"
    assert result_of(body, "demo.fine") == "pass"


UNSHOWABLE_APP = """
from flask import Flask
from flask_prodready import ProdReady

from tests.safety.test_check_faults import UNSHOWABLE
from tests.support import GOOD_CONFIG

ext = ProdReady()
for index, (check, _) in enumerate(UNSHOWABLE):
    ext.check(f"demo.unshowable{index}", title="Hands back what cannot be shown")(check)


@ext.check("demo.fine", title="Passes")
def fine(ctx):
    return None


app = Flask(__name__)
app.config.update(GOOD_CONFIG)
ext.init_app(app)
"""


def test_flask_readiness_reports_unshowable_findings_without_a_traceback(
    tmp_path: Path,
) -> None:
    """flask readiness with the three checks whose findings cannot be shown: each is
    check_crashed, the other checks are reported, exit 1, and no traceback on stdout or
    stderr (the log line is one line)."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "unshowable.py").write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\n" + UNSHOWABLE_APP
    )
    for fmt in ("json", "text"):
        done = run_flask(tmp_path, "unshowable", "--format", fmt, "--tag", "demo")
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        if fmt == "json":
            body = json.loads(done.stdout)
            assert result_of(body, "demo.fine") == "pass"
            crashed = [f for f in body["findings"] if f["id"] == "prodready.check_crashed"]
            assert sorted(f["observed"]["check"] for f in crashed) == [
                "demo.unshowable0",
                "demo.unshowable1",
                "demo.unshowable2",
            ]
        stderr_lines = done.stderr.splitlines()
        assert len(stderr_lines) == 3, done.stderr
        assert all(
            line.startswith("flask-prodready check demo.unshowable") for line in stderr_lines
        )
