"""The ``database.*`` checks and their thresholds.

Every engine counts: Flask-SQLAlchemy's default one and each bind. The checks that talk to
a server (``unreachable``, ``pool_budget``, ``superuser``, ``migrations``) are blocking
checks and never borrow a connection from the app's pool: they ask their questions on a
short-lived connection of their own, one per engine for the whole report (:mod:`.probe`),
and wait for the answer until their deadline, so they answer on time even when the host
accepts TCP and never says a word. What they share lives beside this module: ``engines``
(the app's engines, judging each), ``probe`` (the bounded questions), ``facts`` (what the
server says about the role and its limits), ``pool`` (pool_budget's arithmetic) and
``migrations`` (Alembic's folder and the databases' revisions).

SQLAlchemy, Flask-SQLAlchemy and Alembic are imported inside the functions, only when the
app uses them: ``import flask_prodready`` never imports them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from ...engine.context import CheckContext
from ...engine.findings import Finding, Level
from ...engine.registry import check
from .engines import (
    POSTGRESQL,
    PSYCOPG_DRIVERS,
    SQLITE,
    CannotJudge,
    Database,
    NotApplicable,
    databases_of,
    per_database,
)
from .facts import ask_facts, ask_ping, facts_of
from .migrations import migration_findings
from .pool import Member, budget_findings, pool_shape, worker_counts
from .probe import NoAnswer, ProbeFailed, budget, error_text, number, wait

#: A connect timeout longer than this does not protect requests: gunicorn's default
#: worker timeout is 30 s, so the worker is killed before the driver gives up.
MAX_CONNECT_TIMEOUT = 30.0
#: PyMySQL connects with a 10 s timeout unless told otherwise.
PYMYSQL_DEFAULT_CONNECT_TIMEOUT = 10.0


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


@check(
    "database.unreachable",
    level=Level.CRITICAL,
    title="Each database answers SELECT 1 in time",
    hint="Check that the database server runs and that the URL's host, port, database, "
    "user and password are right: from the app's host, connect with the database's own "
    "client (psql, mysql) using the same settings.",
    blocking=True,
)
def check_unreachable(ctx: CheckContext) -> Iterator[Finding]:
    """``SELECT 1`` on a new connection to each engine, answered within the check timeout.

    A new connection rather than one from the app's pool: the point is to know whether
    the database can be reached now, and an attempt that hangs must not hold a slot the
    app's requests need. Usable from ``/healthz`` (``PRODREADY_HEALTHZ_CHECKS``).
    """
    databases = databases_of(ctx)
    begun = time.monotonic()
    until = budget(ctx)[0]
    answers = [(database, ask_ping(ctx, database)) for database in databases]
    for database, answer in answers:
        try:
            wait(answer, until, begun)
        except NoAnswer as exc:
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
        except ProbeFailed as exc:
            yield ctx.finding(
                f"{_capitalised(database.label)} cannot be reached: "
                f"{error_text(exc.error, database)}",
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
    for database in databases_of(ctx):
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
    blocking=True,
)
def check_pool_budget(ctx: CheckContext) -> Iterator[Finding]:
    """Compare every worker's pools, added up, with the connections the server accepts.

    Each worker process has its own pool per engine, so the server sees workers x
    (pool_size + max_overflow) connections once the pools fill. Past the server's limit,
    new connections fail with "too many clients" at the worst moment: under load.
    """
    servers = [d for d in databases_of(ctx) if d.backend != SQLITE]
    if not servers:
        ctx.skip("SQLite has no connection limit to compare the pools with")
    workers, concurrency, source = worker_counts(ctx)
    begun = time.monotonic()
    answers = ask_facts(ctx, servers)
    members: list[Member] = []
    cannot: list[str] = []
    for database in servers:
        try:
            shape = pool_shape(database)
            if shape.capacity is None and concurrency is None:
                raise CannotJudge(
                    f"{database.name} has no pool limit ({shape.text}), and how many "
                    f"requests each worker serves at once is unknown ({source} gives the "
                    "number of workers only)"
                )
            answer = answers.get(id(database))
            if answer is None:
                raise CannotJudge(
                    f"flask-prodready reads connection limits from PostgreSQL and MySQL, "
                    f"not {database.backend} ({database.name})"
                )
            members.append(Member(database, shape, facts_of(ctx, database, answer, begun)))
        except CannotJudge as exc:
            cannot.append(exc.reason)
    found = list(budget_findings(ctx, members, workers, concurrency, source))
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

    def judge(database: Database) -> Iterator[Finding]:
        if database.backend == SQLITE:
            raise NotApplicable("SQLite is a local file: there is no server to drop connections")
        pool = database.engine.pool
        if type(pool).__name__ == "NullPool":
            raise NotApplicable(
                f"{database.name} uses NullPool: it keeps no connection that could go stale"
            )
        if not getattr(pool, "_pre_ping", False):
            yield ctx.finding(
                f"pool_pre_ping is off for {database.label}.",
                observed={"database": database.location, "pool_pre_ping": False},
            )

    yield from per_database(ctx, databases_of(ctx), judge)


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

    def judge(database: Database) -> Iterator[Finding]:
        if database.backend == SQLITE:
            raise NotApplicable("SQLite is a local file: there is no connection to time out")
        if database.custom_creator:
            raise CannotJudge(
                f"{database.name} connects through a custom creator function, whose "
                "timeout flask-prodready cannot read"
            )
        name, value, where = _configured_connect_timeout(database)
        seconds = number(value)
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

    yield from per_database(ctx, databases_of(ctx), judge)


@check(
    "database.superuser",
    level=Level.ERROR,
    tags=["security"],
    title="The app's database role is not a superuser",
    hint="Connect as a role that owns the app's tables and nothing more: CREATE ROLE app "
    "LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE; keep the admin role for "
    "people and migrations run by hand.",
    blocking=True,
)
def check_superuser(ctx: CheckContext) -> Iterator[Finding]:
    """Report a PostgreSQL role that can do more than the app needs.

    A superuser (or a member of a managed service's admin role) turns any SQL injection
    into control of the whole server: every database, server files, programs run as the
    database's OS user. ``CREATEROLE`` and ``CREATEDB`` are reported at warning level:
    less than a superuser, more than an app needs.
    """
    databases = databases_of(ctx)
    begun = time.monotonic()
    answers = ask_facts(ctx, [d for d in databases if d.backend == POSTGRESQL])

    def judge(database: Database) -> Iterator[Finding]:
        answer = answers.get(id(database))
        if answer is None:
            raise NotApplicable(
                f"only PostgreSQL roles are checked; {database.name} is {database.backend}"
            )
        facts = facts_of(ctx, database, answer, begun)
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

    yield from per_database(ctx, databases, judge)


@check(
    "database.migrations",
    level=Level.ERROR,
    title="The database is at the migrations head",
    hint="Run `flask db upgrade` as part of the deploy, before the new code serves "
    "requests; merge diverging heads with `flask db merge heads`.",
    blocking=True,
)
def check_migrations(ctx: CheckContext) -> Iterator[Finding]:
    """Compare each migrated database's Alembic revision with the heads of the migrations
    folder (Flask-Migrate's, or Flask-Alembic's script directory).

    Code that expects a column the database does not have fails on the first request
    that touches it; a database ahead of the code (a rollback) fails the same way. Two
    heads in the folder make ``flask db upgrade`` stop before doing anything. With a
    migration tool set up, tables without a version table, or no migrations folder at
    all, mean the schema was not made by migrations (see :mod:`.migrations`).
    """
    yield from migration_findings(ctx)


# --- what database.connect_timeout reads ----------------------------------------------


def _configured_connect_timeout(database: Database) -> tuple[str, Any, str]:
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
    raise CannotJudge(
        f"flask-prodready does not know how the {driver} driver sets a connect timeout "
        f"({database.name})"
    )
