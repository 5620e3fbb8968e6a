"""The app's databases as the ``database.*`` checks see them, and judging every one.

Flask-SQLAlchemy keeps one engine per bind, but not the options each was built from
(``connect_args``, ``creator``), which decide how a check may connect and what it reports:
:class:`Database` pairs the two. A check judges every engine the same way;
:func:`judge_all` runs that judgement and decides whether a clean result stands or the
check must be skipped, from the two exceptions a judgement raises to say it could not
answer.

SQLAlchemy is imported inside :func:`databases_of`, only when the app uses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...engine.context import CheckContext
from ...engine.findings import Finding
from ...engine.redaction import Redactor

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PSYCOPG_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})
POSTGRESQL = "postgresql"
SQLITE = "sqlite"

NOT_SET_UP = "Flask-SQLAlchemy is not set up on this app"
_INSTALL_SQLALCHEMY = "SQLAlchemy is not installed (pip install 'flask-prodready[sqlalchemy]')"


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


def engine_options(db: Any, config: Mapping[str, Any], key: str | None) -> dict[str, Any]:
    """The options Flask-SQLAlchemy built the engine ``key`` from (as its ``init_app`` does)."""
    options: dict[str, Any] = dict(getattr(db, "engine_options", None) or {})
    binds = config.get("SQLALCHEMY_BINDS") or {}
    value = binds.get(key) if isinstance(binds, Mapping) else None
    if isinstance(value, Mapping):
        options.update(value)
    if key is None:
        options.update(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    return options


def databases_of(ctx: CheckContext) -> list[Database]:
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
    return [Database(k, engines[k], engine_options(db, ctx.config, k)) for k in keys]


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
