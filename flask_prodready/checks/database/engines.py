"""The app's databases as the ``database.*`` checks see them, and judging every one.

The engines come from Flask-SQLAlchemy, 3.x (``db.engines``) or 2.5 (``db.get_engine``
for the default database and each key of ``SQLALCHEMY_BINDS``), and from
``ProdReady.add_engine``, which hands over the engines an app keeps without it. An engine
does not keep the options it was built from (``connect_args``, ``creator``), which decide
how a check may connect and what it reports: :class:`Database` pairs the two. A check
judges every engine the same way; :func:`judge_all` runs that judgement and decides
whether a clean result stands or the check must be skipped, from the two exceptions a
judgement raises to say it could not answer.

SQLAlchemy is imported inside :func:`databases_of`, only when the app uses it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...engine.context import CheckContext
from ...engine.findings import Finding
from ...engine.redaction import Redactor
from ...engine.state import EXTENSION_KEY, AppState

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PSYCOPG_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})
POSTGRESQL = "postgresql"
SQLITE = "sqlite"

NOT_SET_UP = (
    "Flask-SQLAlchemy is not set up on this app, and no engine was handed over with "
    "ProdReady.add_engine"
)
_INSTALL_SQLALCHEMY = "SQLAlchemy is not installed (pip install 'flask-prodready[sqlalchemy]')"
#: The oldest SQLAlchemy whose API the checks use (``exec_driver_sql``, ``URL.query``).
OLDEST_SQLALCHEMY = (1, 4)


class NoVerdict(Exception):
    """Why a check gives no verdict on one database (``reason``, said in the skip)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotApplicable(NoVerdict):
    """The question does not arise for this database (SQLite has no server to reach)."""


class CannotJudge(NoVerdict):
    """The check cannot answer for this database (not reachable, unknown driver ...)."""


@dataclass(frozen=True)
class Database:
    """One engine of the app, with the engine options it was configured with.

    ``key`` is Flask-SQLAlchemy's bind key (``None``: the default database), or the name
    an engine was handed over with when ``added``.
    """

    key: str | None
    engine: Engine
    options: Mapping[str, Any]
    added: bool = False

    @property
    def name(self) -> str:
        if self.added:
            return f"the engine {self.key!r}"
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
        """The driver's connect arguments: those the engine connects with, else the URL's
        and then the configured connect_args."""
        captured = _captured_connect_args(self.engine)
        if captured is not None:
            return captured
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


def _captured_connect_args(engine: Any) -> tuple[list[Any], dict[str, Any]] | None:
    """The arguments ``create_engine`` computed for the driver (the URL's, then
    ``connect_args``), read from the connect function it made; ``None`` when the engine
    connects through another function, or SQLAlchemy keeps them elsewhere.

    An engine handed over with ``add_engine`` comes without its options: this is where
    its ``connect_args`` are still known.
    """
    creator = getattr(engine.pool, "_creator", None)
    code = getattr(creator, "__code__", None)
    cells = getattr(creator, "__closure__", None)
    if code is None or cells is None:
        return None
    values = dict(zip(code.co_freevars, cells, strict=False))
    params = values.get("cparams")
    cargs = values.get("cargs", values.get("cargs_tup"))
    if params is None or cargs is None:
        return None
    try:
        found_params, found_args = params.cell_contents, cargs.cell_contents
    except ValueError:  # an empty cell
        return None
    if not isinstance(found_params, Mapping) or not isinstance(found_args, (list, tuple)):
        return None
    return list(found_args), dict(found_params)


def engine_options(db: Any, config: Mapping[str, Any], key: str | None) -> dict[str, Any]:
    """The options Flask-SQLAlchemy 3.x built the engine ``key`` from (as its ``init_app``
    does)."""
    options: dict[str, Any] = dict(getattr(db, "engine_options", None) or {})
    binds = config.get("SQLALCHEMY_BINDS") or {}
    value = binds.get(key) if isinstance(binds, Mapping) else None
    if isinstance(value, Mapping):
        options.update(value)
    if key is None:
        options.update(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    return options


def legacy_engine_options(db: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The options Flask-SQLAlchemy 2.x builds every engine from: the config's
    ``SQLALCHEMY_ENGINE_OPTIONS``, then those given to ``SQLAlchemy()``."""
    options: dict[str, Any] = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.update(getattr(db, "_engine_options", None) or {})
    return options


def added_engines(ctx: CheckContext) -> list[tuple[str, Engine]]:
    """The engines handed over to this app with ``ProdReady.add_engine``, by name."""
    state = ctx.app.extensions.get(EXTENSION_KEY)
    return state.engines.items() if isinstance(state, AppState) else []


def _flask_sqlalchemy_databases(ctx: CheckContext, extension: Any) -> list[Database]:
    """Flask-SQLAlchemy's engines, the default first, from 3.x or 2.x."""
    if hasattr(extension, "engines"):  # 3.x: the SQLAlchemy object, engines made at init_app
        engines: Mapping[str | None, Engine] = extension.engines
        ordered = sorted(engines, key=lambda k: (k is not None, str(k)))
        return [Database(k, engines[k], engine_options(extension, ctx.config, k)) for k in ordered]
    db = getattr(extension, "db", None)
    if db is None or not callable(getattr(db, "get_engine", None)):
        ctx.skip(
            f"app.extensions['sqlalchemy'] (of type {type(extension).__qualname__}) is not "
            "Flask-SQLAlchemy 2.5 or 3.x's: its engines cannot be read"
        )
    # 2.x: a _SQLAlchemyState whose engines are made on first use, as the app's first
    # query would make them; SQLALCHEMY_DATABASE_URI always has a value after init_app.
    binds = ctx.config.get("SQLALCHEMY_BINDS") or {}
    keys: list[str | None] = [None] if ctx.config.get("SQLALCHEMY_DATABASE_URI") else []
    keys += sorted(str(k) for k in binds) if isinstance(binds, Mapping) else []
    options = legacy_engine_options(db, ctx.config)
    found = []
    for key in keys:
        try:
            engine = db.get_engine(ctx.app, bind=key)
        except Exception as exc:  # a URL SQLAlchemy cannot read, a driver not installed
            what = "the default database" if key is None else f"the bind {key!r}"
            ctx.skip(
                f"Flask-SQLAlchemy could not create the engine of {what} ({type(exc).__name__})"
            )
        found.append(Database(key, engine, options))
    return found


def databases_of(ctx: CheckContext, *, required: bool = True) -> list[Database]:
    """Every engine of the app: Flask-SQLAlchemy's, the default first, then those handed
    over with ``add_engine`` (an engine both hand over counts once, as Flask-SQLAlchemy's).

    Skips when there is none (unless not ``required``: then ``[]``), and when SQLAlchemy
    is missing or older than 1.4.
    """
    extension = ctx.app.extensions.get("sqlalchemy")
    added = added_engines(ctx)
    if extension is None and not added:
        if not required:
            return []
        ctx.skip(NOT_SET_UP)
    try:
        import sqlalchemy
    except ImportError:
        ctx.skip(_INSTALL_SQLALCHEMY)
    version = str(getattr(sqlalchemy, "__version__", "0"))
    if _release(version) < OLDEST_SQLALCHEMY:
        ctx.skip(
            f"SQLAlchemy {version} is older than "
            f"{'.'.join(map(str, OLDEST_SQLALCHEMY))}, the oldest the database checks support"
        )
    found = [] if extension is None else _flask_sqlalchemy_databases(ctx, extension)
    seen = {id(database.engine) for database in found}
    found += [
        Database(name, engine, {}, added=True) for name, engine in added if id(engine) not in seen
    ]
    if not found and required:
        ctx.skip("Flask-SQLAlchemy has no engine on this app")
    return found


def _release(version: str) -> tuple[int, ...]:
    """The major and minor number of a version string (``"1.4.54"`` -> ``(1, 4)``)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else (0,)


def judge_all(
    databases: Iterable[Database], judge: Callable[[Database], Iterable[Finding]]
) -> tuple[list[Finding], str | None]:
    """Findings of ``judge`` for every database, and why the check must be skipped if
    those are none (``None``: the result stands).

    A database where the question does not arise (``NotApplicable``) does not count;
    one that could not be judged (``CannotJudge``) turns a clean result into a skip, and
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
        except NotApplicable as exc:
            not_applicable.append(exc.reason)
        except CannotJudge as exc:
            cannot.append(exc.reason)
    if cannot:
        return found, "; ".join(cannot)
    if not judged:
        return found, "; ".join(not_applicable)
    return found, None


def per_database(
    ctx: CheckContext,
    databases: Iterable[Database],
    judge: Callable[[Database], Iterable[Finding]],
) -> list[Finding]:
    """:func:`judge_all`, skipping the check when nothing was found and it must."""
    found, reason = judge_all(databases, judge)
    if not found and reason is not None:
        ctx.skip(reason)
    return found
