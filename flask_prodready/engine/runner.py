"""The runner every front end shares: pure checks inline, blocking ones in daemon threads.

A check declares whether it blocks on I/O (``blocking=True``: a database, a subprocess,
the network, a walk of the file system). Pure checks only read the process (config,
the traffic record, a few files' modes): they run one after another in the thread that
asked for the report, which costs nothing to start. Blocking checks each run as a
:class:`concurrent.futures.Future` on a daemon thread of its own, under the check
timeout. Daemon threads, because a check hanging on a dead server must never keep the
CLI or the interpreter from exiting (a ``ThreadPoolExecutor`` joins its threads at exit).

Why threads and no signals: signals only work in the main thread, and a web worker
serves requests elsewhere. A thread cannot be killed, so a check that hangs keeps its
thread. The runner therefore never runs the same check twice at once: a run that needs a
check already running (for another report, or stuck since an earlier one) waits for that
attempt until its own deadline instead of starting another thread. A check that keeps
hanging holds at most one thread, however many reports are asked for.

A check that raises is reported as ``prodready.check_crashed`` with its id and the
exception type; the traceback goes to the ``flask_prodready`` logger, redacted. A pure
check that overran its time is reported as ``prodready.check_timeout`` too (it delayed
the report: it should have declared itself blocking).

What a check hands back is made public inside the same isolation, in the check's own
thread: silenced, redacted, its ``observed`` made JSON-safe. A finding that cannot be made
safe (an ``observed`` that contains itself, a tuple as a key, an object whose ``str()``
raises) makes that check ``prodready.check_crashed``, and only that check: the report,
and every other check's result in it, is still built.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TypeVar

from .context import CheckContext, CheckSkipped, RunEnvironment
from .findings import CheckOutcome, Finding, Level, Status
from .redaction import Redactor
from .registry import CLI, ENGINE, LIVE, REMOTE, Check, Mode, make_check

R = TypeVar("R")

logger = logging.getLogger("flask_prodready")

CHECK_CRASHED = make_check(
    "prodready.check_crashed",
    level=Level.ERROR,
    title="A check raised an exception",
    hint="A bug in the check or in what it inspects; the traceback is in the server log "
    "(logger 'flask_prodready').",
    modes=(LIVE, CLI, REMOTE),
    kind=ENGINE,
)
CHECK_TIMEOUT = make_check(
    "prodready.check_timeout",
    level=Level.ERROR,
    title="A check exceeded PRODREADY_CHECK_TIMEOUT",
    hint="Find out why what the check inspects answers slowly, or raise PRODREADY_CHECK_TIMEOUT.",
    modes=(LIVE, CLI, REMOTE),
    kind=ENGINE,
)
ENGINE_CHECKS = (CHECK_CRASHED, CHECK_TIMEOUT)

#: Longest exception message kept in a crash finding.
MAX_EXCEPTION_MESSAGE = 300
#: How the crash finding of a check whose findings cannot be made public begins.
UNSHOWABLE = "handed back a finding that cannot be shown:"
#: Most findings one check run may give; more is a bug in the check (reported as a crash).
MAX_FINDINGS = 1000
_MODE_NAMES = {LIVE: "the running server", CLI: "the command line", REMOTE: "a remote client"}


def in_daemon_thread(name: str, work: Callable[[], R]) -> Future[R]:
    """Start ``work`` on a new daemon thread named ``name``; its result (or the exception it
    raised) arrives in the returned future.

    The one way the engine and the checks run something in the background: a daemon
    thread never keeps the interpreter from exiting, and a future can be waited for with
    a timeout and shared by every caller who needs the same answer.
    """
    future: Future[R] = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to whoever waits, never lost in the thread
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


@dataclass(frozen=True)
class _Attempt:
    """A blocking check running on a thread of its own, and when it started."""

    future: Future[CheckOutcome]
    started: float


@dataclass(frozen=True)
class _Publisher:
    """Turns what a check handed back into its public form: silenced, redacted, JSON-safe.

    Called inside the check's isolation, so a finding that cannot be made safe is that
    check's crash, never the report's.
    """

    silenced: Mapping[str, str]
    redactor: Redactor

    def finding(self, finding: Finding) -> Finding:
        reason = self.silenced.get(finding.id)
        if reason is not None:
            finding = replace(finding, silenced=True, silence_reason=reason)
        level = Level.parse(finding.level)
        tags = tuple(str(tag) for tag in finding.tags)
        return self.redactor.finding(replace(finding, level=level, tags=tags))

    def reason(self, reason: object) -> str:
        return self.redactor.text(str(reason))


def _engine_finding(template: Check, check: Check, message: str, observed: object) -> Finding:
    tags = (*template.tags, *(t for t in check.tags if t not in template.tags))
    return Finding(
        id=template.id,
        level=template.level,
        message=message,
        hint=template.hint,
        tags=tags,
        observed=observed,
    )


def _collect(check: Check, result: object) -> tuple[Finding, ...]:
    """Normalise what a check returned into findings, refusing anything else."""
    if result is None:
        return ()
    items: Iterable[object] = (
        [result] if isinstance(result, Finding) else result  # type: ignore[assignment]
    )
    findings = []
    for item in items:
        if not isinstance(item, Finding):
            raise TypeError(f"yielded {type(item).__name__}, expected a Finding from ctx.finding()")
        if item.id != check.id:
            raise ValueError(f"yielded a finding with id {item.id!r}; use ctx.finding()")
        findings.append(item)
        if len(findings) > MAX_FINDINGS:
            # A check that yields without end would fill the worker's memory, for ever:
            # its thread outlives the report and cannot be stopped from outside.
            raise ValueError(f"yielded more than {MAX_FINDINGS} findings")
    return tuple(findings)


class Runner:
    """Runs checks for one app and remembers the blocking ones still running from earlier runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Attempt] = {}

    def running_count(self) -> int:
        """How many checks hold a thread right now (hung ones from earlier runs included)."""
        with self._lock:
            return len(self._running)

    def run(
        self,
        checks: Sequence[Check],
        env: RunEnvironment,
        *,
        timeout: float,
        silenced: Mapping[str, str],
        redactor: Redactor,
    ) -> dict[str, CheckOutcome]:
        """Run ``checks`` and return one redacted, silencing-applied outcome per check id.

        Blocking checks start first, so they wait on their servers while the pure ones run.
        """
        start = time.monotonic()
        publisher = _Publisher(silenced, redactor)
        outcomes: dict[str, CheckOutcome] = {}
        pure: list[Check] = []
        waiting: list[tuple[Check, _Attempt]] = []
        try:
            with self._lock:
                for item in checks:
                    skipped = self._skipped(item, env.mode)
                    if skipped is not None:
                        outcomes[item.id] = skipped
                    elif not item.blocking:
                        pure.append(item)
                    else:
                        waiting.append((item, self._attempt(item, env, start, timeout, publisher)))

            for item in pure:
                allowed = item.timeout or timeout
                ctx = CheckContext(env=env, check=item, deadline=time.monotonic() + allowed)
                outcome = self._execute(item, ctx, publisher)
                outcomes[item.id] = (
                    self._overran(item, allowed, outcome, publisher)
                    if outcome.duration is not None and outcome.duration > allowed
                    else outcome
                )

            for item, attempt in waiting:
                allowed = item.timeout or timeout
                try:
                    outcomes[item.id] = attempt.future.result(
                        timeout=max(0.0, start + allowed - time.monotonic())
                    )
                except concurrent.futures.TimeoutError:
                    earlier = start - attempt.started if attempt.started < start - 0.001 else None
                    outcomes[item.id] = self._timed_out(item, allowed, earlier, publisher)
        finally:
            env.resources.close()
        # The registry knows each check's tags; its outcome carries them into the report.
        tags = {item.id: item.tags for item in checks}
        return {cid: replace(outcome, tags=tags[cid]) for cid, outcome in outcomes.items()}

    def _attempt(
        self,
        item: Check,
        env: RunEnvironment,
        start: float,
        timeout: float,
        publisher: _Publisher,
    ) -> _Attempt:
        """The running attempt of ``item`` (joined), or a new one on a thread of its own.

        Called under the lock; the thread removes its entry when done, after the lock is
        released, so it can never remove an entry before it was stored.
        """
        attempt = self._running.get(item.id)
        if attempt is not None:
            return attempt
        ctx = CheckContext(env=env, check=item, deadline=start + (item.timeout or timeout))

        def work() -> CheckOutcome:
            try:
                return self._execute(item, ctx, publisher)
            finally:
                with self._lock:
                    if self._running.get(item.id) is attempt:
                        del self._running[item.id]

        attempt = _Attempt(in_daemon_thread(f"prodready:{item.id}", work), start)
        self._running[item.id] = attempt
        return attempt

    @staticmethod
    def _skipped(item: Check, mode: Mode) -> CheckOutcome | None:
        """The outcome of a check that cannot judge in this mode."""
        if mode not in item.modes:
            where = " or ".join(_MODE_NAMES[m] for m in sorted(item.modes))
            return CheckOutcome(
                item.id, Status.SKIPPED, reason=f"can only judge from {where}, not here"
            )
        return None

    @staticmethod
    def _timed_out(
        item: Check, timeout: float, earlier: float | None, publisher: _Publisher
    ) -> CheckOutcome:
        if earlier is None:
            message = f"check {item.id} did not finish within {timeout:g} s"
        else:
            message = (
                f"check {item.id} is still running from an earlier report (started "
                f"{earlier:.0f} s before this one) and was not started again"
            )
        finding = _engine_finding(
            CHECK_TIMEOUT, item, message, {"check": item.id, "timeout": timeout}
        )
        return CheckOutcome(
            item.id, Status.ERROR, (publisher.finding(finding),), reason="timed out"
        )

    @staticmethod
    def _overran(
        item: Check, allowed: float, outcome: CheckOutcome, publisher: _Publisher
    ) -> CheckOutcome:
        """A pure check that took longer than its time: it held up the whole report."""
        message = (
            f"check {item.id} took {outcome.duration:.1f} s, more than its {allowed:g} s; it "
            "is declared pure, so it ran in the thread that asked for the report and delayed "
            "it (declare blocking=True for a check that waits on anything)"
        )
        finding = publisher.finding(
            _engine_finding(CHECK_TIMEOUT, item, message, {"check": item.id, "timeout": allowed})
        )
        return replace(
            outcome, status=Status.ERROR, findings=(*outcome.findings, finding), reason="timed out"
        )

    @staticmethod
    def _execute(item: Check, ctx: CheckContext, publisher: _Publisher) -> CheckOutcome:
        """Run one check in an app context and make what it handed back public (silenced,
        redacted, JSON-safe); whatever happens becomes its outcome."""
        begun = time.monotonic()
        try:
            try:
                with ctx.app.app_context():
                    findings = _collect(item, item(ctx))
            except CheckSkipped as skipped:
                return CheckOutcome(
                    item.id,
                    Status.SKIPPED,
                    reason=publisher.reason(skipped.reason),
                    duration=time.monotonic() - begun,
                    asked=skipped.asked,
                )
            except BaseException as exc:
                # BaseException too: SystemExit or KeyboardInterrupt raised by a check would
                # otherwise end its thread unreported, and the check would read as timed out.
                return _crashed(item, exc, publisher, begun, what="raised")
            try:
                published = tuple(publisher.finding(f) for f in findings)
            except Exception as exc:
                return _crashed(item, exc, publisher, begun, what=UNSHOWABLE)
            status = Status.FAIL if published else Status.PASS
            return CheckOutcome(item.id, status, published, duration=time.monotonic() - begun)
        except BaseException as exc:  # a skip reason that cannot be shown, say
            return _crashed(item, exc, publisher, begun, what="raised")


def _crashed(
    item: Check, exc: BaseException, publisher: _Publisher, begun: float, *, what: str
) -> CheckOutcome:
    """The outcome of a check that raised, or whose findings could not be made public: a
    ``prodready.check_crashed`` finding naming the exception type, and the redacted
    traceback in the log, after a first line that says what happened."""
    name = type(exc).__name__
    try:
        described = str(exc)
    except Exception:  # an exception whose str() raises is still a crash to report
        described = ""
    redactor = publisher.redactor
    # Masked before it is cut: a secret across the cut would leave a piece behind.
    text = redactor.text(described)[:MAX_EXCEPTION_MESSAGE]
    happened = f"{what} {name}" + (f": {text}" if text else "")
    finding = _engine_finding(
        CHECK_CRASHED, item, f"check {item.id} {happened}", {"check": item.id, "exception": name}
    )
    logger.error(
        "flask-prodready check %s crashed (%s)\n%s",
        item.id,
        happened,
        redactor.text("".join(traceback.format_exception(exc)).rstrip()),
    )
    return CheckOutcome(
        item.id,
        Status.ERROR,
        (publisher.finding(finding),),
        reason=f"raised {name}" if what == "raised" else f"its finding cannot be shown ({name})",
        duration=time.monotonic() - begun,
    )
