"""A small but real Flask app that uses flask-prodready the way an application would.

``flask --app example_app run`` (development) or, in production,
``gunicorn -c deploy/gunicorn.conf.py example_app.wsgi:app`` with
``FLASK_CONFIG=production`` after ``flask --app example_app db upgrade``. The
configuration comes from :mod:`example_app.config`; the instance folder (where the
default SQLite file lives) is Flask's usual one, or the folder named by
``EXAMPLE_INSTANCE_PATH`` so that the demo and the tests can run in a throwaway folder.

It shows the three parts a user writes: ``ProdReady()`` at module level and
``init_app`` in the factory, one custom check of the app's own
(``example.database_file``), and an ordinary app around them (a page counting visits in
the session and in the database, a template and a static file), with what production
adds: Flask-Migrate migrations, ``ProxyFix`` behind the proxy, security headers, Sentry
when a DSN is given, and a liveness path (:data:`LIVENESS_PATH`) that depends on nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, render_template, session
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, exc, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_prodready import CheckContext, Finding, ProdReady

from .config import config_class, sentry_options

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "LIVENESS_PATH",
    "MIGRATIONS_FOLDER",
    "LivenessMiddleware",
    "PageCounter",
    "create_app",
    "db",
    "migrate",
    "prodready",
]

#: Environment variable naming the instance folder (default: Flask's ``instance/``).
INSTANCE_PATH_VARIABLE = "EXAMPLE_INSTANCE_PATH"
#: The row of :class:`PageCounter` that counts visits of the home page.
HOME_COUNTER = "home"
#: The migrations (``flask db init`` + ``flask db migrate``), inside the package so that
#: they ship with the code and are found whatever the working directory.
MIGRATIONS_FOLDER = Path(__file__).resolve().parent / "migrations"
#: The liveness path: ``200 ok`` from any worker that can answer at all, without the
#: database, Flask or its ``TRUSTED_HOSTS`` (probes send the pod's IP as ``Host``).
#: ``/healthz`` is the readiness signal instead: in production it also checks the
#: database (``PRODREADY_HEALTHZ_CHECKS``), and a liveness probe that fails with the
#: database would restart every instance during a database outage.
LIVENESS_PATH = "/livez"


class Base(DeclarativeBase):
    """The declarative base of the app's models.

    Models subclass it directly rather than ``db.Model`` (Flask-SQLAlchemy builds that
    class at run time, so a type checker cannot see it). Both share one ``metadata``,
    which is what the migrations are generated from.
    """


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(MIGRATIONS_FOLDER))
prodready = ProdReady()
pages = Blueprint("pages", __name__)


class PageCounter(Base):
    """How many times a page was shown, across all sessions and workers."""

    __tablename__ = "page_counter"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)


class LivenessMiddleware:
    """Answers ``GET``/``HEAD`` on ``path`` with ``200 ok`` before anything it wraps.

    Installed around everything else, so that a liveness probe neither counts as
    traffic for flask-prodready's live checks nor meets ``TRUSTED_HOSTS``; ``app`` is
    the wrapped WSGI app, where flask-prodready's proxy checks continue their walk.
    """

    def __init__(self, app: WSGIApplication, path: str = LIVENESS_PATH) -> None:
        self.app = app
        self.path = path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO") != self.path or method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        body = b"ok\n"
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [] if method == "HEAD" else [body]


def sqlite_file(database_uri: str, instance_path: str) -> Path | None:
    """The file behind a SQLite URL (relative paths are in the instance folder, as
    Flask-SQLAlchemy resolves them); ``None`` for an in-memory database.

    ``ValueError`` when the URL is not SQLite at all.
    """
    url = make_url(database_uri)
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"{url.get_backend_name()} is not SQLite")
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    path = Path(database)
    return path if path.is_absolute() else Path(instance_path) / path


@prodready.check(
    "example.database_file",
    level="warning",
    title="The SQLite database file and its folder are writable",
    tags=["database"],
    hint="Create the folder and give the user the server runs as write access to it "
    "(SQLite also writes a journal file next to the database).",
)
def check_database_file(ctx: CheckContext) -> Iterator[Finding]:
    """Warn when SQLite could not write its database: the first write would fail with
    "attempt to write a readonly database" or "unable to open database file", in
    production, on the first visitor, not at deploy time.
    """
    uri = str(ctx.config.get("SQLALCHEMY_DATABASE_URI") or "")
    if not uri:
        ctx.skip("SQLALCHEMY_DATABASE_URI is not set")
    try:
        path = sqlite_file(uri, ctx.app.instance_path)
    except ValueError as error:
        ctx.skip(f"the database is not SQLite ({error}): there is no file to check")
    if path is None:
        ctx.skip("the SQLite database is in memory: there is no file to check")
    folder = path.parent
    if not folder.is_dir():
        yield ctx.finding(
            f"The folder of the SQLite database, {folder}, does not exist.",
            observed={"folder": str(folder)},
        )
        return
    if not os.access(folder, os.W_OK | os.X_OK):
        yield ctx.finding(
            f"The folder of the SQLite database, {folder}, is not writable by this process.",
            observed={"folder": str(folder)},
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        yield ctx.finding(
            f"The SQLite database {path} is not readable and writable by this process.",
            observed={"file": str(path)},
        )


@pages.route("/")
def index() -> str:
    """The home page: this session's visit count and everyone's, from the database."""
    visits = int(session.get("visits", 0)) + 1
    session["visits"] = visits
    return render_template("index.html", visits=visits, total=count_visit(HOME_COUNTER))


def count_visit(name: str) -> int:
    """Add one to the counter ``name``, creating its row on the first visit; the new count.

    The row is created here rather than at start-up, so that production's start-up never
    touches the database. Two workers may create it at once: the loser's insert fails on
    the primary key, and it simply counts on the winner's row.
    """
    if db.session.get(PageCounter, name) is None:
        db.session.add(PageCounter(name=name, hits=0))
        try:
            db.session.commit()
        except exc.IntegrityError:
            db.session.rollback()
    db.session.execute(
        update(PageCounter).where(PageCounter.name == name).values(hits=PageCounter.hits + 1)
    )
    db.session.commit()
    return db.session.scalar(select(PageCounter.hits).where(PageCounter.name == name)) or 0


def add_security_headers(response: Response) -> Response:
    """Add the configured ``SECURITY_HEADERS`` the response does not already carry.

    An ``after_request`` hook runs for every response of the app, error pages included,
    and before flask-prodready records it, so the ``headers.*`` checks see them; a view
    that needs another policy sets its own header, which is kept.
    """
    for name, value in current_app.config["SECURITY_HEADERS"].items():
        response.headers.setdefault(name, value)
    return response


def create_tables_if_new(app: Flask) -> bool:
    """Create the tables on a database that has none yet and stamp it at the migrations
    head; ``True`` when it did.

    For development and tests only: ``flask run`` works on a fresh checkout, and the
    Alembic version table says the schema is at the head, so ``flask db upgrade``
    applies later migrations on top. A database that already has tables is left alone:
    ``flask db upgrade`` is how it changes (``database.migrations`` says when it is
    behind). Alembic's ``MigrationContext`` stamps without running ``env.py``, which
    would reconfigure the process's logging.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with app.app_context(), db.engine.begin() as connection:
        if inspect(connection).get_table_names():
            return False
        Base.metadata.create_all(connection)
        context = MigrationContext.configure(connection)
        context.stamp(ScriptDirectory(str(MIGRATIONS_FOLDER)), "heads")
    return True


def init_sentry(options: dict[str, Any]) -> None:
    """``sentry_sdk.init(**options)``; a clear error when sentry-sdk is not installed.

    A DSN that cannot be honoured is a broken deploy: it fails at start-up rather than
    leaving errors unreported in silence.
    """
    try:
        import sentry_sdk
    except ImportError as error:
        raise RuntimeError(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install sentry-sdk"
        ) from error
    sentry_sdk.init(**options)


def create_app(config_name: str | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the app with the configuration ``config_name`` (default: ``FLASK_CONFIG``,
    then ``development``) and install ProdReady.

    ``instance_path`` overrides ``EXAMPLE_INSTANCE_PATH`` and Flask's default instance
    folder; the folder is created if missing, since the default SQLite file lives there.
    Development and testing create the tables of a new database (see
    :func:`create_tables_if_new`); production touches no database at start-up, and
    expects ``flask --app example_app db upgrade`` to have run.
    """
    name = config_name if config_name is not None else os.environ.get("FLASK_CONFIG")
    config = config_class(name)
    instance = instance_path or os.environ.get(INSTANCE_PATH_VARIABLE) or None
    app = Flask(__name__, instance_path=None if instance is None else os.path.abspath(instance))
    app.config.from_object(config)
    app.config.update(config.from_environment(os.environ, app.instance_path))
    os.makedirs(app.instance_path, exist_ok=True)

    sentry = sentry_options(os.environ, config.NAME)
    if sentry is not None:
        init_sentry(sentry)
    # Flask's default handler writes to the request's wsgi.errors or stderr, with time and
    # level: gunicorn's error log, systemd's journal and `kubectl logs` collect it.
    app.logger.setLevel(app.config["LOG_LEVEL"])

    db.init_app(app)
    migrate.init_app(app, db)
    app.register_blueprint(pages)
    app.after_request(add_security_headers)
    hops = int(app.config["PROXY_HOPS"])
    if hops:
        # Inside flask-prodready's middleware, so what it records is the client's address
        # and scheme; one hop per proxy that sets the headers (nginx: 1).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops
        )
    prodready.init_app(app)
    app.wsgi_app = LivenessMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    if app.config["CREATE_TABLES_AT_START"] and create_tables_if_new(app):
        app.logger.info("Created the tables of a new database, stamped at the migrations head.")
    return app
