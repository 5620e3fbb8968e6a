"""Alembic's side of ``database.migrations``: the migrations folder, its heads, and the
revisions each database is at.

Alembic and SQLAlchemy are imported inside the functions, only when the app uses
Flask-Migrate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...engine.context import CheckContext
from .engines import Database
from .probe import Answer, ask_alone, connect, statement_timeout

_INSTALL_ALEMBIC = "Alembic is not installed (pip install 'flask-prodready[migrations]')"


def script_heads(ctx: CheckContext, migrate: Any) -> tuple[Any, tuple[str, ...]]:
    """The Alembic script directory of Flask-Migrate's folder, and its heads; skips the
    check when Alembic is missing or the folder has no readable revision."""
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
    except ImportError:
        ctx.skip(_INSTALL_ALEMBIC)
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
    return script, heads


def ask_revisions(migrate: Any, databases: Iterable[Database], seconds: float) -> dict[int, Answer]:
    """Ask each database for its current revisions, all at once, in the version table
    Flask-Migrate is configured with."""
    arguments = getattr(migrate, "configure_args", None) or {}
    opts = {k: arguments[k] for k in ("version_table", "version_table_schema") if k in arguments}
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
