"""Alembic's side of ``database.migrations``: the migration tool an app is set up with
(Flask-Migrate or Flask-Alembic), its scripts, their heads, the databases it migrates,
what each database holds (its revisions, and its tables), and the verdict on each.

A migration tool set up on the app says the schema is meant to be made by migrations.
So a database whose tables have no version table beside them (made by
``db.create_all()`` or by hand), or a migrations folder that is not there at all, is a
finding, not a reason to skip: ``flask db upgrade`` has nothing to run from, or would
try to create tables that already exist.

Alembic and SQLAlchemy are imported inside the functions, only when the app uses one of
the two.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...engine.context import CheckContext
from ...engine.evidence import inert
from ...engine.findings import Finding
from .engines import Database, NotApplicable, databases_of, judge_all
from .probe import Answer, ask_alone, budget, connect, statement_timeout, wait_to_judge

NOT_SET_UP = (
    "neither Flask-Migrate nor Flask-Alembic is set up on this app: no migrations to compare"
)
_INSTALL_ALEMBIC = "Alembic is not installed (pip install 'flask-prodready[migrations]')"
#: The options of Alembic's MigrationContext that say where the revisions are kept.
_VERSION_TABLE_OPTIONS = ("version_table", "version_table_schema")
#: Alembic's default name for the version table.
DEFAULT_VERSION_TABLE = "alembic_version"
#: How many table names a message shows before "and N more".
SHOWN_TABLES = 5

FLASK_MIGRATE = "Flask-Migrate"
FLASK_ALEMBIC = "Flask-Alembic"

#: How to put a schema made without migrations under them, per tool.
_UNMANAGED_HINTS = {
    FLASK_MIGRATE: (
        "Put the schema under migrations: `flask db init` (when there is no migrations "
        "folder), then `flask db migrate` against an empty database to write a first "
        "revision that creates these tables. Check that it matches the schema this database "
        "has, record it here with `flask db stamp head`, deploy the migrations folder with "
        "the code, and stop calling db.create_all() in production."
    ),
    FLASK_ALEMBIC: (
        "Put the schema under migrations: `flask db mkdir` (when there is no migrations "
        "folder), then `flask db revision 'initial schema'` against an empty database to "
        "write a first revision that creates these tables. Check that it matches the schema "
        "this database has, record it here with `flask db stamp`, deploy the migrations "
        "folder with the code, and stop calling db.create_all() in production."
    ),
}
#: A database with no table and no migrations folder: nothing creates the schema.
_NOTHING_TO_RUN_HINTS = {
    FLASK_MIGRATE: (
        "Create the migrations folder and a first revision (`flask db init`, then "
        "`flask db migrate`), keep it in version control and deploy it with the code, and "
        "run `flask db upgrade` before the app serves requests."
    ),
    FLASK_ALEMBIC: (
        "Create the migrations folder and a first revision (`flask db mkdir`, then "
        "`flask db revision 'initial schema'`), keep it in version control and deploy it "
        "with the code, and run `flask db upgrade` before the app serves requests."
    ),
}
#: A migrated database whose migrations folder this deployment lacks.
_FOLDER_NOT_DEPLOYED_HINTS = {
    FLASK_MIGRATE: (
        "Deploy the migrations folder with the code (keep it in version control), or point "
        "Migrate(directory=...) at it. If the migrations run from another deployment, "
        "silence this check with that reason."
    ),
    FLASK_ALEMBIC: (
        "Deploy the migrations folder with the code (keep it in version control), or point "
        "ALEMBIC['script_location'] at it. If the migrations run from another deployment, "
        "silence this check with that reason."
    ),
}


@dataclass(frozen=True)
class Target:
    """A database the migrations are run on; ``required``: one without a version table
    has never been migrated (the default database), rather than being migrated elsewhere
    (a bind, in a single-database setup)."""

    database: Database
    required: bool


@dataclass(frozen=True)
class Migrations:
    """The app's migrations: the tool, its folder (``folder`` names it in messages), the
    Alembic script directory and its heads, the version table options, and the databases
    the tool migrates.

    ``script`` is ``None`` when the folder was not found; ``missing`` then says where it
    was looked for. ``heads`` is empty when the folder has no revision yet.
    """

    tool: str
    folder: str
    script: Any
    heads: tuple[str, ...]
    options: Mapping[str, Any]
    targets: tuple[Target, ...]
    missing: str | None = None


@dataclass(frozen=True)
class Schema:
    """What a database holds that tells how its schema was made: the revisions in its
    Alembic version table, and the tables of its default schema (the version table left
    out)."""

    revisions: tuple[str, ...]
    tables: tuple[str, ...]


def migrations_of(ctx: CheckContext) -> Migrations:
    """Flask-Migrate's or Flask-Alembic's migrations of this app; skips the check when
    neither is set up, Alembic is missing, or the folder cannot be read."""
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

    directory = str(getattr(migrate, "directory", None) or "migrations")
    arguments = getattr(migrate, "configure_args", None) or {}
    targets = _flask_sqlalchemy_targets(ctx, FLASK_MIGRATE)
    options = _version_options(arguments)
    folder, looked_in = migrations_folder(ctx, directory)
    if folder is None:
        shown = f"the migrations folder {directory!r}"
        missing = f"looked in {', '.join(looked_in)}"
        return Migrations(FLASK_MIGRATE, shown, None, (), options, targets, missing)
    ini = folder / "alembic.ini"
    config = Config(str(ini) if ini.is_file() else None)
    config.set_main_option("script_location", str(folder).replace("%", "%%"))
    try:
        script = ScriptDirectory.from_config(config)
        heads = tuple(sorted(script.get_heads()))
    except Exception as exc:  # alembic's errors, or a revision file that does not import
        ctx.skip(f"the migrations folder {folder} cannot be read: {type(exc).__name__}: {exc}")
    return Migrations(
        FLASK_MIGRATE, f"the migrations folder {folder}", script, heads, options, targets
    )


def _flask_alembic(ctx: CheckContext, extension: Any) -> Migrations:
    """Flask-Alembic: its script directory (``ALEMBIC``), ``ALEMBIC_CONTEXT``, and the
    engines it was given (3.1+), else Flask-SQLAlchemy's."""
    options = _version_options(ctx.config.get("ALEMBIC_CONTEXT") or {})
    targets = _flask_alembic_targets(ctx, extension)
    location = _script_location(extension)
    if location is not None and not os.path.isdir(location):
        # Flask-Alembic(run_mkdir=False) on a deployment without the folder.
        shown = f"Flask-Alembic's script directory {location!r}"
        return Migrations(FLASK_ALEMBIC, shown, None, (), options, targets)
    try:
        script = extension.script_directory  # built from ALEMBIC as `flask db` builds it
        heads = tuple(sorted(script.get_heads()))
    except Exception as exc:  # a revision file that does not import, a bad package path
        ctx.skip(f"Flask-Alembic's script directory cannot be read: {type(exc).__name__}: {exc}")
    shown = f"Flask-Alembic's script directory {script.dir}"
    return Migrations(FLASK_ALEMBIC, shown, script, heads, options, targets)


def _script_location(extension: Any) -> str | None:
    """Flask-Alembic's script directory when it is a path on disk (``None`` for a
    ``package:folder`` location, or when it cannot be told)."""
    try:
        location = extension.config.get_main_option("script_location")
    except Exception:  # an older Flask-Alembic, or a config it cannot build
        return None
    if not isinstance(location, str) or (":" in location and not os.path.isabs(location)):
        return None
    return location


def _flask_alembic_targets(ctx: CheckContext, extension: Any) -> tuple[Target, ...]:
    own = getattr(extension, "engines", None)
    if not (isinstance(own, Mapping) and own):
        return _flask_sqlalchemy_targets(ctx, FLASK_ALEMBIC)
    # Alembic(engines=...): plain SQLAlchemy engines, keyed "default" and by name. One the
    # app also handed over (or Flask-SQLAlchemy's) keeps the name it has there.
    known = {id(d.engine): d for d in databases_of(ctx, required=False)}
    found = []
    for key, engine in sorted(own.items(), key=lambda item: (item[0] != "default", item[0])):
        database = known.get(id(engine)) or Database(str(key), engine, {}, added=True)
        found.append(Target(database, required=key == "default"))
    return tuple(found)


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


def ask_schemas(
    databases: Iterable[Database], seconds: float, opts: Mapping[str, Any]
) -> dict[int, Answer]:
    """Ask each database, all at once, for its current revisions (in the version table the
    migrations are configured with) and its tables."""
    return {
        id(database): ask_alone(
            database,
            "migrations",
            functools.partial(current_schema, database, seconds, opts),
        )
        for database in databases
    }


def migrations_folder(ctx: CheckContext, directory: str) -> tuple[Path | None, list[str]]:
    """The Flask-Migrate folder: as given if absolute, else from the working directory
    (where ``flask db`` looks), the app's folder or the project folder above it. With the
    folders looked in, for saying so when it is none of them (``None``)."""
    path = Path(directory)
    root = Path(ctx.app.root_path)
    candidates = (
        [path] if path.is_absolute() else [Path.cwd() / path, root / path, root.parent / path]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate, []
    return None, list(dict.fromkeys(str(c.parent) for c in candidates))


def has_revision(script: Any, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises when it does not know the revision
        return False


def current_schema(database: Database, seconds: float, opts: Mapping[str, Any]) -> Schema:
    """The revisions in the database's Alembic version table and the tables beside it, on
    a short-lived connection."""
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
            revisions = tuple(context.get_current_heads())
            version_table = str(opts.get("version_table") or DEFAULT_VERSION_TABLE)
            tables = tuple(
                sorted(
                    name
                    for name in sqlalchemy.inspect(connection).get_table_names()
                    if name != version_table
                )
            )
            return Schema(revisions, tables)
    finally:
        probe.dispose()


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _tables(tables: tuple[str, ...]) -> str:
    """``3 tables (note, tag, user)``: how a message names a database's tables."""
    shown = ", ".join(inert(name, 60) for name in tables[:SHOWN_TABLES])
    if len(tables) > SHOWN_TABLES:
        shown += f" and {len(tables) - SHOWN_TABLES} more"
    return f"{len(tables)} table{'s' if len(tables) != 1 else ''} ({shown})"


def migration_findings(ctx: CheckContext) -> Iterator[Finding]:
    """``database.migrations``: each migrated database against the migrations folder.

    Fires when a database is not at the folder's heads, when the folder has several
    heads, and when the schema was not made by migrations although a migration tool is
    set up: tables without a version table, or no migrations folder at all.
    """
    migrations = migrations_of(ctx)
    script, heads, tool = migrations.script, migrations.heads, migrations.tool
    found: list[Finding] = []
    if len(heads) > 1:
        found.append(
            ctx.finding(
                f"The migrations folder has {len(heads)} heads ({', '.join(heads)}): "
                "`flask db upgrade` stops with 'Multiple head revisions are present'.",
                observed={"heads": list(heads)},
            )
        )
    databases = [target.database for target in migrations.targets]
    required = {id(target.database) for target in migrations.targets if target.required}
    begun = time.monotonic()
    until, seconds = budget(ctx)
    answers = ask_schemas(databases, seconds, migrations.options)

    def judge(database: Database) -> Iterator[Finding]:
        schema: Schema = wait_to_judge(
            answers[id(database)],
            database,
            until,
            begun,
            failed=lambda error: f"could not be asked for its revision ({error})",
        )
        current = schema.revisions
        label = _capitalised(database.label)
        observed = {"database": database.location, "current": list(current), "heads": list(heads)}
        if not current:
            if id(database) not in required:  # binds: migrated in multi-database setups only
                raise NotApplicable(f"{database.name} has no Alembic version table")
            yield from _unmigrated(ctx, migrations, label, schema.tables, observed)
            return
        if script is None:
            yield ctx.finding(
                f"{label} is at revision {', '.join(sorted(current))}, but "
                f"{_not_found(migrations)}: the revision cannot be compared with this "
                "code's, and `flask db upgrade` has nothing to run.",
                hint=_FOLDER_NOT_DEPLOYED_HINTS[tool],
                observed=observed,
            )
            return
        if set(current) == set(heads):
            return
        unknown = [r for r in current if not has_revision(script, r)]
        if unknown:
            yield ctx.finding(
                f"{label} is at revision {', '.join(unknown)}, which the migrations folder "
                "does not have: the database is ahead of this code, or from another branch.",
                observed=observed,
            )
        else:
            yield ctx.finding(
                f"{label} is at revision {', '.join(sorted(current))}, not at the "
                f"head {', '.join(heads)}.",
                observed=observed,
            )

    judged, reason = judge_all(databases, judge)
    found += judged
    if not found and script is None:
        # Whatever the databases hold (or when none could be asked), a missing folder
        # leaves nothing to create or upgrade the schema from.
        found.append(
            ctx.finding(
                f"{tool} is set up, but {_not_found(migrations)}: nothing can create or "
                "upgrade the schema.",
                hint=_NOTHING_TO_RUN_HINTS[tool],
                observed={"folder": migrations.folder},
            )
        )
    if not found and reason is not None:
        ctx.skip(reason)
    yield from found


def _not_found(migrations: Migrations) -> str:
    """``the migrations folder 'migrations' was not found (looked in ...)``."""
    where = f" ({migrations.missing})" if migrations.missing else ""
    return f"{migrations.folder} was not found{where}"


def _unmigrated(
    ctx: CheckContext,
    migrations: Migrations,
    label: str,
    tables: tuple[str, ...],
    observed: dict[str, Any],
) -> Iterator[Finding]:
    """The verdict on a database that must be migrated and has no version table: its
    tables were made without migrations, or it is empty (fresh) and waits for them."""
    heads, tool = migrations.heads, migrations.tool
    if tables:
        observed = {**observed, "tables": [inert(name, 60) for name in tables[:SHOWN_TABLES]]}
        made = "its schema was made without migrations (by db.create_all() or by hand)"
        if migrations.script is None:
            message = (
                f"{label} has {_tables(tables)} but no Alembic version table, and "
                f"{_not_found(migrations)}: {made}, though {tool} is set up."
            )
        elif not heads:
            message = (
                f"{label} has {_tables(tables)} but no Alembic version table, and "
                f"{migrations.folder} has no revision yet: {made}."
            )
        else:
            message = (
                f"{label} has {_tables(tables)} but no Alembic version table: {made}, and "
                f"`flask db upgrade` would try to create them again; the head is "
                f"{', '.join(heads)}."
            )
        yield ctx.finding(message, hint=_UNMANAGED_HINTS[tool], observed=observed)
    elif migrations.script is None:
        yield ctx.finding(
            f"{label} has no table and no Alembic version table, and "
            f"{_not_found(migrations)}: {tool} is set up, but nothing can create the schema.",
            hint=_NOTHING_TO_RUN_HINTS[tool],
            observed=observed,
        )
    elif not heads:
        raise NotApplicable(f"{migrations.folder} has no revision yet")
    else:
        yield ctx.finding(
            f"{label} has no migration applied (its Alembic version table is missing or "
            f"empty); the head is {', '.join(heads)}.",
            observed=observed,
        )
