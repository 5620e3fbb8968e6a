"""The runner every front end shares: checks in parallel threads, each under a timeout.

Why threads and no signals: signals only work in the main thread, and a web worker
serves requests elsewhere. A thread cannot be killed, so a check that hangs keeps its
thread. The runner therefore never runs the same check twice at once: a run that needs a
check already running (for another report, or stuck since an earlier one) waits for that
attempt until its own deadline instead of starting another thread. A check that keeps
hanging holds at most one thread, however many reports are asked for. Threads are kept
between reports (:mod:`.workers`).

A check that raises is reported as ``prodready.check_crashed`` with its id and the
exception type; the traceback goes to the ``flask_prodready`` logger, redacted.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .context import CheckContext, CheckSkipped, RunEnvironment
from .findings import CheckOutcome, Finding, Level, Status
from .redaction import Redactor
from .registry import CLI, ENGINE, LIVE, PLANNED, REMOTE, Check, make_check
from .workers import CHECK_THREADS

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
#: Most findings one check run may give; more is a bug in the check (reported as a crash).
MAX_FINDINGS = 1000
#: A check that took less than this the last time it ran counts as quick: quick checks
#: run at most QUICK_AT_ONCE at a time, so that the slow ones (a database connection,
#: which needs the GIL at every step) do not queue behind forty runnable threads.
QUICK_SECONDS = 0.005
QUICK_AT_ONCE = 2
#: Longest a quick check waits for a free slot before it starts anyway (a hung quick
#: check never holds up the others for longer), and longest all of a run's quick checks
#: may wait in all before the rest start at once.
QUICK_GRACE = 0.05
QUICK_BUDGET = 0.2

_MODE_NAMES = {LIVE: "the running server", CLI: "the command line", REMOTE: "a remote client"}


@dataclass
class _Attempt:
    """One check running in a thread of its own."""

    check: Check
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    outcome: CheckOutcome | None = None
    task: Callable[[], None] | None = None


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


def _releasing(task: Callable[[], None], slot: threading.BoundedSemaphore) -> None:
    """Run a quick check's task, then free the slot it started in (see ``Runner._start``)."""
    try:
        task()
    finally:
        slot.release()


class Runner:
    """Runs checks for one app and remembers the ones still hanging from earlier runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Attempt] = {}
        #: Seconds each check took the last time it finished: the slow ones start first.
        self._last_duration: dict[str, float] = {}

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
        """Run ``checks`` and return one redacted, silencing-applied outcome per check id."""
        start = time.monotonic()
        if env.run_ids is None:
            env = replace(env, run_ids=frozenset(item.id for item in checks))
        outcomes: dict[str, CheckOutcome] = {}
        waiting: list[tuple[Check, _Attempt]] = []
        fresh: list[_Attempt] = []
        with self._lock:
            for item in checks:
                skipped = self._skipped(item, env)
                if skipped is not None:
                    outcomes[item.id] = skipped
                    continue
                attempt = self._running.get(item.id)
                deadline = start + (item.timeout or timeout)
                if attempt is None:  # nobody runs it yet: start it
                    attempt = _Attempt(check=item, started=start)
                    attempt.task = functools.partial(
                        self._execute,
                        attempt,
                        CheckContext(env=env, check=item, deadline=deadline),
                        redactor,
                    )
                    self._running[item.id] = attempt
                    fresh.append(attempt)
                waiting.append((item, attempt))
            # The slowest checks of the last run start first: a check that waits on a
            # server (a database connection) should be waiting while the quick ones run,
            # not start after them.
            fresh.sort(key=lambda a: self._last_duration.get(a.check.id, 0.0), reverse=True)
        self._start(fresh)

        for item, attempt in waiting:
            allowed = item.timeout or timeout
            finished = attempt.done.wait(max(0.0, start + allowed - time.monotonic()))
            if finished and attempt.outcome is not None:
                outcomes[item.id] = attempt.outcome
            else:
                earlier = start - attempt.started if attempt.started < start - 0.001 else None
                outcomes[item.id] = self._timed_out(item, allowed, earlier)

        return {cid: self._finish(outcome, silenced, redactor) for cid, outcome in outcomes.items()}

    def _start(self, fresh: Sequence[_Attempt]) -> None:
        """Hand each attempt to a check thread: the slow and the never-timed ones at once,
        the quick ones a few at a time (each waiting at most QUICK_GRACE for its turn)."""
        slots = threading.BoundedSemaphore(QUICK_AT_ONCE)
        until = time.monotonic() + QUICK_BUDGET
        for attempt in fresh:
            assert attempt.task is not None
            task = attempt.task
            last = self._last_duration.get(attempt.check.id)
            if last is not None and last < QUICK_SECONDS:
                left = until - time.monotonic()
                if left > 0 and slots.acquire(timeout=min(QUICK_GRACE, left)):
                    task = functools.partial(_releasing, task, slots)
            CHECK_THREADS.submit(f"prodready:{attempt.check.id}", task)

    @staticmethod
    def _skipped(item: Check, env: RunEnvironment) -> CheckOutcome | None:
        """The outcome of a check that cannot run here (planned, or not for this mode)."""
        if item.kind == PLANNED or item.func is None:
            return CheckOutcome(
                item.id, Status.SKIPPED, reason="not built yet in this version of flask-prodready"
            )
        if env.mode not in item.modes:
            where = " or ".join(_MODE_NAMES[m] for m in sorted(item.modes))
            return CheckOutcome(
                item.id, Status.SKIPPED, reason=f"can only judge from {where}, not here"
            )
        return None

    @staticmethod
    def _timed_out(item: Check, timeout: float, earlier: float | None) -> CheckOutcome:
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
        return CheckOutcome(item.id, Status.ERROR, (finding,), reason="timed out")

    def _execute(self, attempt: _Attempt, ctx: CheckContext, redactor: Redactor) -> None:
        item = attempt.check
        begun = time.monotonic()
        try:
            with ctx.app.app_context():
                findings = _collect(item, item(ctx))
            status = Status.FAIL if findings else Status.PASS
            attempt.outcome = CheckOutcome(
                item.id, status, findings, duration=time.monotonic() - begun
            )
        except CheckSkipped as skipped:
            attempt.outcome = CheckOutcome(
                item.id,
                Status.SKIPPED,
                reason=skipped.reason,
                duration=time.monotonic() - begun,
            )
        except BaseException as exc:
            # BaseException too: SystemExit or KeyboardInterrupt raised by a check would
            # otherwise end this thread unreported, and the check would read as timed out.
            name = type(exc).__name__
            try:
                described = str(exc)
            except Exception:  # an exception whose str() raises is still a crash to report
                described = ""
            # Masked before it is cut: a secret across the cut would leave a piece behind.
            text = redactor.text(described)[:MAX_EXCEPTION_MESSAGE]
            message = f"check {item.id} raised {name}" + (f": {text}" if text else "")
            finding = _engine_finding(
                CHECK_CRASHED, item, message, {"check": item.id, "exception": name}
            )
            attempt.outcome = CheckOutcome(
                item.id,
                Status.ERROR,
                (finding,),
                reason=f"raised {name}",
                duration=time.monotonic() - begun,
            )
            logger.error(
                "flask-prodready check %s crashed:\n%s",
                item.id,
                redactor.text("".join(traceback.format_exception(exc))),
            )
        finally:
            duration = time.monotonic() - begun
            with self._lock:
                self._last_duration[item.id] = duration
                if self._running.get(item.id) is attempt:
                    del self._running[item.id]
            attempt.done.set()

    @staticmethod
    def _finish(
        outcome: CheckOutcome, silenced: Mapping[str, str], redactor: Redactor
    ) -> CheckOutcome:
        if not outcome.findings and outcome.reason is None:
            return outcome  # a pass: nothing to silence or mask
        findings = []
        for finding in outcome.findings:
            reason = silenced.get(finding.id)
            if reason is not None:
                finding = replace(finding, silenced=True, silence_reason=reason)
            findings.append(redactor.finding(finding))
        reason = None if outcome.reason is None else redactor.text(outcome.reason)
        return replace(outcome, findings=tuple(findings), reason=reason)
