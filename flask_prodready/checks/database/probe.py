"""Questions to a database, asked on short-lived connections and bounded by the check's deadline.

A check that asks a server something must answer on time even when the host accepts TCP
and never says a word, and must never hold a slot of the app's pool. So each question
is asked on a new connection of ProdReady's own (:func:`connect`, with the driver's
timeouts lowered to the time left), on a daemon thread whose future the check waits for
until its deadline (:func:`wait`).

Within one report, the questions of every check go over one connection per engine:
:class:`Connections` is a piece of the report's context (``ctx.shared(Connections)``),
so ``database.unreachable``'s ``SELECT 1`` and the facts ``pool_budget`` and
``superuser`` read are asked in turn on it, each answered once. A connection costs a
PostgreSQL server a process and the client an authentication exchange.

A question still being asked from an earlier report (a dead host) is joined, not asked
again: a dead host holds at most one thread per engine and per question.

A driver's error may repeat the password: :func:`error_text` masks it before a finding
quotes it.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...engine.context import CheckContext
from ...engine.runner import in_daemon_thread
from .engines import POSTGRESQL, PSYCOPG_DRIVERS, CannotJudge, Database

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: libpq (psycopg, psycopg2) rounds any connect timeout below 2 s up to 2 s.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
#: Seconds kept back from the check's deadline to turn an answer into findings.
ANSWER_MARGIN = 0.15
#: Longest part of a driver's error message quoted in a finding.
MAX_ERROR_TEXT = 240


class ProbeFailed(Exception):
    """A question ended with an exception (kept in ``error``; several checks may read it)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class NoAnswer(Exception):
    """A question was not answered before the check's deadline."""

    def __init__(self, waited: float, earlier: bool) -> None:
        super().__init__(f"no answer after {waited:.1f} s")
        self.waited = waited
        self.earlier = earlier


@dataclass(frozen=True)
class Answer:
    """A question being asked of one database: its future, and when it was asked."""

    future: Future[Any]
    started: float


# Questions still being asked, of any report, per engine and purpose: a later report
# joins them instead of asking again. Weakly keyed: an engine the app disposed of goes.
_running_lock = threading.Lock()
_running: weakref.WeakKeyDictionary[Engine, dict[str, Answer]] = weakref.WeakKeyDictionary()

if hasattr(os, "register_at_fork"):  # a forked worker inherits no thread behind them
    os.register_at_fork(after_in_child=_running.clear)


def _join_or_ask(database: Database, purpose: str, start: Callable[[], Future[Any]]) -> Answer:
    """The answer to ``purpose`` still being asked of ``database``, or a new one from ``start``."""
    with _running_lock:
        asked = _running.setdefault(database.engine, {})
        answer = asked.get(purpose)
        if answer is None or answer.future.done():
            answer = asked[purpose] = Answer(start(), time.monotonic())
        return answer


class _Session:
    """One connection to one engine for one report, opened by its first question and
    closed when the report has ended and no question uses it."""

    def __init__(self, database: Database, seconds: float) -> None:
        self.database = database
        self.seconds = seconds
        self._use = threading.Lock()  # one question at a time on the connection
        self._connection: Any = None
        self._error: BaseException | None = None
        self._closed = False

    def answer(self, question: Callable[[Any], Any]) -> Any:
        try:
            with self._use:
                if self._error is not None:  # every question fails as the connection did
                    raise self._error
                if self._connection is None:
                    if self._closed:
                        raise ConnectionError("the report this connection was opened for ended")
                    try:
                        self._connection = connect(self.database, self.seconds)
                    except BaseException as exc:
                        self._error = exc
                        raise
                return question(self._connection)
        finally:
            if self._closed:  # the report ended while this question was asked
                self.close()

    def close(self) -> None:
        """Close the connection now if no question holds it, else when the last one is done."""
        self._closed = True
        if self._use.acquire(blocking=False):
            try:
                connection, self._connection = self._connection, None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
            finally:
                self._use.release()


class Connections:
    """The report's connections: one per engine, and each question answered once.

    Asked for through ``ctx.shared(Connections)``; the runner closes it when the report
    is done.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[Engine, _Session] = {}
        self._answers: dict[tuple[Engine, str], Answer] = {}

    def ask(
        self,
        database: Database,
        purpose: str,
        question: Callable[[Any], Any],
        seconds: float,
    ) -> Answer:
        """``question`` (a function of a DBAPI connection) asked of ``database`` on this
        report's connection to it; the same purpose asked twice gets the same answer."""
        key = (database.engine, purpose)
        with self._lock:
            answer = self._answers.get(key)
            if answer is None:
                session = self._sessions.get(database.engine)
                if session is None:
                    session = self._sessions[database.engine] = _Session(database, seconds)

                def start() -> Future[Any]:
                    return in_daemon_thread(
                        f"prodready:database.{purpose}", lambda: session.answer(question)
                    )

                answer = self._answers[key] = _join_or_ask(database, purpose, start)
            return answer

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.close()


def ask_alone(database: Database, purpose: str, work: Callable[[], Any]) -> Answer:
    """``work`` on a connection of its own (Alembic needs an engine of its own), joined like
    the shared questions when an earlier report still waits for it."""
    return _join_or_ask(
        database, purpose, lambda: in_daemon_thread(f"prodready:database.{purpose}", work)
    )


def wait(answer: Answer, until: float, begun: float) -> Any:
    """The answer's result; ``ProbeFailed`` when it raised, ``NoAnswer`` when it has not
    finished by ``until`` (``begun``: when the waiting check started)."""
    try:
        return answer.future.result(timeout=max(0.0, until - time.monotonic()))
    except FutureTimeout:
        raise NoAnswer(time.monotonic() - answer.started, earlier=answer.started < begun) from None
    except Exception as exc:
        raise ProbeFailed(exc) from None


def wait_to_judge(
    answer: Answer,
    database: Database,
    until: float,
    begun: float,
    *,
    failed: Callable[[str], str],
) -> Any:
    """:func:`wait` for a check that cannot judge ``database`` without the answer.

    Not getting one raises ``CannotJudge``: no answer in time, or the question's error,
    whose masked text ``failed`` words as the reason after the database's label.
    """
    try:
        return wait(answer, until, begun)
    except NoAnswer as exc:
        raise CannotJudge(
            f"{database.label} did not answer within {exc.waited:.1f} s "
            "(database.unreachable reports it)"
        ) from None
    except ProbeFailed as exc:
        raise CannotJudge(f"{database.label} {failed(error_text(exc.error, database))}") from None


def number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None``."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _at_most(configured: Any, limit: float) -> float:
    """The configured timeout when it is already shorter than ``limit``, else ``limit``."""
    value = number(configured)
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


def connect(database: Database, seconds: float) -> Any:
    """A new DBAPI connection to ``database``, outside the app's pool, with bounded timeouts.

    It is made the way the engine makes its own (URL, configured connect_args, then the
    engine's ``do_connect`` listeners, which may add a token), with the driver's timeouts
    lowered to ``seconds``. An engine with a custom ``creator`` is connected through it:
    its timeouts are the app's, and only the wait for the answer bounds the check.
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


def statement_timeout(database: Database, seconds: float) -> str | None:
    """SQL that bounds the statements of the current transaction on the server, if any.

    ``SET LOCAL`` rather than a startup option: poolers such as PgBouncer refuse the
    ``options`` startup parameter, and a transaction-local setting cannot leak into a
    server connection the pooler hands to someone else.
    """
    if database.backend == POSTGRESQL:
        return f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"
    return None


def query(connection: Any, database: Database, seconds: float, sql: str) -> list[tuple[Any, ...]]:
    """Run one query in a transaction of its own on ``connection``; the rows it returned.

    The transaction is rolled back afterwards, so the statement timeout set for it (and
    any error) does not reach the next question asked on the same connection.
    """
    cursor = connection.cursor()
    try:
        bound = statement_timeout(database, seconds)
        if bound is not None:
            cursor.execute(bound)
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
        with contextlib.suppress(Exception):
            connection.rollback()


def error_text(exc: BaseException, database: Database) -> str:
    """``Type: first line`` of a driver's error, with the engine's password masked."""
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    if isinstance(original, BaseException):
        exc = original
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = database.redactor().text(lines[0]) if lines else ""
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def budget(ctx: CheckContext) -> tuple[float, float]:
    """(the moment answers must have come by, the seconds left until then)."""
    until = ctx.deadline - ANSWER_MARGIN
    return until, max(0.05, until - time.monotonic())
