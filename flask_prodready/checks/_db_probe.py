"""Short-lived connections for the ``database.*`` checks, bounded by the check's deadline.

A check that asks a server something must answer on time even when the host accepts TCP
and never says a word, and must never hold a slot of the app's pool. So each question is
asked on a new connection of its own (:func:`_connect`, with the driver's timeouts
lowered to the time left), in a helper thread the check waits for until its deadline
(:func:`_start_probe`, :func:`_wait`). Checks that ask the same engine the same question
while an attempt still runs join it instead of starting another: a dead host holds at
most one helper thread per engine and per kind of question. Questions that checks of one
run all need are asked in turn on one connection (:func:`_start_probes`): a connection
costs a PostgreSQL server a process and the client an authentication exchange.

A driver's error may repeat the password: :func:`_error_text` masks it before a finding
quotes it.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..context import CheckContext
from ._db_engines import POSTGRESQL, PSYCOPG_DRIVERS, _CannotJudge, _Database

#: libpq (psycopg, psycopg2) rounds any connect timeout below 2 s up to 2 s.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
#: Seconds kept back from the check's deadline to turn a probe's outcome into findings.
ANSWER_MARGIN = 0.15
#: Longest part of a driver's error message quoted in a finding.
MAX_ERROR_TEXT = 240


class _ProbeFailed(Exception):
    """A probe ended with an exception (kept in ``error``; several checks may read it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _NoAnswer(Exception):
    """A probe did not finish before the check's deadline."""

    def __init__(self, waited: float, earlier: bool) -> None:
        super().__init__(f"no answer after {waited:.1f} s")
        self.waited = waited
        self.earlier = earlier


@dataclass
class _Probe:
    """One question to one database, asked in a helper thread of its own."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: Exception | None = None


_probes_lock = threading.Lock()
_probes: dict[tuple[int, str, int], _Probe] = {}


def _run_probe(key: tuple[int, str, int], probe: _Probe, work: Callable[[], Any]) -> None:
    try:
        probe.result = work()
    except Exception as exc:
        probe.error = exc
    finally:
        _finish(key, probe)


def _finish(key: tuple[int, str, int], probe: _Probe) -> None:
    with _probes_lock:
        if _probes.get(key) is probe:
            del _probes[key]
    probe.done.set()


def _run_session(
    pid: int,
    database: _Database,
    seconds: float,
    asked: list[tuple[str, Callable[[Any], Any], _Probe]],
) -> None:
    """Connect once, then answer each question in turn on that connection; each answer is
    released as soon as it is known."""
    engine = id(database.engine)
    try:
        connection = _connect(database, seconds)
    except Exception as exc:  # every question fails as a connection of its own would
        for purpose, _, probe in asked:
            probe.error = exc
            _finish((pid, purpose, engine), probe)
        return
    try:
        for purpose, question, probe in asked:
            try:
                probe.result = question(connection)
            except Exception as exc:
                probe.error = exc
            _finish((pid, purpose, engine), probe)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
        for purpose, _, probe in asked:  # released even when a question raised BaseException
            if not probe.done.is_set():
                _finish((pid, purpose, engine), probe)


def _start_probes(
    database: _Database, seconds: float, questions: Mapping[str, Callable[[Any], Any]]
) -> dict[str, _Probe]:
    """Ask ``questions`` (purpose: function of a DBAPI connection) of ``database`` in turn on
    one new connection, in one helper thread; a question already being asked (by a check
    of this run or a hung attempt of an earlier one) is joined rather than asked again."""
    pid = os.getpid()
    probes: dict[str, _Probe] = {}
    asked: list[tuple[str, Callable[[Any], Any], _Probe]] = []
    with _probes_lock:
        for purpose, question in questions.items():
            key = (pid, purpose, id(database.engine))
            probe = _probes.get(key)
            if probe is None:
                probe = _probes[key] = _Probe(started=time.monotonic())
                asked.append((purpose, question, probe))
            probes[purpose] = probe
    if asked:
        threading.Thread(
            target=_run_session,
            args=(pid, database, seconds, asked),
            name=f"prodready:database.{'+'.join(p for p, _, _ in asked)}",
            daemon=True,
        ).start()
    return probes


def _start_probe(purpose: str, database: _Database, work: Callable[[], Any]) -> _Probe:
    """Run ``work`` in a helper thread, or join the attempt already running for it.

    The key holds the process id: after a fork, an entry copied from the parent has no
    thread behind it and must not be waited for.
    """
    key = (os.getpid(), purpose, id(database.engine))
    with _probes_lock:
        running = _probes.get(key)
        if running is not None:
            return running
        probe = _Probe(started=time.monotonic())
        _probes[key] = probe
    thread = threading.Thread(
        target=_run_probe,
        args=(key, probe, work),
        name=f"prodready:database.{purpose}",
        daemon=True,
    )
    thread.start()
    return probe


def _wait(probe: _Probe, until: float, begun: float) -> Any:
    """The probe's result; ``_ProbeFailed`` when it raised, ``_NoAnswer`` when it has not
    finished by ``until`` (``begun``: when the waiting check started)."""
    if not probe.done.wait(max(0.0, until - time.monotonic())):
        raise _NoAnswer(time.monotonic() - probe.started, earlier=probe.started < begun)
    if probe.error is not None:
        raise _ProbeFailed(probe.error)
    return probe.result


def _wait_to_judge(
    probe: _Probe,
    database: _Database,
    until: float,
    begun: float,
    *,
    failed: Callable[[str], str],
) -> Any:
    """:func:`_wait` for a check that cannot judge ``database`` without the answer.

    Not getting one raises ``_CannotJudge``: no answer in time, or the probe's error,
    whose masked text ``failed`` words as the reason after the database's label.
    """
    try:
        return _wait(probe, until, begun)
    except _NoAnswer as exc:
        raise _CannotJudge(
            f"{database.label} did not answer within {exc.waited:.1f} s "
            "(database.unreachable reports it)"
        ) from None
    except _ProbeFailed as exc:
        raise _CannotJudge(f"{database.label} {failed(_error_text(exc.error, database))}") from None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _at_most(configured: Any, limit: float) -> float:
    """The configured timeout when it is already shorter than ``limit``, else ``limit``."""
    value = _number(configured)
    return value if value is not None and 0 < value <= limit else limit


def _bounded_params(driver: str, params: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    """``params`` with the driver's connect and read timeouts no longer than ``seconds``."""
    bounded = dict(params)
    if driver in PSYCOPG_DRIVERS:
        limit = max(LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(seconds))
        bounded["connect_timeout"] = math.ceil(_at_most(params.get("connect_timeout"), limit))
    elif driver == "pymysql":
        for name in ("connect_timeout", "read_timeout", "write_timeout"):
            bounded[name] = _at_most(params.get(name), seconds)
    elif driver == "mysqldb":
        whole = max(1, math.ceil(seconds))
        for name in ("connect_timeout", "read_timeout", "write_timeout"):
            bounded[name] = math.ceil(_at_most(params.get(name), whole))
    elif driver in ("pg8000", "pysqlite"):
        bounded["timeout"] = _at_most(params.get("timeout"), seconds)
    return bounded


def _call_creator(creator: Callable[..., Any]) -> Any:
    """Call the app's own ``creator`` the way SQLAlchemy's pool does (with or without a record)."""
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):
        return creator()
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return creator(None) if positional else creator()


def _connect(database: _Database, seconds: float) -> Any:
    """A new DBAPI connection to ``database``, outside the app's pool, with bounded timeouts.

    It is made the way the engine makes its own (URL, configured connect_args, then the
    engine's ``do_connect`` listeners, which may add a token), with the driver's timeouts
    lowered to ``seconds``. An engine with a custom ``creator`` is connected through it:
    its timeouts are the app's, and only the helper thread's wait bounds the check.
    """
    engine = database.engine
    if database.custom_creator:
        creator = database.options.get("creator") or engine.pool._creator
        return _call_creator(creator)
    cargs, params = database.connect_params()
    params = _bounded_params(database.driver, params, seconds)
    dialect: Any = engine.dialect
    for listener in dialect.dispatch.do_connect:
        connection = listener(dialect, None, cargs, params)
        if connection is not None:
            return connection
    return dialect.connect(*cargs, **params)


def _statement_timeout(database: _Database, seconds: float) -> str | None:
    """SQL that bounds the statements of the current transaction on the server, if any.

    ``SET LOCAL`` rather than a startup option: poolers such as PgBouncer refuse the
    ``options`` startup parameter, and a transaction-local setting cannot leak into a
    server connection the pooler hands to someone else.
    """
    if database.backend == POSTGRESQL:
        return f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"
    return None


def _ask(connection: Any, database: _Database, seconds: float, sql: str) -> list[tuple[Any, ...]]:
    """Run one query in a transaction of its own on ``connection``; the rows it returned.

    The transaction is rolled back afterwards, so the statement timeout set for it (and
    any error) does not reach the next question asked on the same connection.
    """
    cursor = connection.cursor()
    try:
        bound = _statement_timeout(database, seconds)
        if bound is not None:
            cursor.execute(bound)
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
        with contextlib.suppress(Exception):
            connection.rollback()


def _error_text(exc: BaseException, database: _Database) -> str:
    """``Type: first line`` of a driver's error, with the engine's password masked."""
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    if isinstance(original, BaseException):
        exc = original
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = database.redactor().text(lines[0]) if lines else ""
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _budget(ctx: CheckContext) -> tuple[float, float]:
    """(the moment probes must have answered by, the seconds left until then)."""
    until = ctx.deadline - ANSWER_MARGIN
    return until, max(0.05, until - time.monotonic())
