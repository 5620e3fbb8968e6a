"""database.*: each check against a real PostgreSQL (see tests/postgres.py), fires and quiet.

The apps here are built in the test process; the checks open their own connections, so
every message below is what a real server, a real refused port or a real listener that
never answers produced.
"""

from __future__ import annotations

import importlib
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.pool import NullPool

from flask_prodready.engine.findings import CheckOutcome
from flask_prodready.engine.server import load_gunicorn_config
from flask_prodready.engine.state import get_state

from ..postgres import PostgresServer, Role, free_port, wait_until
from ..stacks import (
    PG_DBAPI,
    PG_DRIVER,
    default_engine,
    flask_sqlalchemy_engines,
    needs_flask_sqlalchemy_3,
)
from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
MakeDbApp = Callable[..., Flask]

DATABASE_IDS = (
    "database.unreachable",
    "database.sqlite",
    "database.pool_budget",
    "database.pre_ping",
    "database.connect_timeout",
    "database.superuser",
    "database.migrations",
)
#: Seconds the driver-level bound may outlive the check (libpq's 2 s minimum plus slack).
DRIVER_BOUND = 4.0


@pytest.fixture
def make_db_app(make_app: MakeApp) -> Iterator[MakeDbApp]:
    """Build an app with Flask-SQLAlchemy on ``uri`` (and Flask-Migrate on ``migrations``).

    The app's own engines are disposed at the end; the checks never use them anyway.
    """
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(
        uri: str | None,
        *,
        engine_options: dict[str, Any] | None = None,
        binds: dict[str, Any] | None = None,
        migrations: Path | None = None,
        migrate_options: dict[str, Any] | None = None,
        **config: Any,
    ) -> Flask:
        app = make_app(
            SQLALCHEMY_DATABASE_URI=uri,
            SQLALCHEMY_ENGINE_OPTIONS=engine_options or {},
            SQLALCHEMY_BINDS=binds or {},
            **config,
        )
        db = SQLAlchemy()
        db.init_app(app)
        if migrations is not None:
            Migrate(app, db, directory=str(migrations), **(migrate_options or {}))
        made.append((app, db))
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            for engine in flask_sqlalchemy_engines(db, app):
                engine.dispose()


@pytest.fixture
def web_concurrency(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set WEB_CONCURRENCY for the test (the worker count pool_budget assumes)."""
    return lambda workers: monkeypatch.setenv("WEB_CONCURRENCY", str(workers))


@pytest.fixture
def extra_role(postgres: PostgresServer) -> Iterator[Callable[[str], Role]]:
    """Create login roles with the given attributes; dropped (with what they own) after."""
    created: list[Role] = []

    def create(attributes: str) -> Role:
        role = Role(f"prodready_extra_{len(created)}", "extra-" + secrets.token_urlsafe(12))
        postgres.admin(f"CREATE ROLE {role.name} LOGIN {attributes} PASSWORD '{role.password}'")
        created.append(role)
        return role

    yield create
    for role in created:
        postgres.admin(f"DROP ROLE IF EXISTS {role.name}")


def location(postgres: PostgresServer, database: str, port: int | None = None) -> str:
    return f"postgresql://127.0.0.1:{postgres.port if port is None else port}/{database}"


def prodready_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("prodready:database.")]


class TestNotSetUp:
    @pytest.mark.parametrize("check_id", [i for i in DATABASE_IDS if i != "database.migrations"])
    def test_skipped_without_flask_sqlalchemy(self, make_app: MakeApp, check_id: str) -> None:
        """Without Flask-SQLAlchemy every database check is skipped, saying so."""
        outcome = outcome_of(make_app(), check_id)
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "Flask-SQLAlchemy is not set up on this app, and no engine was handed over with "
            "ProdReady.add_engine",
        )

    def test_migrations_skipped_without_a_migration_tool(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Without Flask-Migrate or Flask-Alembic there is nothing to compare: skipped, with
        the reason."""
        outcome = outcome_of(
            make_db_app(postgres.url(postgres.owner, pg_database)), "database.migrations"
        )
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "neither Flask-Migrate nor Flask-Alembic is set up on this app: no migrations to "
            "compare",
        )


class TestUnreachable:
    def test_quiet(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A running server that accepts the role's password: no finding."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        assert messages_of(app, "database.unreachable") == []

    def test_quiet_on_sqlite(self, make_db_app: MakeDbApp) -> None:
        """An in-memory SQLite database answers SELECT 1 too."""
        assert messages_of(make_db_app("sqlite://"), "database.unreachable") == []

    def test_fires_when_refused(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Nothing listening on the port: critical, with the driver's first line."""
        port = free_port()
        app = make_db_app(postgres.url(postgres.owner, pg_database, port=port))
        [(level, message)] = messages_of(app, "database.unreachable")
        assert level == "critical"
        # psycopg says "connection failed: connection to server ...", psycopg2 starts there.
        assert message.startswith(
            f"The default database ({location(postgres, pg_database, port)}) cannot be "
            "reached: OperationalError: "
        )
        assert f'connection to server at "127.0.0.1", port {port} failed' in message
        assert message.endswith("Connection refused")

    def test_fires_on_a_host_that_never_answers(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        blackhole: tuple[str, int],
    ) -> None:
        """A silent host: critical within the timeout, the app's pool untouched, no thread left."""
        port = blackhole[1]
        app = make_db_app(
            postgres.url(postgres.owner, pg_database, port=port), PRODREADY_CHECK_TIMEOUT=1.0
        )
        started = time.monotonic()
        assert messages_of(app, "database.unreachable") == [
            (
                "critical",
                f"The default database ({location(postgres, pg_database, port)}) did not "
                "answer SELECT 1 within 1 s.",
            )
        ]
        assert time.monotonic() - started < 1.0
        pool: Any = default_engine(app).pool
        assert (pool.checkedin(), pool.checkedout()) == (0, 0)
        assert wait_until(lambda: not prodready_threads(), DRIVER_BOUND)

    def test_no_thread_pile_up_on_a_silent_host(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        blackhole: tuple[str, int],
    ) -> None:
        """Reports asked while an attempt still hangs join it instead of starting more."""
        port = blackhole[1]
        app = make_db_app(
            postgres.url(postgres.owner, pg_database, port=port), PRODREADY_CHECK_TIMEOUT=0.5
        )
        seen: list[int] = []
        messages = []
        for _ in range(4):
            messages.append(messages_of(app, "database.unreachable")[0][1])
            seen.append(len(prodready_threads()))
        assert max(seen) == 1
        assert "did not answer SELECT 1 within 0.5 s." in messages[0]
        assert "(an attempt started by an earlier report is still waiting)." in messages[1]
        assert wait_until(lambda: not prodready_threads(), DRIVER_BOUND)

    def test_message_never_shows_the_password(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A real failed login repeating the password (user == password) is masked, URL or not."""
        leaky = "leaky-" + secrets.token_hex(8)
        in_url = make_db_app(
            f"{PG_DRIVER}://{leaky}:{leaky}@127.0.0.1:{postgres.port}/{pg_database}"
        )
        in_args = make_db_app(
            f"{PG_DRIVER}://127.0.0.1:{postgres.port}/{pg_database}",
            engine_options={"connect_args": {"user": leaky, "password": leaky}},
        )
        for app in (in_url, in_args):
            outcome = outcome_of(app, "database.unreachable")
            [finding] = outcome.findings
            assert leaky not in repr(finding)
            assert finding.message.endswith('password authentication failed for user "***"')

    def test_connects_through_do_connect_listeners(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A password added by a do_connect listener (token auth) reaches the check's connection."""
        app = make_db_app(
            f"{PG_DRIVER}://{postgres.owner.name}@127.0.0.1:{postgres.port}/{pg_database}"
        )
        engine = default_engine(app)

        def add_token(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["password"] = postgres.owner.password

        [(level, _message)] = messages_of(app, "database.unreachable")
        assert level == "critical"  # no password yet
        sqlalchemy.event.listen(engine, "do_connect", add_token)
        try:
            assert messages_of(app, "database.unreachable") == []
        finally:
            sqlalchemy.event.remove(engine, "do_connect", add_token)

    def test_fires_for_a_bind_only(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Every engine is probed: a broken bind is named, the healthy default is not."""
        port = free_port()
        app = make_db_app(
            postgres.url(postgres.owner, pg_database),
            binds={"audit": postgres.url(postgres.owner, pg_database, port=port)},
        )
        [(level, message)] = messages_of(app, "database.unreachable")
        assert level == "critical"
        assert message.startswith(
            f"The bind 'audit' ({location(postgres, pg_database, port)}) cannot be reached: "
        )

    def test_healthz_answers_503_when_the_database_is_down(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Named in PRODREADY_HEALTHZ_CHECKS, it turns /healthz into 503 and back."""
        healthz = {"PRODREADY_HEALTHZ_CHECKS": ["database.unreachable"]}
        up = make_db_app(postgres.url(postgres.owner, pg_database), **healthz)
        down = make_db_app(postgres.url(postgres.owner, pg_database, port=free_port()), **healthz)
        assert up.test_client().get("/healthz").status_code == 200
        answer = down.test_client().get("/healthz")
        assert (answer.status_code, answer.get_json()) == (503, {"status": "fail"})


class TestSqlite:
    def test_fires_on_a_file(self, make_db_app: MakeDbApp, tmp_path: Path) -> None:
        """A SQLite file is a warning naming the file."""
        path = tmp_path / "app.db"
        assert messages_of(make_db_app(f"sqlite:///{path}"), "database.sqlite") == [
            ("warning", f"The default database (sqlite:///{path}) is SQLite.")
        ]

    def test_fires_on_memory(self, make_db_app: MakeDbApp) -> None:
        """An in-memory SQLite database is named as such."""
        assert messages_of(make_db_app("sqlite://"), "database.sqlite") == [
            ("warning", "The default database (sqlite://) is an in-memory SQLite database.")
        ]

    def test_quiet(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """PostgreSQL: no finding."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        assert messages_of(app, "database.sqlite") == []


class TestPoolBudget:
    def test_fires_with_web_concurrency(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """4 workers x (40 + 20) against max_connections 100 - 3 reserved is an error."""
        web_concurrency(4)
        app = make_db_app(
            postgres.url(postgres.owner, pg_database),
            engine_options={"pool_size": 40, "max_overflow": 20},
        )
        assert messages_of(app, "database.pool_budget") == [
            (
                "error",
                "4 workers (WEB_CONCURRENCY=4) x 60 connections (pool_size 40 + max_overflow "
                f"20) = 240 connections to the server at 127.0.0.1:{postgres.port}, more "
                "than the 97 allowed (max_connections 100 - superuser_reserved_connections 3).",
            )
        ]

    def test_quiet(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """4 workers x (5 + 5) = 40 fit in 97: no finding."""
        web_concurrency(4)
        app = make_db_app(
            postgres.url(postgres.owner, pg_database),
            engine_options={"pool_size": 5, "max_overflow": 5},
        )
        assert messages_of(app, "database.pool_budget") == []

    def test_fires_on_the_roles_connection_limit(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
        extra_role: Callable[[str], Role],
    ) -> None:
        """A role with CONNECTION LIMIT 20 is its own, smaller budget."""
        web_concurrency(4)
        role = extra_role("CONNECTION LIMIT 20")
        app = make_db_app(postgres.url(role, pg_database))
        assert messages_of(app, "database.pool_budget") == [
            (
                "error",
                "4 workers (WEB_CONCURRENCY=4) x 15 connections (pool_size 5 + max_overflow "
                f"10) = 60 connections as the role '{role.name}' on 127.0.0.1:"
                f"{postgres.port}, more than the 20 allowed (the role's CONNECTION LIMIT).",
            )
        ]

    def test_threads_cap_what_requests_hold(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """Threads cap what requests hold: over the limit an error, only full pools a warning."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))  # 5 + 10 per worker
        check = get_state(app).registry.get("database.pool_budget")
        assert check is not None

        def run(workers: int) -> list[tuple[str, str]]:
            conf = tmp_path / f"gunicorn-{workers}.conf.py"
            conf.write_text(f"workers = {workers}\nthreads = 4\n")
            settings = load_gunicorn_config(str(conf))
            report = get_state(app).build_report(app, mode="cli", checks=[check], gunicorn=settings)
            outcome: CheckOutcome = report.outcomes["database.pool_budget"]
            return [(f.level.value, f.message) for f in outcome.findings]

        assert run(9) == [
            (
                "warning",
                "9 workers (gunicorn-9.conf.py) x 15 connections (pool_size 5 + max_overflow "
                f"10) = 135 connections to the server at 127.0.0.1:{postgres.port} once the "
                "pools fill, more than the 97 allowed (max_connections 100 - "
                "superuser_reserved_connections 3). Requests alone hold at most 36 (4 at a "
                "time per worker): only connections opened outside requests (threads, "
                "background jobs) can fill the pools.",
            )
        ]
        assert run(25) == [
            (
                "error",
                "25 workers (gunicorn-25.conf.py) x 4 connections (4 requests at a time; "
                f"pool_size 5 + max_overflow 10) = 100 connections to the server at "
                f"127.0.0.1:{postgres.port}, more than the 97 allowed (max_connections 100 - "
                "superuser_reserved_connections 3).",
            )
        ]
        assert run(4) == []

    def test_skipped_without_a_worker_count(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """No gunicorn and no WEB_CONCURRENCY: the worker count is unknown, so skipped."""
        outcome = outcome_of(
            make_db_app(postgres.url(postgres.owner, pg_database)), "database.pool_budget"
        )
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the number of worker processes is unknown: run under gunicorn, pass "
            "--gunicorn-config FILE, or set WEB_CONCURRENCY",
        )

    def test_nullpool_needs_the_concurrency(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """NullPool has no size: with only WEB_CONCURRENCY the check cannot judge."""
        web_concurrency(4)
        app = make_db_app(
            postgres.url(postgres.owner, pg_database), engine_options={"poolclass": NullPool}
        )
        outcome = outcome_of(app, "database.pool_budget")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the default database has no pool limit (NullPool: one connection per checkout), "
            "and how many requests each worker serves at once is unknown (WEB_CONCURRENCY=4 "
            "gives the number of workers only)",
        )

    def test_skipped_on_sqlite(
        self, make_db_app: MakeDbApp, web_concurrency: Callable[[int], None]
    ) -> None:
        """SQLite has no connection limit: skipped."""
        web_concurrency(4)
        outcome = outcome_of(make_db_app("sqlite://"), "database.pool_budget")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "SQLite has no connection limit to compare the pools with",
        )

    def test_skipped_when_the_server_cannot_be_asked(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """A server that cannot be reached cannot tell its limit: skipped, never passed."""
        web_concurrency(4)
        port = free_port()
        app = make_db_app(postgres.url(postgres.owner, pg_database, port=port))
        outcome = outcome_of(app, "database.pool_budget")
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith(
            f"the default database ({location(postgres, pg_database, port)}) could not be "
            "asked (OperationalError: "
        )
        assert outcome.reason.endswith("; database.unreachable reports it)")


class TestSharedConnection:
    """unreachable, pool_budget and superuser in one run ask on one connection."""

    IDS = ("database.unreachable", "database.pool_budget", "database.superuser")

    @staticmethod
    def _counted(app: Flask) -> list[int]:
        """Count the connections the checks open (through the engine's do_connect hook)."""
        engine = default_engine(app)
        opened: list[int] = []
        sqlalchemy.event.listen(engine, "do_connect", lambda *args: opened.append(1))
        return opened

    def test_one_connection_for_three_checks(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        web_concurrency(2)
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        opened = self._counted(app)
        state = get_state(app)
        checks = [state.registry.get(i) for i in self.IDS]
        report = state.build_report(app, mode="cli", checks=checks)  # type: ignore[arg-type]
        assert {i: report.outcomes[i].status.value for i in self.IDS} == dict.fromkeys(
            self.IDS, "pass"
        )
        assert len(opened) == 1
        for check_id in self.IDS:  # alone, each still asks what it needs
            assert outcome_of(app, check_id).status.value == "pass"
        assert len(opened) == 4

    def test_a_failing_question_leaves_the_others_answered(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The facts query fails on the server; SELECT 1 on the same connection still
        answered, so database.unreachable stays quiet and the others cannot judge."""
        from flask_prodready.checks.database import facts

        web_concurrency(2)
        monkeypatch.setattr(facts, "_POSTGRESQL_FACTS", "SELECT * FROM no_such_table")
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        opened = self._counted(app)
        state = get_state(app)
        checks = [state.registry.get(i) for i in self.IDS]
        report = state.build_report(app, mode="cli", checks=checks)  # type: ignore[arg-type]
        assert report.outcomes["database.unreachable"].status.value == "pass"
        for check_id in self.IDS[1:]:
            outcome = report.outcomes[check_id]
            assert outcome.status.value == "skipped"
            assert "UndefinedTable" in (outcome.reason or "")
        assert len(opened) == 1


class TestPrePing:
    def test_fires(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Flask-SQLAlchemy's default pool without pre-ping is a warning."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        assert messages_of(app, "database.pre_ping") == [
            (
                "warning",
                f"pool_pre_ping is off for the default database "
                f"({location(postgres, pg_database)}).",
            )
        ]

    @needs_flask_sqlalchemy_3
    def test_fires_for_a_bind(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A bind configured without pre-ping is reported even when the default has it."""
        url = postgres.url(postgres.owner, pg_database)
        app = make_db_app(url, engine_options={"pool_pre_ping": True}, binds={"audit": url})
        assert messages_of(app, "database.pre_ping") == [
            (
                "warning",
                f"pool_pre_ping is off for the bind 'audit' ({location(postgres, pg_database)}).",
            )
        ]

    def test_quiet(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """pool_pre_ping=True: no finding."""
        app = make_db_app(
            postgres.url(postgres.owner, pg_database), engine_options={"pool_pre_ping": True}
        )
        assert messages_of(app, "database.pre_ping") == []

    @pytest.mark.parametrize(
        ("uri_of", "options", "reason"),
        [
            (
                lambda pg, db: "sqlite://",
                {},
                "SQLite is a local file: there is no server to drop connections",
            ),
            (
                lambda pg, db: pg.url(pg.owner, db),
                {"poolclass": NullPool},
                "the default database uses NullPool: it keeps no connection that could go stale",
            ),
        ],
        ids=["sqlite", "nullpool"],
    )
    def test_skipped_where_nothing_goes_stale(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        uri_of: Callable[[PostgresServer, str], str],
        options: dict[str, Any],
        reason: str,
    ) -> None:
        """SQLite and NullPool keep no server connection between requests: skipped."""
        outcome = outcome_of(
            make_db_app(uri_of(postgres, pg_database), engine_options=options),
            "database.pre_ping",
        )
        assert (outcome.status.value, outcome.reason) == ("skipped", reason)


class TestConnectTimeout:
    def test_fires_when_unset(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """No connect_timeout for psycopg: a warning."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        assert messages_of(app, "database.connect_timeout") == [
            (
                "warning",
                f"The default database ({location(postgres, pg_database)}) has no connect "
                "timeout (connect_timeout is not set): if its host stops answering, each new "
                "connection waits until the operating system gives up.",
            )
        ]

    def test_fires_when_zero(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """connect_timeout=0 means "wait forever" to libpq: a warning."""
        app = make_db_app(postgres.url(postgres.owner, pg_database, connect_timeout=0))
        assert messages_of(app, "database.connect_timeout") == [
            (
                "warning",
                f"The default database ({location(postgres, pg_database)}) has no connect "
                "timeout (connect_timeout is '0'): if its host stops answering, each new "
                "connection waits until the operating system gives up.",
            )
        ]

    def test_fires_when_too_long(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A timeout beyond gunicorn's default worker timeout protects nothing: a warning."""
        app = make_db_app(
            postgres.url(postgres.owner, pg_database),
            engine_options={"connect_args": {"connect_timeout": 60}},
        )
        assert messages_of(app, "database.connect_timeout") == [
            (
                "warning",
                f"The default database ({location(postgres, pg_database)}) waits up to 60 s "
                "to connect (connect_timeout), longer than 30 s: the worker is killed before "
                "the driver gives up.",
            )
        ]

    @pytest.mark.parametrize("where", ["url", "connect_args", "environment"])
    def test_quiet(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        monkeypatch: pytest.MonkeyPatch,
        where: str,
    ) -> None:
        """A timeout in the URL, in connect_args or in PGCONNECT_TIMEOUT: no finding."""
        query: dict[str, Any] = {"connect_timeout": 5} if where == "url" else {}
        options = {"connect_args": {"connect_timeout": 5}} if where == "connect_args" else {}
        if where == "environment":
            monkeypatch.setenv("PGCONNECT_TIMEOUT", "5")
        app = make_db_app(
            postgres.url(postgres.owner, pg_database, **query), engine_options=options
        )
        assert messages_of(app, "database.connect_timeout") == []

    def test_skipped_on_sqlite(self, make_db_app: MakeDbApp) -> None:
        """SQLite opens a file: there is no connection to time out."""
        outcome = outcome_of(make_db_app("sqlite://"), "database.connect_timeout")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "SQLite is a local file: there is no connection to time out",
        )

    def test_skipped_with_a_custom_creator(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """A creator function hides its timeout: skipped, never passed."""
        dbapi = importlib.import_module(PG_DBAPI)
        url = postgres.url(postgres.owner, pg_database)
        conninfo = url.replace(f"{PG_DRIVER}://", "postgresql://")
        app = make_db_app(url, engine_options={"creator": lambda: dbapi.connect(conninfo)})
        outcome = outcome_of(app, "database.connect_timeout")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "the default database connects through a custom creator function, whose timeout "
            "flask-prodready cannot read",
        )
        # database.unreachable still connects through it.
        assert messages_of(app, "database.unreachable") == []


class TestSuperuser:
    def test_fires_on_a_superuser(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """Connected as a superuser: an error naming the role."""
        app = make_db_app(postgres.url(postgres.superuser, pg_database))
        assert messages_of(app, "database.superuser") == [
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) is used as the "
                f"role '{postgres.superuser.name}', which is a superuser.",
            )
        ]

    def test_createrole_and_createdb_are_warnings(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        extra_role: Callable[[str], Role],
    ) -> None:
        """CREATEROLE and CREATEDB are each reported at warning level."""
        role = extra_role("NOSUPERUSER CREATEROLE CREATEDB")
        app = make_db_app(postgres.url(role, pg_database))
        where = f"The default database ({location(postgres, pg_database)}) is used as the role"
        assert messages_of(app, "database.superuser") == [
            ("warning", f"{where} '{role.name}', which can create and alter roles (CREATEROLE)."),
            ("warning", f"{where} '{role.name}', which can create databases (CREATEDB)."),
        ]

    def test_fires_on_a_managed_admin_role(
        self,
        make_db_app: MakeDbApp,
        postgres: PostgresServer,
        pg_database: str,
        extra_role: Callable[[str], Role],
    ) -> None:
        """A member of rds_superuser (Amazon RDS's admin role) is reported as an error."""
        role = extra_role("NOSUPERUSER")
        postgres.admin("CREATE ROLE rds_superuser NOLOGIN")
        try:
            postgres.admin(f"GRANT rds_superuser TO {role.name}")
            app = make_db_app(postgres.url(role, pg_database))
            assert messages_of(app, "database.superuser") == [
                (
                    "error",
                    f"The default database ({location(postgres, pg_database)}) is used as "
                    f"the role '{role.name}', a member of rds_superuser (the administrator of "
                    "a managed service).",
                )
            ]
        finally:
            postgres.admin("DROP ROLE IF EXISTS rds_superuser")

    def test_quiet(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str
    ) -> None:
        """The least-privilege owner role: no finding."""
        app = make_db_app(postgres.url(postgres.owner, pg_database))
        assert messages_of(app, "database.superuser") == []

    def test_skipped_on_sqlite(self, make_db_app: MakeDbApp) -> None:
        """Only PostgreSQL roles are checked: SQLite is skipped with the reason."""
        outcome = outcome_of(make_db_app("sqlite://"), "database.superuser")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "only PostgreSQL roles are checked; the default database is sqlite",
        )


class TestMigrations:
    @pytest.fixture
    def folder(self, migrations_template: Path, tmp_path: Path) -> Path:
        """A private copy of the migrations folder made by flask db init/migrate."""
        target = tmp_path / "migrations"
        shutil.copytree(migrations_template, target, ignore=shutil.ignore_patterns("*.pyc"))
        return target

    @staticmethod
    def stamp(url: str, folder: Path, revision: str, **opts: Any) -> None:
        """Record ``revision`` in the database's version table, as `flask db stamp` does."""
        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                context = MigrationContext.configure(connection, opts=opts)
                context.stamp(ScriptDirectory(str(folder)), revision)
        finally:
            engine.dispose()

    def test_fires_when_nothing_is_applied(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """A database that never ran `flask db upgrade`: an error naming the head."""
        [head] = ScriptDirectory(str(folder)).get_heads()
        app = make_db_app(postgres.url(postgres.owner, pg_database), migrations=folder)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) has no migration "
                f"applied (its Alembic version table is missing or empty); the head is {head}.",
            )
        ]

    def test_fires_when_behind(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """At the first revision while the folder has a newer one: an error naming both."""
        url = postgres.url(postgres.owner, pg_database)
        script = ScriptDirectory(str(folder))
        [first] = script.get_heads()
        script.generate_revision("b0b0b0b0b0b0", "add a column", head=first)
        self.stamp(url, folder, first)
        app = make_db_app(url, migrations=folder)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) is at revision "
                f"{first}, not at the head b0b0b0b0b0b0.",
            )
        ]

    def test_fires_when_ahead_of_the_code(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """A revision the folder does not have (a rollback of the code): an error."""
        url = postgres.url(postgres.owner, pg_database)
        script = ScriptDirectory(str(folder))
        [first] = script.get_heads()
        newer = script.generate_revision("c0c0c0c0c0c0", "from the future", head=first)
        assert newer is not None
        self.stamp(url, folder, "c0c0c0c0c0c0")
        Path(newer.path).unlink()
        app = make_db_app(url, migrations=folder)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) is at revision "
                "c0c0c0c0c0c0, which the migrations folder does not have: the database is "
                "ahead of this code, or from another branch.",
            )
        ]

    def test_fires_on_multiple_heads(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """Two heads are reported on their own, besides the database's position."""
        url = postgres.url(postgres.owner, pg_database)
        script = ScriptDirectory(str(folder))
        [first] = script.get_heads()
        script.generate_revision("a0a0a0a0a0a0", "a branch", head="base", splice=True)
        heads = ", ".join(sorted([first, "a0a0a0a0a0a0"]))
        self.stamp(url, folder, first)
        app = make_db_app(url, migrations=folder)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The migrations folder has 2 heads ({heads}): `flask db upgrade` stops with "
                "'Multiple head revisions are present'.",
            ),
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) is at revision "
                f"{first}, not at the head {heads}.",
            ),
        ]

    def test_quiet_at_head(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """At head: no finding."""
        url = postgres.url(postgres.owner, pg_database)
        self.stamp(url, folder, "heads")
        app = make_db_app(url, migrations=folder)
        assert messages_of(app, "database.migrations") == []

    def test_quiet_with_a_custom_version_table(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """Migrate(version_table=...) is honoured."""
        url = postgres.url(postgres.owner, pg_database)
        self.stamp(url, folder, "heads", version_table="schema_revision")
        options = {"version_table": "schema_revision"}
        app = make_db_app(url, migrations=folder, migrate_options=options)
        assert messages_of(app, "database.migrations") == []

    def test_fires_without_the_folder(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, tmp_path: Path
    ) -> None:
        """Flask-Migrate pointing at a folder that does not exist, on an empty database:
        an error, since nothing can create the schema."""
        missing = tmp_path / "nowhere"
        app = make_db_app(postgres.url(postgres.owner, pg_database), migrations=missing)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({location(postgres, pg_database)}) has no table and "
                f"no Alembic version table, and the migrations folder {str(missing)!r} was "
                f"not found (looked in {tmp_path}): Flask-Migrate is set up, but nothing can "
                "create the schema.",
            )
        ]

    def test_skipped_without_revisions(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """`flask db init` without any migration yet: skipped."""
        for revision in (folder / "versions").glob("*.py"):
            revision.unlink()
        app = make_db_app(postgres.url(postgres.owner, pg_database), migrations=folder)
        outcome = outcome_of(app, "database.migrations")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"the migrations folder {folder} has no revision yet",
        )

    def test_skipped_when_the_database_cannot_be_asked(
        self, make_db_app: MakeDbApp, postgres: PostgresServer, pg_database: str, folder: Path
    ) -> None:
        """A database that refuses connections cannot tell its revision: skipped."""
        port = free_port()
        app = make_db_app(postgres.url(postgres.owner, pg_database, port=port), migrations=folder)
        outcome = outcome_of(app, "database.migrations")
        assert outcome.status.value == "skipped"
        assert outcome.reason is not None
        assert outcome.reason.startswith(
            f"the default database ({location(postgres, pg_database, port)}) could not be "
            "asked for its revision (OperationalError: "
        )
