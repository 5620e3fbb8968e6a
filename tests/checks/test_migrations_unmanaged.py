"""database.migrations when the schema was not made by migrations: a migration tool set up
on the app, and tables without a version table, or no migrations folder at all.

Against a real PostgreSQL (tests/postgres.py) and SQLite files. The tables are made by
Flask-SQLAlchemy's ``db.create_all()`` in the test process; the migrations folders and
upgrades are made by the real ``flask db init``/``migrate``/``upgrade`` of Flask-Migrate,
run as a user would on a small project (``tests.postgres.run_project``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from ..postgres import PostgresServer, free_port, make_project, run_project
from ..stacks import flask_sqlalchemy_engines
from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
#: make_app(uri, migrations=FOLDER, tables=True) -> the app; its Flask-SQLAlchemy has one
#: model, ``note``, as the test project's app has.
MakeMigratedApp = Callable[..., Flask]

CHECK = "database.migrations"
MADE = "its schema was made without migrations (by db.create_all() or by hand)"


@pytest.fixture
def make_migrated_app(make_app: MakeApp) -> Iterator[MakeMigratedApp]:
    """Build an app with Flask-SQLAlchemy (one model, ``note``) on ``uri`` and Flask-Migrate
    on ``migrations``; ``tables=True`` creates the tables with ``db.create_all()``."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(uri: str, *, migrations: Path, tables: bool = False) -> Flask:
        app = make_app(SQLALCHEMY_DATABASE_URI=uri)
        db = SQLAlchemy()

        class Note(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            text = db.Column(db.String(200), nullable=False)

        db.init_app(app)
        Migrate(app, db, directory=str(migrations))
        if tables:
            with app.app_context():
                db.create_all()
        made.append((app, db))
        return app

    yield factory
    for app, db in made:
        with app.app_context():
            for engine in flask_sqlalchemy_engines(db, app):
                engine.dispose()


def flask_db(project: Path, uri: str, *args: str) -> None:
    """Run ``flask db ARGS`` of the test project on the database ``uri``."""
    done = run_project(project, "db", *args, config={"SQLALCHEMY_DATABASE_URI": uri})
    assert done.returncode == 0, f"flask db {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def postgres_location(postgres: PostgresServer, database: str, port: int | None = None) -> str:
    return f"postgresql://127.0.0.1:{postgres.port if port is None else port}/{database}"


class TestPostgres:
    def test_fires_on_create_all_without_a_folder(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """Flask-Migrate set up, no migrations folder, tables made by create_all: an error
        saying the schema was not made by migrations."""
        missing = tmp_path / "migrations"
        url = postgres.url(postgres.owner, pg_database)
        app = make_migrated_app(url, migrations=missing, tables=True)
        outcome = outcome_of(app, CHECK)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The default database ({postgres_location(postgres, pg_database)}) has 1 "
                f"table (note) but no Alembic version table, and the migrations folder "
                f"{str(missing)!r} was not found (looked in {tmp_path}): {MADE}, though "
                "Flask-Migrate is set up.",
            )
        ]
        [finding] = outcome.findings
        assert finding.hint.startswith("Put the schema under migrations: `flask db init`")
        assert "`flask db stamp head`" in finding.hint
        assert finding.observed["tables"] == ["note"]

    def test_quiet_after_flask_db_upgrade(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """A folder made by `flask db init` and `flask db migrate`, applied by
        `flask db upgrade`: at head, no finding."""
        url = postgres.url(postgres.owner, pg_database)
        project = make_project(tmp_path / "project")
        flask_db(project, url, "init")
        flask_db(project, url, "migrate", "-m", "create note")
        flask_db(project, url, "upgrade")
        app = make_migrated_app(url, migrations=project / "migrations")
        assert messages_of(app, CHECK) == []

    def test_fires_on_create_all_beside_a_folder(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        migrations_template: Path,
        tmp_path: Path,
    ) -> None:
        """A migrations folder with a revision, but tables made by create_all (no
        alembic_version): an error saying `flask db upgrade` would create them again."""
        folder = tmp_path / "migrations"
        shutil.copytree(migrations_template, folder, ignore=shutil.ignore_patterns("*.pyc"))
        [head] = ScriptDirectory(str(folder)).get_heads()
        url = postgres.url(postgres.owner, pg_database)
        app = make_migrated_app(url, migrations=folder, tables=True)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The default database ({postgres_location(postgres, pg_database)}) has 1 "
                f"table (note) but no Alembic version table: {MADE}, and `flask db upgrade` "
                f"would try to create them again; the head is {head}.",
            )
        ]

    def test_fires_on_a_migrated_database_without_its_folder(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """A database upgraded by `flask db upgrade`, served by a deployment whose
        migrations folder is missing: an error naming the revision and the folder."""
        url = postgres.url(postgres.owner, pg_database)
        project = make_project(tmp_path / "project")
        flask_db(project, url, "init")
        flask_db(project, url, "migrate", "-m", "create note")
        flask_db(project, url, "upgrade")
        [head] = ScriptDirectory(str(project / "migrations")).get_heads()
        shutil.rmtree(project / "migrations")
        app = make_migrated_app(url, migrations=project / "migrations")
        outcome = outcome_of(app, CHECK)
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The default database ({postgres_location(postgres, pg_database)}) is at "
                f"revision {head}, but the migrations folder "
                f"{str(project / 'migrations')!r} was not found (looked in {project}): the "
                "revision cannot be compared with this code's, and `flask db upgrade` has "
                "nothing to run.",
            )
        ]
        assert outcome.findings[0].hint.startswith("Deploy the migrations folder with the code")

    def test_fires_on_create_all_with_a_folder_without_revisions(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """`flask db init` only (no revision yet) and tables made by create_all: an error."""
        url = postgres.url(postgres.owner, pg_database)
        project = make_project(tmp_path / "project")
        flask_db(project, url, "init")
        folder = project / "migrations"
        app = make_migrated_app(url, migrations=folder, tables=True)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The default database ({postgres_location(postgres, pg_database)}) has 1 "
                f"table (note) but no Alembic version table, and the migrations folder "
                f"{folder} has no revision yet: {MADE}.",
            )
        ]

    def test_fires_without_a_folder_when_the_database_cannot_be_asked(
        self,
        make_migrated_app: MakeMigratedApp,
        postgres: PostgresServer,
        pg_database: str,
        tmp_path: Path,
    ) -> None:
        """No migrations folder and a database that refuses connections: the missing
        folder is still an error, never a skip."""
        missing = tmp_path / "migrations"
        url = postgres.url(postgres.owner, pg_database, port=free_port())
        app = make_migrated_app(url, migrations=missing)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"Flask-Migrate is set up, but the migrations folder {str(missing)!r} was not "
                f"found (looked in {tmp_path}): nothing can create or upgrade the schema.",
            )
        ]


class TestSqlite:
    def test_fires_on_create_all_without_a_folder(
        self, make_migrated_app: MakeMigratedApp, tmp_path: Path
    ) -> None:
        """SQLite: Flask-Migrate set up, no migrations folder, create_all: an error."""
        database = tmp_path / "app.db"
        missing = tmp_path / "migrations"
        app = make_migrated_app(f"sqlite:///{database}", migrations=missing, tables=True)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The default database (sqlite:///{database}) has 1 table (note) but no "
                f"Alembic version table, and the migrations folder {str(missing)!r} was not "
                f"found (looked in {tmp_path}): {MADE}, though Flask-Migrate is set up.",
            )
        ]

    def test_quiet_after_flask_db_upgrade(
        self, make_migrated_app: MakeMigratedApp, tmp_path: Path
    ) -> None:
        """SQLite: `flask db init`, `migrate` and `upgrade`: at head, no finding."""
        url = f"sqlite:///{tmp_path / 'app.db'}"
        project = make_project(tmp_path / "project")
        flask_db(project, url, "init")
        flask_db(project, url, "migrate", "-m", "create note")
        flask_db(project, url, "upgrade")
        app = make_migrated_app(url, migrations=project / "migrations")
        assert messages_of(app, CHECK) == []

    def test_fires_on_create_all_beside_a_folder(
        self, make_migrated_app: MakeMigratedApp, migrations_template: Path, tmp_path: Path
    ) -> None:
        """SQLite: a folder with a revision, tables made by create_all: an error."""
        folder = tmp_path / "migrations"
        shutil.copytree(migrations_template, folder, ignore=shutil.ignore_patterns("*.pyc"))
        [head] = ScriptDirectory(str(folder)).get_heads()
        database = tmp_path / "app.db"
        app = make_migrated_app(f"sqlite:///{database}", migrations=folder, tables=True)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The default database (sqlite:///{database}) has 1 table (note) but no "
                f"Alembic version table: {MADE}, and `flask db upgrade` would try to create "
                f"them again; the head is {head}.",
            )
        ]

    def test_an_empty_database_with_a_folder_waits_for_upgrade(
        self, make_migrated_app: MakeMigratedApp, migrations_template: Path, tmp_path: Path
    ) -> None:
        """SQLite: an empty database beside a folder with a revision keeps its message:
        no migration applied yet."""
        folder = tmp_path / "migrations"
        shutil.copytree(migrations_template, folder, ignore=shutil.ignore_patterns("*.pyc"))
        [head] = ScriptDirectory(str(folder)).get_heads()
        database = tmp_path / "app.db"
        app = make_migrated_app(f"sqlite:///{database}", migrations=folder)
        assert messages_of(app, CHECK) == [
            (
                "error",
                f"The default database (sqlite:///{database}) has no migration applied (its "
                f"Alembic version table is missing or empty); the head is {head}.",
            )
        ]


class TestFlaskAlembic:
    def test_fires_on_create_all_without_a_script_directory(
        self, make_app: MakeApp, tmp_path: Path
    ) -> None:
        """Flask-Alembic (run_mkdir=False) whose script directory is missing, tables made by
        create_all: an error with Flask-Alembic's commands in the hint."""
        from flask_alembic import Alembic

        database = tmp_path / "app.db"
        missing = tmp_path / "alembic"
        app = make_app(
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
            ALEMBIC={"script_location": str(missing)},
        )
        db = SQLAlchemy()

        class Tag(db.Model):
            id = db.Column(db.Integer, primary_key=True)

        db.init_app(app)
        Alembic(run_mkdir=False).init_app(app)
        engines: list[Any] = []
        try:
            with app.app_context():
                db.create_all()
                engines = flask_sqlalchemy_engines(db, app)
            outcome = outcome_of(app, CHECK)
        finally:
            for engine in engines:
                engine.dispose()
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The default database (sqlite:///{database}) has 1 table (tag) but no "
                f"Alembic version table, and Flask-Alembic's script directory "
                f"{str(missing)!r} was not found: {MADE}, though Flask-Alembic is set up.",
            )
        ]
        assert "`flask db mkdir`" in outcome.findings[0].hint
