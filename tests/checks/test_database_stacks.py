"""database.* on every supported stack, against a real PostgreSQL (tests/postgres.py).

Flask-SQLAlchemy 2.5 and 3.x, a plain SQLAlchemy engine handed over with
``ProdReady.add_engine``, Flask-Migrate and Flask-Alembic. The main suite runs this file
on the newest stack; ``nox -s oldest`` runs it on Flask 2.2, Flask-SQLAlchemy 2.5.1 and
SQLAlchemy 1.4, ``nox -s newest`` on the newest releases (see noxfile.py).
"""

from __future__ import annotations

import shutil
import uuid
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

from flask_prodready import ProdReady
from flask_prodready.engine.findings import CheckOutcome
from flask_prodready.engine.state import get_state

from ..postgres import PostgresServer, Role
from ..stacks import (
    FLASK,
    FLASK_SQLALCHEMY,
    SQLALCHEMY,
    STACK_SESSION,
    WERKZEUG,
    flask_sqlalchemy_engines,
    needs_flask_alembic_31,
    needs_flask_sqlalchemy_2,
    release,
)
from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]

DATABASE_IDS = (
    "database.unreachable",
    "database.sqlite",
    "database.pool_budget",
    "database.pre_ping",
    "database.connect_timeout",
    "database.superuser",
    "database.migrations",
)
#: Engine options every check accepts.
GOOD_OPTIONS: dict[str, Any] = {
    "pool_pre_ping": True,
    "connect_args": {"connect_timeout": 5},
}


def statuses(app: Flask, ids: tuple[str, ...] = DATABASE_IDS) -> dict[str, CheckOutcome]:
    """Outcome of each of ``ids``, run together in one report as ``flask readiness`` does."""
    state = get_state(app)
    checks = [state.registry.get(i) for i in ids]
    assert None not in checks
    report = state.build_report(app, mode="cli", checks=[c for c in checks if c is not None])
    return {i: report.outcomes[i] for i in ids}


def summary(outcomes: dict[str, CheckOutcome]) -> dict[str, str]:
    """``{check id: status}``, with the reason of a skip, to read in an assertion."""
    return {
        i: o.status.value + (f" ({o.reason})" if o.status.value == "skipped" else "")
        for i, o in outcomes.items()
    }


def location(postgres: PostgresServer, database: str) -> str:
    return f"postgresql://127.0.0.1:{postgres.port}/{database}"


def stamp(url: str, script: ScriptDirectory, revision: str, **opts: Any) -> None:
    """Record ``revision`` in the database's version table, as `flask db stamp` does."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            MigrationContext.configure(connection, opts=opts).stamp(script, revision)
    finally:
        engine.dispose()


@pytest.fixture
def web_concurrency(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set WEB_CONCURRENCY for the test (the worker count pool_budget assumes)."""
    return lambda workers: monkeypatch.setenv("WEB_CONCURRENCY", str(workers))


@pytest.fixture
def disposed() -> Iterator[list[Any]]:
    """Engines (or Flask-SQLAlchemy (db, app) pairs) to dispose of after the test."""
    made: list[Any] = []
    yield made
    for item in made:
        if isinstance(item, tuple):
            for engine in flask_sqlalchemy_engines(*item):
                engine.dispose()
        else:
            item.dispose()


@pytest.fixture
def fsa_app(make_app: MakeApp, disposed: list[Any]) -> Callable[..., tuple[Flask, SQLAlchemy]]:
    """An app with the installed Flask-SQLAlchemy on ``uri`` and ProdReady, and its db."""

    def factory(
        uri: str, extension: ProdReady | None = None, **config: Any
    ) -> tuple[Flask, SQLAlchemy]:
        app = make_app(
            extension, SQLALCHEMY_DATABASE_URI=uri, SQLALCHEMY_TRACK_MODIFICATIONS=False, **config
        )
        db = SQLAlchemy()
        sqlalchemy.Table(
            "note", db.metadata, sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True)
        )
        db.init_app(app)
        disposed.append((db, app))
        return app, db

    return factory


class TestStack:
    @pytest.mark.skipif(STACK_SESSION != "oldest", reason="runs in `nox -s oldest` only")
    def test_the_oldest_session_runs_the_oldest_stack(self) -> None:
        """`nox -s oldest` runs on Flask 2.2 (Werkzeug 2.2), Flask-SQLAlchemy 2.5 and
        SQLAlchemy 1.4, with flask-prodready installed beside them."""
        assert (FLASK, WERKZEUG, FLASK_SQLALCHEMY, SQLALCHEMY) == ((2, 2), (2, 2), (2, 5), (1, 4))
        assert release("flask-prodready") >= (0, 1)

    @pytest.mark.skipif(STACK_SESSION != "newest", reason="runs in `nox -s newest` only")
    def test_the_newest_session_runs_the_newest_stack(self) -> None:
        """`nox -s newest` runs on Flask 3.1+, Flask-SQLAlchemy 3.1+ and SQLAlchemy 2."""
        assert FLASK >= (3, 1)
        assert FLASK_SQLALCHEMY >= (3, 1)
        assert SQLALCHEMY >= (2, 0)


class TestFlaskSQLAlchemy:
    def test_every_check_judges_a_ready_app(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
        migrations_template: Path,
        tmp_path: Path,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """Every database.* check judges the installed Flask-SQLAlchemy's engine, and passes
        an app configured as the docs say (no error, no skip)."""
        web_concurrency(2)
        url = postgres.url(postgres.owner, pg_database)
        folder = tmp_path / "migrations"
        shutil.copytree(migrations_template, folder, ignore=shutil.ignore_patterns("*.pyc"))
        stamp(url, ScriptDirectory(str(folder)), "heads")
        app, db = fsa_app(url, SQLALCHEMY_ENGINE_OPTIONS=GOOD_OPTIONS)
        Migrate(app, db, directory=str(folder))
        assert summary(statuses(app)) == dict.fromkeys(DATABASE_IDS, "pass")

    def test_every_check_judges_a_neglected_app(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
        migrations_template: Path,
        tmp_path: Path,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """The same checks fail an app that is not ready, each for its own reason."""
        web_concurrency(4)
        folder = tmp_path / "migrations"
        shutil.copytree(migrations_template, folder, ignore=shutil.ignore_patterns("*.pyc"))
        app, db = fsa_app(
            postgres.url(postgres.superuser, pg_database),
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 40, "max_overflow": 20},
        )
        Migrate(app, db, directory=str(folder))
        outcomes = statuses(app)
        assert summary(outcomes) == {
            "database.unreachable": "pass",
            "database.sqlite": "pass",
            "database.pool_budget": "fail",
            "database.pre_ping": "fail",
            "database.connect_timeout": "fail",
            "database.superuser": "fail",
            "database.migrations": "fail",
        }
        where = location(postgres, pg_database)
        assert [f.message for f in outcomes["database.superuser"].findings] == [
            f"The default database ({where}) is used as the role "
            f"'{postgres.superuser.name}', which is a superuser."
        ]
        assert [f.message for f in outcomes["database.pre_ping"].findings] == [
            f"pool_pre_ping is off for the default database ({where})."
        ]

    def test_pool_budget_fires_past_max_connections(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """4 workers x (40 + 20) against max_connections 100 - 3 reserved: an error, read
        from the installed Flask-SQLAlchemy's pool and the real server."""
        web_concurrency(4)
        app, _ = fsa_app(
            postgres.url(postgres.owner, pg_database),
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 40, "max_overflow": 20},
        )
        assert messages_of(app, "database.pool_budget") == [
            (
                "error",
                "4 workers (WEB_CONCURRENCY=4) x 60 connections (pool_size 40 + max_overflow "
                f"20) = 240 connections to the server at 127.0.0.1:{postgres.port}, more "
                "than the 97 allowed (max_connections 100 - superuser_reserved_connections 3).",
            )
        ]

    def test_binds_are_judged(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """A bind of SQLALCHEMY_BINDS is judged beside the default database, and named."""
        url = postgres.url(postgres.owner, pg_database)
        app, _ = fsa_app(url, SQLALCHEMY_BINDS={"cache": "sqlite://"})
        assert messages_of(app, "database.sqlite") == [
            ("warning", "The bind 'cache' (sqlite://) is an in-memory SQLite database.")
        ]

    @needs_flask_sqlalchemy_2
    def test_engine_options_reach_every_bind_on_flask_sqlalchemy_2(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """Flask-SQLAlchemy 2.x builds every bind with SQLALCHEMY_ENGINE_OPTIONS: a bind has
        the default's pre-ping and connect timeout, and passes with it."""
        url = postgres.url(postgres.owner, pg_database)
        app, _ = fsa_app(url, SQLALCHEMY_ENGINE_OPTIONS=GOOD_OPTIONS, SQLALCHEMY_BINDS={"b": url})
        assert messages_of(app, "database.pre_ping") == []
        assert messages_of(app, "database.connect_timeout") == []
        assert outcome_of(app, "database.unreachable").status.value == "pass"


class TestWhatCannotBeRead:
    def test_an_unknown_object_in_extensions_is_skipped(self, make_app: MakeApp) -> None:
        """Something else under app.extensions['sqlalchemy']: skipped, naming it."""
        app = make_app()
        app.extensions["sqlalchemy"] = object()
        outcome = outcome_of(app, "database.pre_ping")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "app.extensions['sqlalchemy'] (of type object) is not Flask-SQLAlchemy 2.5 or "
            "3.x's: its engines cannot be read",
        )

    def test_sqlalchemy_before_1_4_is_skipped(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """SQLAlchemy 1.3 lacks the API the checks use: skipped, naming the version."""
        app, _ = fsa_app("sqlite://")
        monkeypatch.setattr(sqlalchemy, "__version__", "1.3.24")
        outcome = outcome_of(app, "database.sqlite")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "SQLAlchemy 1.3.24 is older than 1.4, the oldest the database checks support",
        )

    @needs_flask_sqlalchemy_2
    def test_an_engine_flask_sqlalchemy_2_cannot_make_is_skipped(
        self, fsa_app: Callable[..., tuple[Flask, SQLAlchemy]]
    ) -> None:
        """A bind whose URL names no installed dialect: skipped, naming the bind and the
        exception type, never its message (which may quote the URL)."""
        app, _ = fsa_app("sqlite://", SQLALCHEMY_BINDS={"bad": "nosuchdb://u:pw@h/db"})
        outcome = outcome_of(app, "database.sqlite")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "Flask-SQLAlchemy could not create the engine of the bind 'bad' (NoSuchModuleError)",
        )


class TestAddEngine:
    @pytest.fixture
    def plain_app(
        self, make_app: MakeApp, disposed: list[Any]
    ) -> Callable[..., tuple[Flask, sqlalchemy.engine.Engine]]:
        """An app without Flask-SQLAlchemy whose engine is handed over as 'main'."""

        def factory(url: str, **options: Any) -> tuple[Flask, sqlalchemy.engine.Engine]:
            engine = sqlalchemy.create_engine(url, **options)
            disposed.append(engine)
            extension = ProdReady()
            app = make_app(extension)
            extension.add_engine(engine, name="main")
            return app, engine

        return factory

    def test_every_check_judges_a_plain_engine(
        self,
        plain_app: Callable[..., tuple[Flask, sqlalchemy.engine.Engine]],
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """A plain engine handed over with add_engine is judged by every check that asks
        no migration tool; its connect_args are read from the engine itself."""
        web_concurrency(2)
        app, _ = plain_app(postgres.url(postgres.owner, pg_database), **GOOD_OPTIONS)
        assert summary(statuses(app)) == {
            **dict.fromkeys(DATABASE_IDS, "pass"),
            "database.migrations": "skipped (neither Flask-Migrate nor Flask-Alembic is set "
            "up on this app: no migrations to compare)",
        }

    def test_findings_name_the_engine(
        self,
        plain_app: Callable[..., tuple[Flask, sqlalchemy.engine.Engine]],
        postgres: PostgresServer,
        pg_database: str,
        web_concurrency: Callable[[int], None],
    ) -> None:
        """A neglected plain engine fails pre_ping, connect_timeout, superuser and
        pool_budget, each finding naming it by the name it was handed over with."""
        web_concurrency(4)
        app, _ = plain_app(
            postgres.url(postgres.superuser, pg_database), pool_size=40, max_overflow=20
        )
        where = location(postgres, pg_database)
        assert messages_of(app, "database.pre_ping") == [
            ("warning", f"pool_pre_ping is off for the engine 'main' ({where}).")
        ]
        assert messages_of(app, "database.connect_timeout") == [
            (
                "warning",
                f"The engine 'main' ({where}) has no connect timeout (connect_timeout is not "
                "set): if its host stops answering, each new connection waits until the "
                "operating system gives up.",
            )
        ]
        assert messages_of(app, "database.superuser") == [
            (
                "error",
                f"The engine 'main' ({where}) is used as the role "
                f"'{postgres.superuser.name}', which is a superuser.",
            )
        ]
        [(level, message)] = messages_of(app, "database.pool_budget")
        assert (level, message.split(" = ")[1]) == (
            "error",
            f"240 connections to the server at 127.0.0.1:{postgres.port}, more than the 97 "
            "allowed (max_connections 100 - superuser_reserved_connections 3).",
        )

    def test_connect_args_too_long(
        self,
        plain_app: Callable[..., tuple[Flask, sqlalchemy.engine.Engine]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """connect_args given to create_engine are what connect_timeout judges."""
        app, _ = plain_app(
            postgres.url(postgres.owner, pg_database), connect_args={"connect_timeout": 60}
        )
        assert messages_of(app, "database.connect_timeout") == [
            (
                "warning",
                f"The engine 'main' ({location(postgres, pg_database)}) waits up to 60 s to "
                "connect (connect_timeout), longer than 30 s: the worker is killed before the "
                "driver gives up.",
            )
        ]

    def test_unreachable_fires_for_a_wrong_password(
        self,
        plain_app: Callable[..., tuple[Flask, sqlalchemy.engine.Engine]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """A plain engine whose password is wrong cannot be reached; the password is masked."""
        wrong = Role(postgres.owner.name, "wrong-" + postgres.owner.password)
        app, _ = plain_app(postgres.url(wrong, pg_database))
        [(level, message)] = messages_of(app, "database.unreachable")
        assert level == "critical"
        assert message.startswith(
            f"The engine 'main' ({location(postgres, pg_database)}) cannot be reached: "
        )
        assert "password authentication failed" in message
        assert wrong.password not in message

    def test_an_engine_of_flask_sqlalchemy_counts_once(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """Handing over Flask-SQLAlchemy's own engine judges it once, under its own name."""
        extension = ProdReady()
        app, db = fsa_app(postgres.url(postgres.owner, pg_database), extension)
        with app.app_context():
            engine = db.get_engine() if FLASK_SQLALCHEMY < (3, 0) else db.engine
        extension.add_engine(engine, name="same", app=app)
        assert messages_of(app, "database.pre_ping") == [
            (
                "warning",
                f"pool_pre_ping is off for the default database "
                f"({location(postgres, pg_database)}).",
            )
        ]


class TestFlaskAlembic:
    @pytest.fixture
    def alembic_app(
        self,
        fsa_app: Callable[..., tuple[Flask, SQLAlchemy]],
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> Callable[..., tuple[Flask, Any]]:
        """An app with Flask-SQLAlchemy and Flask-Alembic (its scripts in a new folder)."""
        from flask_alembic import Alembic

        def factory(**context: Any) -> tuple[Flask, Any]:
            app, _ = fsa_app(
                postgres.url(postgres.owner, pg_database),
                ALEMBIC={"script_location": str(tmp_path / "alembic")},
                ALEMBIC_CONTEXT=context,
            )
            alembic = Alembic()
            alembic.init_app(app)
            # Flask-Alembic 3 numbers revisions by the second: two in one test would clash.
            alembic.rev_id = lambda: uuid.uuid4().hex[:12]
            return app, alembic

        return factory

    def test_fires_with_a_pending_revision(
        self,
        alembic_app: Callable[..., tuple[Flask, Any]],
        postgres: PostgresServer,
        pg_database: str,
    ) -> None:
        """A revision made by Flask-Alembic and not applied: an error naming the head; one
        more revision after an upgrade: an error naming both revisions."""
        app, alembic = alembic_app()
        with app.app_context():
            [first] = alembic.revision("create note")
        where = location(postgres, pg_database)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({where}) has no migration applied (its Alembic "
                f"version table is missing or empty); the head is {first.revision}.",
            )
        ]
        with app.app_context():
            alembic.upgrade()
            [second] = alembic.revision("nothing new", empty=True)
        assert messages_of(app, "database.migrations") == [
            (
                "error",
                f"The default database ({where}) is at revision {first.revision}, not at the "
                f"head {second.revision}.",
            )
        ]

    def test_quiet_at_head(self, alembic_app: Callable[..., tuple[Flask, Any]]) -> None:
        """After Flask-Alembic's upgrade: no finding."""
        app, alembic = alembic_app()
        with app.app_context():
            alembic.revision("create note")
            alembic.upgrade()
        assert messages_of(app, "database.migrations") == []

    def test_honours_the_version_table_of_alembic_context(
        self, alembic_app: Callable[..., tuple[Flask, Any]]
    ) -> None:
        """ALEMBIC_CONTEXT's version_table is where the revision is read."""
        app, alembic = alembic_app(version_table="schema_revision")
        with app.app_context():
            alembic.revision("create note")
            alembic.upgrade()
        assert messages_of(app, "database.migrations") == []

    def test_skipped_without_revisions(
        self, alembic_app: Callable[..., tuple[Flask, Any]], tmp_path: Path
    ) -> None:
        """A script directory without a revision yet: skipped, saying so."""
        app, _ = alembic_app()
        outcome = outcome_of(app, "database.migrations")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            f"Flask-Alembic's script directory {tmp_path / 'alembic'} has no revision yet",
        )

    @needs_flask_alembic_31
    def test_plain_engines_given_to_flask_alembic(
        self,
        make_app: MakeApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
        disposed: list[Any],
    ) -> None:
        """Flask-Alembic on a plain engine (no Flask-SQLAlchemy): its engine is compared,
        under the name it was handed over with, or Flask-Alembic's key when it was not."""
        from flask_alembic import Alembic

        engine = sqlalchemy.create_engine(postgres.url(postgres.owner, pg_database))
        disposed.append(engine)
        metadata = sqlalchemy.MetaData()
        sqlalchemy.Table("note", metadata, sqlalchemy.Column("id", sqlalchemy.Integer))
        extension = ProdReady()
        app = make_app(extension, ALEMBIC={"script_location": str(tmp_path / "alembic")})
        alembic = Alembic(engines=engine, metadatas=metadata)
        alembic.init_app(app)
        alembic.rev_id = lambda: uuid.uuid4().hex[:12]
        with app.app_context():
            [head] = alembic.revision("create note")
        where = location(postgres, pg_database)
        expected = (
            f"has no migration applied (its Alembic version table is missing or empty); the "
            f"head is {head.revision}."
        )
        assert messages_of(app, "database.migrations") == [
            ("error", f"The engine 'default' ({where}) {expected}")
        ]
        extension.add_engine(engine, name="main")
        assert messages_of(app, "database.migrations") == [
            ("error", f"The engine 'main' ({where}) {expected}")
        ]
        with app.app_context():
            alembic.upgrade()
        assert messages_of(app, "database.migrations") == []
