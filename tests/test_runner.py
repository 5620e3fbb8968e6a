"""The runner: parallel checks, timeouts, crash isolation, silencing, redaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from flask_prodready import CheckContext, Finding, ProdReady, Status
from flask_prodready.engine.registry import CLI, LIVE
from flask_prodready.engine.state import get_state


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


def test_live_only_and_remote_only_checks_are_skipped_with_reason(
    make_app: Callable[..., Flask],
) -> None:
    """From the CLI a live-only or a remote-only check is skipped with a reason; never pass."""
    ext = ProdReady()

    @ext.check("demo.live", title="Live only", modes=[LIVE])
    def live_only(ctx: CheckContext) -> None:
        raise AssertionError("must not run from the CLI")

    app = make_app(ext)
    report = _report(app)
    live = report.outcomes["demo.live"]
    assert live.status is Status.SKIPPED
    assert live.reason == "can only judge from the running server, not here"
    remote = report.outcomes["tls.http_redirect"]
    assert (remote.status, remote.reason) == (
        Status.SKIPPED,
        "can only judge from a remote client, not here",
    )
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


def test_pure_checks_run_inline_and_blocking_ones_on_daemon_threads(
    make_app: Callable[..., Flask],
) -> None:
    """A check declared pure runs in the thread that asked for the report; a blocking one on
    a daemon thread of its own, named after it."""
    ext = ProdReady()
    seen: dict[str, threading.Thread] = {}

    @ext.check("demo.pure", title="Pure", blocking=False)
    def pure(ctx: CheckContext) -> None:
        seen["pure"] = threading.current_thread()

    @ext.check("demo.waits", title="Blocking")
    def waits(ctx: CheckContext) -> None:
        seen["waits"] = threading.current_thread()

    _report(make_app(ext), tags=["demo"])
    assert seen["pure"] is threading.current_thread()
    assert seen["waits"] is not threading.current_thread()
    assert seen["waits"].daemon
    assert seen["waits"].name == "prodready:demo.waits"


def test_a_pure_check_that_overruns_is_reported(make_app: Callable[..., Flask]) -> None:
    """A pure check that took longer than its timeout keeps its findings and is reported as
    check_timeout, saying it ran inline and should be declared blocking."""
    ext = ProdReady()

    @ext.check("demo.slow_pure", title="Slow but declared pure", blocking=False)
    def slow_pure(ctx: CheckContext) -> Iterator[Finding]:
        time.sleep(0.4)
        yield ctx.finding("found something")

    report = _report(make_app(ext, PRODREADY_CHECK_TIMEOUT=0.1), tags=["demo"])
    outcome = report.outcomes["demo.slow_pure"]
    assert outcome.status is Status.ERROR
    assert [f.id for f in outcome.findings] == ["demo.slow_pure", "prodready.check_timeout"]
    assert "declared pure" in outcome.findings[1].message
    assert "blocking=True" in outcome.findings[1].message


def test_built_in_checks_that_wait_on_io_are_declared_blocking() -> None:
    """The built-in checks that talk to a server, run a subprocess or walk the file system
    are blocking; the ones that read the process are pure."""
    from flask_prodready.checks import builtin_checks

    blocking = {c.id for c in builtin_checks() if c.blocking}
    assert {
        "database.unreachable",
        "database.pool_budget",
        "database.superuser",
        "database.migrations",
        "dependencies.vulnerable",
        "tls.certificate_expiry",
        "tls.http_redirect",
        "config.secret_key_in_source",
        "backups.stale",
    } <= blocking
    assert not blocking & {"config.debug", "cookies.session_secure", "database.sqlite"}


def test_threads_stay_bounded_with_a_hanging_check(make_app: Callable[..., Flask]) -> None:
    """50 uncached reports in a row with a blocking check that hangs: after the first, the
    process holds no more threads than it did (the hung attempt is joined, not restarted)."""
    ext = ProdReady()
    release = threading.Event()

    @ext.check("demo.hangs_forever", title="Hangs")
    def hangs(ctx: CheckContext) -> None:
        release.wait(60)

    @ext.check("demo.fine", title="Fine")
    def fine(ctx: CheckContext) -> None:
        return None

    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=0.02, PRODREADY_CACHE_SECONDS=0)
    try:
        first = _report(app, tags=["demo"])
        assert first.outcomes["demo.hangs_forever"].reason == "timed out"
        time.sleep(0.1)  # the quick check's thread ends
        after_first = threading.active_count()
        counts = []
        for _ in range(50):
            report = _report(app, tags=["demo"])
            assert report.outcomes["demo.fine"].status is Status.PASS
            counts.append(threading.active_count())
        time.sleep(0.1)
        assert threading.active_count() <= after_first
        assert max(counts) <= after_first + 1  # the quick check's own thread, while it runs
    finally:
        release.set()


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
