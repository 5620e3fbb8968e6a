"""The runner: parallel checks, timeouts, crash isolation, silencing, redaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from flask_prodready import CheckContext, Finding, ProdReady, Status
from flask_prodready import runner as runner_module
from flask_prodready.extension import get_state
from flask_prodready.registry import CLI, LIVE, PLANNED, make_check
from flask_prodready.workers import CHECK_THREADS


def _report(app: Flask, mode: str = CLI, **kwargs: object):  # type: ignore[no-untyped-def]
    return get_state(app).build_report(app, mode=mode, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def troubled(make_app: Callable[..., Flask]) -> tuple[Flask, threading.Event, list[float]]:
    """An app with a crashing, a hanging and a slow check (the hang ends when released)."""
    ext = ProdReady()
    release = threading.Event()
    slow_runs: list[float] = []

    @ext.check("demo.crashes", title="Crashes", level="error")
    def crashes(ctx: CheckContext) -> None:
        raise KeyError("boom")

    @ext.check("demo.hangs", title="Hangs", level="error")
    def hangs(ctx: CheckContext) -> None:
        release.wait(30)

    @ext.check("demo.slow", title="Slow", level="warning")
    def slow(ctx: CheckContext) -> Iterator[Finding]:
        slow_runs.append(time.monotonic())
        time.sleep(0.3)
        yield ctx.finding("slow but fine")

    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=1.0, PRODREADY_CACHE_SECONDS=30)
    yield app, release, slow_runs  # type: ignore[misc]
    release.set()


def test_crash_hang_and_slow_in_one_run(
    troubled: tuple[Flask, threading.Event, list[float]],
) -> None:
    """A crashing, a hanging and a slow check: the report arrives within the timeout plus a
    margin and names check_crashed and check_timeout."""
    app, _, _ = troubled
    started = time.monotonic()
    report = _report(app, tags=["demo"])
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.5
    ids = {f.id for f in report.findings}
    assert {"prodready.check_crashed", "prodready.check_timeout", "demo.slow"} <= ids
    assert report.outcomes["demo.crashes"].status is Status.ERROR
    assert report.outcomes["demo.hangs"].status is Status.ERROR
    assert report.outcomes["demo.slow"].status is Status.FAIL
    crash = next(f for f in report.findings if f.id == "prodready.check_crashed")
    assert crash.message == "check demo.crashes raised KeyError: 'boom'"
    assert crash.observed == {"check": "demo.crashes", "exception": "KeyError"}
    assert "demo" in crash.tags
    assert "prodready" in crash.tags
    assert report.status is Status.FAIL


def test_hanging_check_is_not_restarted(
    troubled: tuple[Flask, threading.Event, list[float]],
) -> None:
    """A check that keeps hanging holds one thread, however many uncached runs are made."""
    app, release, _ = troubled
    state = get_state(app)
    for _ in range(5):
        report = _report(app, tags=["demo"], exclude=["demo.slow"])
        timeout = next(f for f in report.findings if f.id == "prodready.check_timeout")
    assert "still running from an earlier report" in timeout.message
    assert state.runner.running_count() == 1
    hanging = [t for t in threading.enumerate() if t.name == "prodready:demo.hangs"]
    assert len(hanging) == 1
    release.set()
    deadline = time.monotonic() + 5
    while state.runner.running_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.runner.running_count() == 0


def test_crash_is_logged_with_traceback_redacted(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """A crash goes to the log with its traceback, and a secret in the message is masked."""
    ext = ProdReady()
    password = "Sup3r-s3cret-pw"

    @ext.check("demo.leaky", title="Leaky")
    def leaky(ctx: CheckContext) -> None:
        raise RuntimeError(f"could not connect to postgresql://app:{password}@db/app")

    app = make_app(ext, SQLALCHEMY_DATABASE_URI=f"postgresql://app:{password}@db/app")
    with caplog.at_level(logging.ERROR, logger="flask_prodready"):
        report = _report(app, tags=["demo"])
    crash = next(f for f in report.findings if f.id == "prodready.check_crashed")
    assert password not in crash.message
    assert "postgresql://app:***@db/app" in crash.message
    assert "Traceback" in caplog.text
    assert "demo.leaky" in caplog.text
    assert password not in caplog.text


def test_silenced_finding_is_reported_but_does_not_fail(make_app: Callable[..., Flask]) -> None:
    """A silenced finding stays in the report, marked, and never fails anything."""
    app = make_app(
        SESSION_COOKIE_SECURE=False,
        PRODREADY_SILENCED={"cookies.session_secure": "TLS ends at the pod"},
    )
    report = _report(app, tags=["cookies"])
    finding = next(f for f in report.findings if f.id == "cookies.session_secure")
    assert finding.silenced
    assert finding.silence_reason == "TLS ends at the pod"
    assert report.status is Status.PASS
    assert report.summary()["silenced"] == 1
    assert report.summary()["error"] == 0


def test_live_only_and_planned_checks_are_skipped_with_reason(
    make_app: Callable[..., Flask],
) -> None:
    """From the CLI a live-only or a remote-only check is skipped with a reason; a planned
    one too; never pass."""
    ext = ProdReady()

    @ext.check("demo.live", title="Live only", modes=[LIVE])
    def live_only(ctx: CheckContext) -> None:
        raise AssertionError("must not run from the CLI")

    app = make_app(ext)
    get_state(app).registry.add(make_check("demo.planned", level="error", title="P", kind=PLANNED))
    report = _report(app)
    live = report.outcomes["demo.live"]
    assert live.status is Status.SKIPPED
    assert live.reason == "can only judge from the running server, not here"
    remote = report.outcomes["tls.http_redirect"]
    assert (remote.status, remote.reason) == (
        Status.SKIPPED,
        "can only judge from a remote client, not here",
    )
    planned = report.outcomes["demo.planned"]
    assert planned.status is Status.SKIPPED
    assert planned.reason == "not built yet in this version of flask-prodready"
    assert "prodready.check_crashed" not in report.outcomes


def test_skip_from_inside_a_check(make_app: Callable[..., Flask]) -> None:
    """ctx.skip(reason) reports the check as skipped with that reason."""
    ext = ProdReady()

    @ext.check("demo.skips", title="Skips")
    def skips(ctx: CheckContext) -> None:
        ctx.skip("nothing to look at")

    report = _report(make_app(ext), tags=["demo"])
    assert report.outcomes["demo.skips"].status is Status.SKIPPED
    assert report.outcomes["demo.skips"].reason == "nothing to look at"


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("a string", "yielded str, expected a Finding from ctx.finding()"),
        ([42], "yielded int, expected a Finding from ctx.finding()"),
    ],
)
def test_check_returning_garbage_is_a_crash(
    make_app: Callable[..., Flask], returned: object, expected: str
) -> None:
    """A check that returns something other than findings is reported as crashed."""
    ext = ProdReady()

    @ext.check("demo.garbage", title="Garbage")
    def garbage(ctx: CheckContext) -> object:
        return returned

    report = _report(make_app(ext), tags=["demo"])
    crash = next(f for f in report.findings if f.id == "prodready.check_crashed")
    assert crash.message == f"check demo.garbage raised TypeError: {expected}"


def test_finding_level_override(make_app: Callable[..., Flask]) -> None:
    """ctx.finding(level=...) overrides the check's default level."""
    ext = ProdReady()

    @ext.check("demo.levels", title="Levels", level="error")
    def levels(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding("just so you know", level="info")

    report = _report(make_app(ext), tags=["demo"])
    assert [(f.id, f.level.value) for f in report.findings] == [("demo.levels", "info")]
    assert report.status is Status.PASS


def test_checks_run_in_parallel(make_app: Callable[..., Flask]) -> None:
    """Five checks sleeping 0.4 s each finish in well under their 2 s sum."""
    ext = ProdReady()
    for index in range(5):

        @ext.check(f"demo.sleep{index}", title="Sleeps")
        def sleeps(ctx: CheckContext) -> None:
            time.sleep(0.4)

    app = make_app(ext)
    started = time.monotonic()
    report = _report(app, tags=["demo"])
    assert time.monotonic() - started < 1.5
    assert all(report.outcomes[f"demo.sleep{i}"].status is Status.PASS for i in range(5))


def test_the_slowest_checks_of_the_last_run_start_first(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads start in the order of the checks' last durations, slowest first (the first
    run in registry order), so a check that waits on a server overlaps the quick ones."""
    ext = ProdReady()
    for name, seconds in (("alpha", 0.0), ("beta", 0.2), ("gamma", 0.05)):

        @ext.check(f"demo.{name}", title="Sleeps")
        def sleeps(ctx: CheckContext, seconds: float = seconds) -> None:
            time.sleep(seconds)

    app = make_app(ext)
    started: list[str] = []
    submit = CHECK_THREADS.submit

    def recording(name: str, task: Callable[[], None]) -> None:
        started.append(name)
        submit(name, task)

    monkeypatch.setattr(CHECK_THREADS, "submit", recording)
    _report(app, tags=["demo"])
    assert started == ["prodready:demo.alpha", "prodready:demo.beta", "prodready:demo.gamma"]
    started.clear()
    _report(app, tags=["demo"])
    assert started == ["prodready:demo.beta", "prodready:demo.gamma", "prodready:demo.alpha"]


def test_a_check_can_have_its_own_timeout(make_app: Callable[..., Flask]) -> None:
    """A check declared with timeout= gets that budget instead of PRODREADY_CHECK_TIMEOUT."""
    ext = ProdReady()

    @ext.check("demo.hasty", title="Default budget")
    def hasty(ctx: CheckContext) -> None:
        time.sleep(0.6)

    @ext.check("demo.patient", title="Own budget", timeout=2.0)
    def patient(ctx: CheckContext) -> None:
        time.sleep(0.6)

    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=0.3)
    report = _report(app, tags=["demo"])
    assert report.outcomes["demo.hasty"].status is Status.ERROR
    assert report.outcomes["demo.patient"].status is Status.PASS


def test_check_timeout_must_be_positive() -> None:
    """timeout=0 is refused at declaration, naming the check."""
    with pytest.raises(ValueError, match=r"timeout of demo\.x must be a number of seconds > 0"):
        ProdReady().check("demo.x", title="x", timeout=0)(lambda ctx: None)


class _Gauge:
    """How many of some checks run at once, at the most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(seconds)
        with self.lock:
            self.now -= 1


def _sleepers(ext: ProdReady, prefix: str, count: int, seconds: float, gauge: _Gauge) -> None:
    for number in range(count):

        @ext.check(f"{prefix}.n{number}", title="Sleeps")
        def sleeps(ctx: CheckContext) -> None:
            gauge.sleep(seconds)


def test_quick_checks_run_a_few_at_a_time(make_app: Callable[..., Flask]) -> None:
    """Checks that took under QUICK_SECONDS last time run QUICK_AT_ONCE at a time; slow
    ones and those never timed start at once."""
    ext = ProdReady()
    quick, slow = _Gauge(), _Gauge()
    _sleepers(ext, "quick", 8, 0.001, quick)
    _sleepers(ext, "slow", 4, 0.05, slow)
    app = make_app(ext)
    first = _report(app, tags=["quick", "slow"])  # nothing timed yet: all at once
    assert all(o.status is Status.PASS for o in first.outcomes.values())
    assert slow.most == 4
    quick.most = slow.most = 0
    second = _report(app, tags=["quick", "slow"])
    assert all(o.status is Status.PASS for o in second.outcomes.values())
    assert 1 <= quick.most <= runner_module.QUICK_AT_ONCE
    assert slow.most == 4


def test_a_hung_quick_check_does_not_hold_up_the_others(
    make_app: Callable[..., Flask],
) -> None:
    """Two checks that were quick and now hang hold both slots, each for QUICK_GRACE at
    the most: every other quick check still runs and passes, and the run ends on time."""
    ext = ProdReady()
    release = threading.Event()
    hang = threading.Event()

    for name in ("quick.a_hangs", "quick.b_hangs"):
        # The slowest of the quick ones the first time, so they take both slots first.

        @ext.check(name, title="Hangs the second time")
        def hangs(ctx: CheckContext) -> None:
            if hang.is_set():
                release.wait(10)
            else:
                time.sleep(0.003)

    gauge = _Gauge()
    _sleepers(ext, "quick", 6, 0.001, gauge)
    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=1.0)
    _report(app, tags=["quick"])
    hang.set()
    try:
        started = time.monotonic()
        report = _report(app, tags=["quick"])
        elapsed = time.monotonic() - started
    finally:
        release.set()
    hung = ("quick.a_hangs", "quick.b_hangs")
    assert [report.outcomes[cid].reason for cid in hung] == ["timed out", "timed out"]
    others = {cid: o.status for cid, o in report.outcomes.items() if cid not in hung}
    assert len(others) == 6
    assert set(others.values()) == {Status.PASS}
    assert elapsed < 1.0 + 0.5
