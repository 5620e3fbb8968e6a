"""``database.*``: the databases the app reaches through Flask-SQLAlchemy.

Every engine counts: the default one and each bind (``db.engines``). The checks that
talk to a server (``unreachable``, ``pool_budget``, ``superuser``, ``migrations``) never
borrow a connection from the app's pool: each opens a short-lived connection of its own,
with the driver's timeouts set from the time the check has left, in a helper thread.
The check waits for that thread until its deadline, so it answers on time even when the
host accepts TCP and never says a word; the attempt then ends by itself when the
driver's timeout expires. A second report that needs the same engine while an attempt is
still running waits for that attempt instead of starting another, so a dead host holds
at most one helper thread per engine and per kind of question, and never a pool slot.

SQLAlchemy, Flask-SQLAlchemy and Alembic are imported inside the functions, only when the
app uses them: ``import flask_prodready`` never imports them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context import CheckContext
from ..findings import Finding, Level
from ..redaction import Redactor
from ..registry import check

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: A connect timeout longer than this does not protect requests: gunicorn's default
#: worker timeout is 30 s, so the worker is killed before the driver gives up.
MAX_CONNECT_TIMEOUT = 30.0
#: libpq (psycopg, psycopg2) rounds any connect timeout below 2 s up to 2 s.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
#: PyMySQL connects with a 10 s timeout unless told otherwise.
PYMYSQL_DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds kept back from the check's deadline to turn a probe's outcome into findings.
ANSWER_MARGIN = 0.15
#: Longest part of a driver's error message quoted in a finding.
MAX_ERROR_TEXT = 240
#: Roles of managed PostgreSQL services (Amazon RDS, Azure, Cloud SQL) that are
#: superusers in all but the flag: their members administer the whole server.
MANAGED_ADMIN_ROLES = ("azure_pg_admin", "cloudsqlsuperuser", "rds_superuser")

PSYCOPG_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})
POSTGRESQL = "postgresql"
SQLITE = "sqlite"

NOT_SET_UP = "Flask-SQLAlchemy is not set up on this app"
_INSTALL_SQLALCHEMY = "SQLAlchemy is not installed (pip install 'flask-prodready[sqlalchemy]')"
_INSTALL_ALEMBIC = "Alembic is not installed (pip install 'flask-prodready[migrations]')"

# One query for what pool_budget and superuser need: the role, its limits, the server's.
_POSTGRESQL_FACTS = f"""
SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolconnlimit,
       d.datname::text, d.datconnlimit,
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       ARRAY(SELECT a.rolname::text FROM pg_roles a
             WHERE a.rolname IN ({", ".join(f"'{name}'" for name in MANAGED_ADMIN_ROLES)})
               AND pg_has_role(current_user, a.oid, 'MEMBER') ORDER BY 1)
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""
_MYSQL_FACTS = "SELECT CURRENT_USER(), DATABASE(), @@GLOBAL.max_connections, @@max_user_connections"


class _NotApplicable(Exception):
    """The question does not arise for this database (SQLite has no server to reach)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _CannotJudge(Exception):
    """The check cannot answer for this database (not reachable, unknown driver ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


# --- the databases of the app -----------------------------------------------------------


@dataclass(frozen=True)
class _Database:
    """One engine of the app, with the engine options it was configured with."""

    key: str | None
    engine: Engine
    options: Mapping[str, Any]

    @property
    def name(self) -> str:
        return "the default database" if self.key is None else f"the bind {self.key!r}"

    @property
    def backend(self) -> str:
        return str(self.engine.dialect.name)

    @property
    def driver(self) -> str:
        return str(self.engine.dialect.driver)

    @property
    def host(self) -> str:
        """``host:port`` (or the socket folder), never the user or the password."""
        url = self.engine.url
        host = url.host or str(url.query.get("host") or "") or "localhost"
        return f"{host}:{url.port}" if url.port else host

    @property
    def location(self) -> str:
        url = self.engine.url
        if self.backend == SQLITE:
            database = url.database or ""
            return f"sqlite:///{database}" if database not in ("", ":memory:") else "sqlite://"
        return f"{self.backend}://{self.host}/{url.database or ''}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.location})"

    @property
    def custom_creator(self) -> bool:
        """Whether the engine connects through a function of the app's own (``creator``)."""
        if "creator" in self.options:
            return True
        creator = getattr(self.engine.pool, "_creator", None)
        return getattr(creator, "__qualname__", "") != "create_engine.<locals>.connect"

    def connect_params(self) -> tuple[list[Any], dict[str, Any]]:
        """The driver's connect arguments: from the URL, then the configured connect_args."""
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        params = dict(cparams)
        params.update(self.options.get("connect_args") or {})
        return list(cargs), params

    def redactor(self) -> Redactor:
        """Masks this engine's password wherever a driver's message repeats it."""
        secrets = {self.engine.url.password}
        with contextlib.suppress(Exception):
            params = self.connect_params()[1]
            secrets |= {params.get("password"), params.get("passwd")}
        return Redactor(str(s) for s in secrets if s)


def _engine_options(db: Any, config: Mapping[str, Any], key: str | None) -> dict[str, Any]:
    """The options Flask-SQLAlchemy built the engine ``key`` from (as its ``init_app`` does)."""
    options: dict[str, Any] = dict(getattr(db, "_engine_options", None) or {})
    binds = config.get("SQLALCHEMY_BINDS") or {}
    value = binds.get(key) if isinstance(binds, Mapping) else None
    if isinstance(value, Mapping):
        options.update(value)
    if key is None:
        options.update(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    return options


def _databases(ctx: CheckContext) -> list[_Database]:
    """Every engine of the app, the default first; skips when Flask-SQLAlchemy is absent."""
    db = ctx.app.extensions.get("sqlalchemy")
    if db is None:
        ctx.skip(NOT_SET_UP)
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        ctx.skip(_INSTALL_SQLALCHEMY)
    engines: Mapping[str | None, Engine] = db.engines
    if not engines:
        ctx.skip("Flask-SQLAlchemy has no engine on this app")
    keys = sorted(engines, key=lambda k: (k is not None, str(k)))
    return [_Database(k, engines[k], _engine_options(db, ctx.config, k)) for k in keys]


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _judge_all(
    databases: Iterable[_Database], judge: Callable[[_Database], Iterable[Finding]]
) -> tuple[list[Finding], str | None]:
    """Findings of ``judge`` for every database, and why the check must be skipped if
    those are none (``None``: the result stands).

    A database where the question does not arise (``_NotApplicable``) does not count;
    one that could not be judged (``_CannotJudge``) turns a clean result into a skip, and
    so does having judged none at all.
    """
    found: list[Finding] = []
    cannot: list[str] = []
    not_applicable: list[str] = []
    judged = 0
    for database in databases:
        try:
            found.extend(judge(database))
            judged += 1
        except _NotApplicable as exc:
            not_applicable.append(exc.reason)
        except _CannotJudge as exc:
            cannot.append(exc.reason)
    if cannot:
        return found, "; ".join(cannot)
    if not judged:
        return found, "; ".join(not_applicable)
    return found, None


def _per_database(
    ctx: CheckContext,
    databases: Iterable[_Database],
    judge: Callable[[_Database], Iterable[Finding]],
) -> list[Finding]:
    """:func:`_judge_all`, skipping the check when nothing was found and it must."""
    found, reason = _judge_all(databases, judge)
    if not found and reason is not None:
        ctx.skip(reason)
    return found


# --- short-lived connections in bounded helper threads --------------------------------


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
        with _probes_lock:
            if _probes.get(key) is probe:
                del _probes[key]
        probe.done.set()


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


def _query(database: _Database, seconds: float, sql: str) -> list[tuple[Any, ...]]:
    """Run one query on a new connection and close it; the rows it returned."""
    connection = _connect(database, seconds)
    try:
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
    finally:
        with contextlib.suppress(Exception):
            connection.close()


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


# --- server facts: the role and the connection limits ------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What the server says about the app's role and its connection limits."""

    role: str
    superuser: bool
    create_role: bool
    create_db: bool
    admin_roles: tuple[str, ...]
    database: str
    max_connections: int
    reserved: tuple[tuple[str, int], ...]
    role_limit: int | None
    database_limit: int | None

    @property
    def server_allows(self) -> int:
        return self.max_connections - sum(n for _, n in self.reserved)

    @property
    def server_detail(self) -> str:
        parts = [f"max_connections {self.max_connections}"]
        parts += [f"{name} {n}" for name, n in self.reserved if n]
        return " - ".join(parts)


def _server_facts(database: _Database, seconds: float) -> _Facts:
    """Ask a PostgreSQL or MySQL server about the app's role and its connection limits."""
    if database.backend == POSTGRESQL:
        row = _query(database, seconds, _POSTGRESQL_FACTS)[0]
        superuser = bool(row[1])
        # The role's and the database's CONNECTION LIMIT do not apply to superusers.
        return _Facts(
            role=str(row[0]),
            superuser=superuser,
            create_role=bool(row[2]),
            create_db=bool(row[3]),
            admin_roles=tuple(str(name) for name in row[10] or ()),
            database=str(row[5]),
            max_connections=int(row[7]),
            reserved=(
                ("superuser_reserved_connections", int(row[8])),
                ("reserved_connections", int(row[9])),
            ),
            role_limit=None if superuser or int(row[4]) < 0 else int(row[4]),
            database_limit=None if superuser or int(row[6]) < 0 else int(row[6]),
        )
    row = _query(database, seconds, _MYSQL_FACTS)[0]
    user_limit = int(row[3] or 0)  # the session value is the account's own limit, if set
    return _Facts(
        role=str(row[0]),
        superuser=False,
        create_role=False,
        create_db=False,
        admin_roles=(),
        database=str(row[1] or ""),
        max_connections=int(row[2]),
        reserved=(),
        role_limit=user_limit or None,
        database_limit=None,
    )


def _facts_probes(ctx: CheckContext, databases: Iterable[_Database]) -> dict[int, _Probe]:
    """Ask each PostgreSQL and MySQL server for its facts, all at once."""
    seconds = _budget(ctx)[1]
    return {
        id(database): _start_probe(
            "facts", database, functools.partial(_server_facts, database, seconds)
        )
        for database in databases
        if database.backend == POSTGRESQL or database.backend in MYSQL_BACKENDS
    }


def _facts(ctx: CheckContext, database: _Database, probe: _Probe, begun: float) -> _Facts:
    """The probe's facts, or ``_CannotJudge`` naming why the server could not be asked."""
    try:
        facts: _Facts = _wait(probe, ctx.deadline - ANSWER_MARGIN, begun)
    except _NoAnswer as exc:
        raise _CannotJudge(
            f"{database.label} did not answer within {exc.waited:.1f} s "
            "(database.unreachable reports it)"
        ) from None
    except _ProbeFailed as exc:
        raise _CannotJudge(
            f"{database.label} could not be asked ({_error_text(exc.error, database)}; "
            "database.unreachable reports it)"
        ) from None
    return facts


# --- the checks --------------------------------------------------------------------------


@check(
    "database.unreachable",
    level=Level.CRITICAL,
    title="Each database answers SELECT 1 in time",
    hint="Check that the database server runs and that the URL's host, port, database, "
    "user and password are right: from the app's host, connect with the database's own "
    "client (psql, mysql) using the same settings.",
)
def check_unreachable(ctx: CheckContext) -> Iterator[Finding]:
    """``SELECT 1`` on a new connection to each engine, answered within the check timeout.

    A new connection rather than one from the app's pool: the point is to know whether
    the database can be reached now, and an attempt that hangs must not hold a slot the
    app's requests need. Usable from ``/healthz`` (``PRODREADY_HEALTHZ_CHECKS``).
    """
    databases = _databases(ctx)
    begun = time.monotonic()
    until, seconds = _budget(ctx)
    probes = [
        (
            database,
            _start_probe(
                "ping", database, functools.partial(_query, database, seconds, "SELECT 1")
            ),
        )
        for database in databases
    ]
    for database, probe in probes:
        try:
            _wait(probe, until, begun)
        except _NoAnswer as exc:
            if exc.earlier:
                message = (
                    f"{_capitalised(database.label)} has not answered SELECT 1 for "
                    f"{exc.waited:.1f} s (an attempt started by an earlier report is "
                    "still waiting)."
                )
            else:
                message = (
                    f"{_capitalised(database.label)} did not answer SELECT 1 within "
                    f"{ctx.settings.check_timeout:g} s."
                )
            yield ctx.finding(message, observed={"database": database.location, "error": "timeout"})
        except _ProbeFailed as exc:
            yield ctx.finding(
                f"{_capitalised(database.label)} cannot be reached: "
                f"{_error_text(exc.error, database)}",
                observed={"database": database.location, "error": type(exc.error).__name__},
            )


@check(
    "database.sqlite",
    level=Level.WARNING,
    title="The database is not SQLite",
    hint="Use a database server (PostgreSQL, MySQL) in production: SQLite lets one "
    "process write at a time and keeps the data on this host's disk only.",
)
def check_sqlite(ctx: CheckContext) -> Iterator[Finding]:
    """Warn for each SQLite engine: one writer at a time, data on one host's disk.

    Under several workers, writes queue on a file lock ("database is locked"); a second
    host or a redeploy to a fresh container does not see the same file.
    """
    for database in _databases(ctx):
        if database.backend == SQLITE:
            kind = "an in-memory SQLite database" if database.location == "sqlite://" else "SQLite"
            yield ctx.finding(
                f"{_capitalised(database.label)} is {kind}.",
                observed={"database": database.location},
            )


@check(
    "database.pool_budget",
    level=Level.ERROR,
    title="Workers x pool size fit the connections the database server allows",
    hint="Lower pool_size/max_overflow in SQLALCHEMY_ENGINE_OPTIONS or the worker count, "
    "raise the server's limit, or put PgBouncer in front of the database.",
)
def check_pool_budget(ctx: CheckContext) -> Iterator[Finding]:
    """Compare every worker's pools, added up, with the connections the server accepts.

    Each worker process has its own pool per engine, so the server sees workers x
    (pool_size + max_overflow) connections once the pools fill. Past the server's limit,
    new connections fail with "too many clients" at the worst moment: under load.
    """
    servers = [d for d in _databases(ctx) if d.backend != SQLITE]
    if not servers:
        ctx.skip("SQLite has no connection limit to compare the pools with")
    workers, concurrency, source = _workers(ctx)
    begun = time.monotonic()
    probes = _facts_probes(ctx, servers)
    members: list[_Member] = []
    cannot: list[str] = []
    for database in servers:
        try:
            shape = _pool_shape(database)
            if shape.capacity is None and concurrency is None:
                raise _CannotJudge(
                    f"{database.name} has no pool limit ({shape.text}), and how many "
                    f"requests each worker serves at once is unknown ({source} gives the "
                    "number of workers only)"
                )
            probe = probes.get(id(database))
            if probe is None:
                raise _CannotJudge(
                    f"flask-prodready reads connection limits from PostgreSQL and MySQL, "
                    f"not {database.backend} ({database.name})"
                )
            members.append(_Member(database, shape, _facts(ctx, database, probe, begun)))
        except _CannotJudge as exc:
            cannot.append(exc.reason)
    found = list(_budget_findings(ctx, members, workers, concurrency, source))
    if found:
        yield from found
    elif cannot:
        ctx.skip("; ".join(cannot))


@check(
    "database.pre_ping",
    level=Level.WARNING,
    title="pool_pre_ping is on",
    hint='Set SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}: the pool then tests '
    "each connection before handing it out and replaces the dead ones.",
)
def check_pre_ping(ctx: CheckContext) -> Iterator[Finding]:
    """Warn when a pool hands out connections without testing them first.

    After the database restarts, fails over, or a proxy or firewall drops idle
    connections, every pooled connection is dead; without pre-ping, the first request
    on each one fails with "server closed the connection unexpectedly".
    """

    def judge(database: _Database) -> Iterator[Finding]:
        if database.backend == SQLITE:
            raise _NotApplicable("SQLite is a local file: there is no server to drop connections")
        pool = database.engine.pool
        if type(pool).__name__ == "NullPool":
            raise _NotApplicable(
                f"{database.name} uses NullPool: it keeps no connection that could go stale"
            )
        if not getattr(pool, "_pre_ping", False):
            yield ctx.finding(
                f"pool_pre_ping is off for {database.label}.",
                observed={"database": database.location, "pool_pre_ping": False},
            )

    yield from _per_database(ctx, _databases(ctx), judge)


@check(
    "database.connect_timeout",
    level=Level.WARNING,
    title="The driver has a connect timeout",
    hint="Add connect_timeout=5 to the URL's query (postgresql://...?connect_timeout=5) or "
    'to SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"connect_timeout": 5}}.',
)
def check_connect_timeout(ctx: CheckContext) -> Iterator[Finding]:
    """Warn when the driver would wait for a silent database host without a time limit.

    A host that is down but still routed (a dead VM, a firewall that drops packets)
    makes each connection attempt wait for the operating system to give up, minutes
    later; every request that needs a new connection hangs that long and the workers run
    out. A timeout longer than ``MAX_CONNECT_TIMEOUT`` is reported too.
    """

    def judge(database: _Database) -> Iterator[Finding]:
        if database.backend == SQLITE:
            raise _NotApplicable("SQLite is a local file: there is no connection to time out")
        if database.custom_creator:
            raise _CannotJudge(
                f"{database.name} connects through a custom creator function, whose "
                "timeout flask-prodready cannot read"
            )
        name, value, where = _configured_connect_timeout(database)
        seconds = _number(value)
        if seconds is None or seconds <= 0:
            yield ctx.finding(
                f"{_capitalised(database.label)} has no connect timeout ({name} is "
                f"{'not set' if value is None else repr(value)}): "
                "if its host stops answering, each new connection waits until the operating "
                "system gives up.",
                observed={"database": database.location, name: value},
            )
        elif seconds > MAX_CONNECT_TIMEOUT:
            yield ctx.finding(
                f"{_capitalised(database.label)} waits up to {seconds:g} s to connect "
                f"({name}{where}), longer than {MAX_CONNECT_TIMEOUT:g} s: the worker is "
                "killed before the driver gives up.",
                observed={"database": database.location, name: seconds},
            )

    yield from _per_database(ctx, _databases(ctx), judge)


@check(
    "database.superuser",
    level=Level.ERROR,
    tags=["security"],
    title="The app's database role is not a superuser",
    hint="Connect as a role that owns the app's tables and nothing more: CREATE ROLE app "
    "LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE; keep the admin role for "
    "people and migrations run by hand.",
)
def check_superuser(ctx: CheckContext) -> Iterator[Finding]:
    """Report a PostgreSQL role that can do more than the app needs.

    A superuser (or a member of a managed service's admin role) turns any SQL injection
    into control of the whole server: every database, server files, programs run as the
    database's OS user. ``CREATEROLE`` and ``CREATEDB`` are reported at warning level:
    less than a superuser, more than an app needs.
    """
    databases = _databases(ctx)
    begun = time.monotonic()
    probes = _facts_probes(ctx, [d for d in databases if d.backend == POSTGRESQL])

    def judge(database: _Database) -> Iterator[Finding]:
        probe = probes.get(id(database))
        if probe is None:
            raise _NotApplicable(
                f"only PostgreSQL roles are checked; {database.name} is {database.backend}"
            )
        facts = _facts(ctx, database, probe, begun)
        observed = {"database": database.location, "role": facts.role}
        label = _capitalised(database.label)
        if facts.superuser:
            yield ctx.finding(
                f"{label} is used as the role {facts.role!r}, which is a superuser.",
                observed={**observed, "rolsuper": True},
            )
            return
        if facts.admin_roles:
            yield ctx.finding(
                f"{label} is used as the role {facts.role!r}, a member of "
                f"{', '.join(facts.admin_roles)} (the administrator of a managed service).",
                observed={**observed, "member_of": list(facts.admin_roles)},
            )
        for flag, allowed, what in (
            ("rolcreaterole", facts.create_role, "create and alter roles (CREATEROLE)"),
            ("rolcreatedb", facts.create_db, "create databases (CREATEDB)"),
        ):
            if allowed:
                yield ctx.finding(
                    f"{label} is used as the role {facts.role!r}, which can {what}.",
                    level=Level.WARNING,
                    observed={**observed, flag: True},
                )

    yield from _per_database(ctx, databases, judge)


@check(
    "database.migrations",
    level=Level.ERROR,
    title="The database is at the migrations head",
    hint="Run `flask db upgrade` as part of the deploy, before the new code serves "
    "requests; merge diverging heads with `flask db merge heads`.",
)
def check_migrations(ctx: CheckContext) -> Iterator[Finding]:
    """Compare each database's Alembic revision with the heads of the migrations folder.

    Code that expects a column the database does not have fails on the first request
    that touches it; a database ahead of the code (a rollback) fails the same way. Two
    heads in the folder make ``flask db upgrade`` stop before doing anything.
    """
    migrate = ctx.app.extensions.get("migrate")
    if migrate is None:
        ctx.skip("Flask-Migrate is not set up on this app: no migrations to compare")
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
    except ImportError:
        ctx.skip(_INSTALL_ALEMBIC)
    folder = _migrations_folder(ctx, str(getattr(migrate, "directory", None) or "migrations"))
    ini = folder / "alembic.ini"
    config = Config(str(ini) if ini.is_file() else None)
    config.set_main_option("script_location", str(folder).replace("%", "%%"))
    try:
        script = ScriptDirectory.from_config(config)
        heads = tuple(sorted(script.get_heads()))
    except Exception as exc:  # alembic's errors, or a revision file that does not import
        ctx.skip(f"the migrations folder {folder} cannot be read: {type(exc).__name__}: {exc}")
    if not heads:
        ctx.skip(f"the migrations folder {folder} has no revision yet")
    found: list[Finding] = []
    if len(heads) > 1:
        found.append(
            ctx.finding(
                f"The migrations folder has {len(heads)} heads ({', '.join(heads)}): "
                "`flask db upgrade` stops with 'Multiple head revisions are present'.",
                observed={"heads": list(heads)},
            )
        )

    databases = _databases(ctx)
    begun = time.monotonic()
    until, seconds = _budget(ctx)
    arguments = getattr(migrate, "configure_args", None) or {}
    opts = {k: arguments[k] for k in ("version_table", "version_table_schema") if k in arguments}
    probes = {
        id(database): _start_probe(
            "migrations",
            database,
            functools.partial(_current_revisions, database, seconds, opts),
        )
        for database in databases
    }

    def judge(database: _Database) -> Iterator[Finding]:
        try:
            current: tuple[str, ...] = _wait(probes[id(database)], until, begun)
        except _NoAnswer as exc:
            raise _CannotJudge(
                f"{database.label} did not answer within {exc.waited:.1f} s "
                "(database.unreachable reports it)"
            ) from None
        except _ProbeFailed as exc:
            raise _CannotJudge(
                f"{database.label} could not be asked for its revision "
                f"({_error_text(exc.error, database)})"
            ) from None
        label = _capitalised(database.label)
        observed = {"database": database.location, "current": list(current), "heads": list(heads)}
        if not current:
            if database.key is not None:  # binds are migrated only in multi-database setups
                raise _NotApplicable(f"{database.name} has no Alembic version table")
            yield ctx.finding(
                f"{label} has no migration applied (its Alembic version table is missing or "
                f"empty); the head is {', '.join(heads)}.",
                observed=observed,
            )
            return
        if set(current) == set(heads):
            return
        unknown = [r for r in current if not _has_revision(script, r)]
        if unknown:
            yield ctx.finding(
                f"{label} is at revision {', '.join(unknown)}, which the migrations folder "
                "does not have: the database is ahead of this code, or from another branch.",
                observed=observed,
            )
        else:
            yield ctx.finding(
                f"{label} is at revision {', '.join(sorted(current))}, not at the head "
                f"{', '.join(heads)}.",
                observed=observed,
            )

    judged, reason = _judge_all(databases, judge)
    found += judged
    if not found and reason is not None:
        ctx.skip(reason)
    yield from found


# --- pool_budget's arithmetic ------------------------------------------------------------


@dataclass(frozen=True)
class _PoolShape:
    """How many connections one worker's pool of one engine can hold.

    ``capacity`` is ``None`` for a pool without an upper bound (NullPool opens one per
    checkout; QueuePool with ``max_overflow=-1``).
    """

    capacity: int | None
    text: str


@dataclass(frozen=True)
class _Member:
    database: _Database
    shape: _PoolShape
    facts: _Facts


def _pool_shape(database: _Database) -> _PoolShape:
    pool: Any = database.engine.pool
    kind = type(pool).__name__
    if hasattr(pool, "_max_overflow") and callable(getattr(pool, "size", None)):  # QueuePool
        size, overflow = int(pool.size()), int(pool._max_overflow)
        if overflow < 0:
            return _PoolShape(None, f"pool_size {size}, max_overflow {overflow}: no upper bound")
        return _PoolShape(size + overflow, f"pool_size {size} + max_overflow {overflow}")
    if kind == "NullPool":
        return _PoolShape(None, "NullPool: one connection per checkout")
    if kind in ("StaticPool", "AssertionPool"):
        return _PoolShape(1, f"{kind}: 1 connection")
    raise _CannotJudge(f"{database.name} uses {kind}, whose size flask-prodready cannot tell")


def _workers(ctx: CheckContext) -> tuple[int, int | None, str]:
    """(worker processes, requests each serves at once if known, where that was read)."""
    settings = ctx.gunicorn
    if settings is not None:
        return settings.workers, settings.concurrency, settings.source
    raw = os.environ.get("WEB_CONCURRENCY")
    if raw is not None:
        try:
            workers = int(raw.strip())
        except ValueError:
            workers = 0
        if workers < 1:
            ctx.skip(f"WEB_CONCURRENCY={raw!r} is not a number of worker processes")
        return workers, None, f"WEB_CONCURRENCY={workers}"
    ctx.skip(
        "the number of worker processes is unknown: run under gunicorn, pass "
        "--gunicorn-config FILE, or set WEB_CONCURRENCY"
    )


def _budget_findings(
    ctx: CheckContext,
    members: list[_Member],
    workers: int,
    concurrency: int | None,
    source: str,
) -> Iterator[Finding]:
    """One finding per limit (the server's, a role's, a database's) the pools can exceed.

    ``peak`` is what requests alone can hold: per worker and engine, the pool's capacity,
    or fewer when the worker serves fewer requests at once (a pool is shared by the
    worker's threads, so threads do not multiply it). ``ceiling`` is what full pools hold.
    Over the limit, ``peak`` is an error; only ``ceiling`` a warning, since then only
    connections opened outside requests (threads, jobs) can get there.
    """
    groups: dict[tuple[str, ...], tuple[str, int, str, list[_Member]]] = {}
    for member in members:
        facts, where = member.facts, member.database.host
        limits: list[tuple[tuple[str, ...], str, int, str]] = [
            (
                ("server", where),
                f"to the server at {where}",
                facts.server_allows,
                facts.server_detail,
            )
        ]
        if facts.role_limit is not None:
            limits.append(
                (
                    ("role", where, facts.role),
                    f"as the role {facts.role!r} on {where}",
                    facts.role_limit,
                    "the role's CONNECTION LIMIT",
                )
            )
        if facts.database_limit is not None:
            limits.append(
                (
                    ("database", where, facts.database),
                    f"to the database {facts.database!r} on {where}",
                    facts.database_limit,
                    "the database's CONNECTION LIMIT",
                )
            )
        for key, target, allowed, detail in limits:
            groups.setdefault(key, (target, allowed, detail, []))[3].append(member)

    for target, allowed, detail, group in groups.values():
        capacities = [m.shape.capacity for m in group]
        ceiling = None if None in capacities else workers * sum(c or 0 for c in capacities)
        if concurrency is None:  # then every capacity is bounded (checked by the caller)
            peak = workers * sum(c or 0 for c in capacities)
        else:
            peak = workers * sum(
                concurrency if c is None else min(c, concurrency) for c in capacities
            )
        observed = {
            "workers": workers,
            "workers_from": source,
            "concurrency": concurrency,
            "allowed": allowed,
            "pools_full": ceiling,
            "requests_peak": peak,
        }
        if len(group) == 1:
            pools = group[0].shape.text
        else:
            pools = "; ".join(f"{m.database.name}: {m.shape.text}" for m in group)
        if peak > allowed:
            capped = f"{concurrency} requests at a time; " if ceiling != peak else ""
            yield ctx.finding(
                f"{workers} workers ({source}) x {peak // workers} connections "
                f"({capped}{pools}) = {peak} connections {target}, more than the "
                f"{allowed} allowed ({detail}).",
                observed=observed,
            )
        elif ceiling is not None and ceiling > allowed:
            yield ctx.finding(
                f"{workers} workers ({source}) x {ceiling // workers} connections ({pools}) "
                f"= {ceiling} connections {target} once the pools fill, more than the "
                f"{allowed} allowed ({detail}). Requests alone hold at most {peak} "
                f"({concurrency} at a time per worker): only connections opened outside "
                "requests (threads, background jobs) can fill the pools.",
                level=Level.WARNING,
                observed=observed,
            )


# --- migrations helpers ------------------------------------------------------------------


def _migrations_folder(ctx: CheckContext, directory: str) -> Path:
    """The Flask-Migrate folder: as given if absolute, else from the working directory
    (where ``flask db`` looks), the app's folder or the project folder above it."""
    path = Path(directory)
    root = Path(ctx.app.root_path)
    candidates = (
        [path] if path.is_absolute() else [Path.cwd() / path, root / path, root.parent / path]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    ctx.skip(
        f"the migrations folder {directory!r} was not found (looked in "
        f"{', '.join(str(c.parent) for c in candidates)})"
    )


def _has_revision(script: Any, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises when it does not know the revision
        return False


def _current_revisions(
    database: _Database, seconds: float, opts: Mapping[str, Any]
) -> tuple[str, ...]:
    """The revisions in the database's Alembic version table, on a short-lived connection."""
    import sqlalchemy
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.pool import NullPool

    probe = sqlalchemy.create_engine(
        database.engine.url,
        creator=lambda: _connect(database, seconds),
        poolclass=NullPool,
    )
    try:
        with probe.connect() as connection:
            bound = _statement_timeout(database, seconds)
            if bound is not None:
                connection.exec_driver_sql(bound)
            context = MigrationContext.configure(connection, opts=dict(opts))
            return tuple(context.get_current_heads())
    finally:
        probe.dispose()


def _configured_connect_timeout(database: _Database) -> tuple[str, Any, str]:
    """(the driver's option name, its value or ``None``, where it came from)."""
    params = database.connect_params()[1]
    driver = database.driver
    if driver in PSYCOPG_DRIVERS:
        value = params.get("connect_timeout")
        if value is None and os.environ.get("PGCONNECT_TIMEOUT"):
            return "connect_timeout", os.environ["PGCONNECT_TIMEOUT"], " from PGCONNECT_TIMEOUT"
        return "connect_timeout", value, ""
    if driver == "pymysql":
        if "connect_timeout" not in params:
            return "connect_timeout", PYMYSQL_DEFAULT_CONNECT_TIMEOUT, " (PyMySQL's default)"
        return "connect_timeout", params["connect_timeout"], ""
    if driver == "mysqldb":
        return "connect_timeout", params.get("connect_timeout"), ""
    if driver == "pg8000":
        return "timeout", params.get("timeout"), ""
    raise _CannotJudge(
        f"flask-prodready does not know how the {driver} driver sets a connect timeout "
        f"({database.name})"
    )
