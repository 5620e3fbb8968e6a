"""Checks that misbehave in ways beyond a plain exception never break the report, the
endpoint or the app's routes, and are reported for what they did (SPEC §8)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from flask_prodready import CheckContext, Finding, ProdReady, Status
from flask_prodready.engine.registry import CLI
from flask_prodready.engine.runner import MAX_FINDINGS
from flask_prodready.engine.state import get_state

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
    assert response.get_json(force=True)["checks"]["demo.faulty"]["status"] == "error"
    assert client.get("/page").text == "ok"
