"""A small but real Flask app that uses flask-prodready the way an application would.

``flask --app example_app run`` (development) or, in production,
``gunicorn example_app.wsgi:app`` with ``FLASK_CONFIG=production``. The configuration
comes from :mod:`example_app.config`; the instance folder (where the default SQLite
file lives) is Flask's usual one, or the folder named by ``EXAMPLE_INSTANCE_PATH`` so
that the demo and the tests can run in a throwaway folder.

It shows the three parts a user writes: ``ProdReady()`` at module level and
``init_app`` in the factory, one custom check of the app's own
(``example.database_file``), and an ordinary app around them (a page counting visits in
the session and in the database, a template and a static file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Flask, render_template, session
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, exc, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_prodready import CheckContext, Finding, ProdReady

from .config import config_class

__all__ = ["PageCounter", "create_app", "db", "prodready"]

#: Environment variable naming the instance folder (default: Flask's ``instance/``).
INSTANCE_PATH_VARIABLE = "EXAMPLE_INSTANCE_PATH"
#: The row of :class:`PageCounter` that counts visits of the home page.
HOME_COUNTER = "home"


class Base(DeclarativeBase):
    """The declarative base of the app's models.

    Models subclass it directly rather than ``db.Model`` (Flask-SQLAlchemy builds that
    class at run time, so a type checker cannot see it). Both share one ``metadata``,
    which is what ``db.create_all()`` creates.
    """


db = SQLAlchemy(model_class=Base)
prodready = ProdReady()
pages = Blueprint("pages", __name__)


class PageCounter(Base):
    """How many times a page was shown, across all sessions and workers."""

    __tablename__ = "page_counter"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)


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
    db.session.execute(
        update(PageCounter)
        .where(PageCounter.name == HOME_COUNTER)
        .values(hits=PageCounter.hits + 1)
    )
    db.session.commit()
    total = db.session.scalar(select(PageCounter.hits).where(PageCounter.name == HOME_COUNTER))
    return render_template("index.html", visits=visits, total=total or 0)


def _prepare_database() -> None:
    """Create the tables and the home page's counter row if they are missing.

    Several gunicorn workers start at once and may race to create the same table or
    row; the loser sees "already exists" or a duplicate key, and simply tries again
    (a few attempts, then the error is raised).
    """
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            db.create_all()
            if db.session.get(PageCounter, HOME_COUNTER) is None:
                db.session.add(PageCounter(name=HOME_COUNTER, hits=0))
                db.session.commit()
            return
        except (exc.OperationalError, exc.IntegrityError):
            db.session.rollback()
            if attempt == attempts:
                raise


def create_app(config_name: str | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the app with the configuration ``config_name`` (default: ``FLASK_CONFIG``,
    then ``development``), create its database tables and install ProdReady.

    ``instance_path`` overrides ``EXAMPLE_INSTANCE_PATH`` and Flask's default instance
    folder; the folder is created if missing, since the default SQLite file lives there.
    """
    name = config_name if config_name is not None else os.environ.get("FLASK_CONFIG")
    config = config_class(name)
    instance = instance_path or os.environ.get(INSTANCE_PATH_VARIABLE) or None
    app = Flask(__name__, instance_path=None if instance is None else os.path.abspath(instance))
    app.config.from_object(config)
    app.config.update(config.from_environment(os.environ, app.instance_path))
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    app.register_blueprint(pages)
    prodready.init_app(app)
    with app.app_context():
        _prepare_database()
    return app
