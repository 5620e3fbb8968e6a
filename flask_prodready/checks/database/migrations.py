"""Alembic's side of ``database.migrations``: the migration tool an app is set up with
(Flask-Migrate or Flask-Alembic), its scripts, their heads, the databases it migrates,
and the revisions each database is at.

Alembic and SQLAlchemy are imported inside the functions, only when the app uses one of
the two.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engine.context import CheckContext
from .engines import Database, databases_of
from .probe import Answer, ask_alone, connect, statement_timeout

NOT_SET_UP = (
    "neither Flask-Migrate nor Flask-Alembic is set up on this app: no migrations to compare"
)
_INSTALL_ALEMBIC = "Alembic is not installed (pip install 'flask-prodready[migrations]')"
#: The options of Alembic's MigrationContext that say where the revisions are kept.
_VERSION_TABLE_OPTIONS = ("version_table", "version_table_schema")


@dataclass(frozen=True)
class Target:
    """A database the migrations are run on; ``required``: one without a version table
    has never been migrated (the default database), rather than being migrated elsewhere
    (a bind, in a single-database setup)."""

    database: Database
    required: bool


@dataclass(frozen=True)
class Migrations:
    """The app's migrations: the Alembic script directory and its heads, the version
    table options, and the databases the tool migrates."""

    script: Any
    heads: tuple[str, ...]
    options: Mapping[str, Any]
    targets: tuple[Target, ...]


def migrations_of(ctx: CheckContext) -> Migrations:
    """Flask-Migrate's or Flask-Alembic's migrations of this app; skips the check when
    neither is set up, Alembic is missing, or the scripts have no readable revision."""
    migrate = ctx.app.extensions.get("migrate")
    flask_alembic = ctx.app.extensions.get("alembic")
    if migrate is None and flask_alembic is None:
        ctx.skip(NOT_SET_UP)
    try:
        from alembic.script import ScriptDirectory  # noqa: F401
    except ImportError:
        ctx.skip(_INSTALL_ALEMBIC)
    if migrate is not None:
        return _flask_migrate(ctx, migrate)
    return _flask_alembic(ctx, flask_alembic)


def _flask_migrate(ctx: CheckContext, migrate: Any) -> Migrations:
    """Flask-Migrate: its folder, ``Migrate(version_table=...)``, Flask-SQLAlchemy's engines."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    folder = migrations_folder(ctx, str(getattr(migrate, "directory", None) or "migrations"))
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
    arguments = getattr(migrate, "configure_args", None) or {}
    targets = _flask_sqlalchemy_targets(ctx, "Flask-Migrate")
    return Migrations(script, heads, _version_options(arguments), targets)


def _flask_alembic(ctx: CheckContext, extension: Any) -> Migrations:
    """Flask-Alembic: its script directory (``ALEMBIC``), ``ALEMBIC_CONTEXT``, and the
    engines it was given (3.1+), else Flask-SQLAlchemy's."""
    try:
        script = extension.script_directory  # built from ALEMBIC as `flask db` builds it
        heads = tuple(sorted(script.get_heads()))
    except Exception as exc:  # a missing folder, a revision file that does not import
        ctx.skip(f"Flask-Alembic's script directory cannot be read: {type(exc).__name__}: {exc}")
    if not heads:
        ctx.skip(f"Flask-Alembic's script directory {script.dir} has no revision yet")
    options = _version_options(ctx.config.get("ALEMBIC_CONTEXT") or {})
    own = getattr(extension, "engines", None)
    if not (isinstance(own, Mapping) and own):
        targets = _flask_sqlalchemy_targets(ctx, "Flask-Alembic")
        return Migrations(script, heads, options, targets)
    # Alembic(engines=...): plain SQLAlchemy engines, keyed "default" and by name. One the
    # app also handed over (or Flask-SQLAlchemy's) keeps the name it has there.
    known = {id(d.engine): d for d in databases_of(ctx, required=False)}
    found = []
    for key, engine in sorted(own.items(), key=lambda item: (item[0] != "default", item[0])):
        database = known.get(id(engine)) or Database(str(key), engine, {}, added=True)
        found.append(Target(database, required=key == "default"))
    return Migrations(script, heads, options, tuple(found))


def _flask_sqlalchemy_targets(ctx: CheckContext, tool: str) -> tuple[Target, ...]:
    """Flask-SQLAlchemy's engines: the default one must be migrated, a bind is compared
    when it has a version table (a multi-database setup)."""
    targets = tuple(
        Target(database, required=database.key is None)
        for database in databases_of(ctx)
        if not database.added
    )
    if not targets:
        ctx.skip(f"{tool} migrates Flask-SQLAlchemy's databases, and this app has none")
    return targets


def _version_options(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {k: arguments[k] for k in _VERSION_TABLE_OPTIONS if k in arguments}


def ask_revisions(
    databases: Iterable[Database], seconds: float, opts: Mapping[str, Any]
) -> dict[int, Answer]:
    """Ask each database for its current revisions, all at once, in the version table
    the migrations are configured with."""
    return {
        id(database): ask_alone(
            database,
            "migrations",
            functools.partial(current_revisions, database, seconds, opts),
        )
        for database in databases
    }


def migrations_folder(ctx: CheckContext, directory: str) -> Path:
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


def has_revision(script: Any, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises when it does not know the revision
        return False


def current_revisions(
    database: Database, seconds: float, opts: Mapping[str, Any]
) -> tuple[str, ...]:
    """The revisions in the database's Alembic version table, on a short-lived connection."""
    import sqlalchemy
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.pool import NullPool

    probe = sqlalchemy.create_engine(
        database.engine.url,
        creator=lambda: connect(database, seconds),
        poolclass=NullPool,
    )
    try:
        with probe.connect() as connection:
            bound = statement_timeout(database, seconds)
            if bound is not None:
                connection.exec_driver_sql(bound)
            context = MigrationContext.configure(connection, opts=dict(opts))
            return tuple(context.get_current_heads())
    finally:
        probe.dispose()
