"""server.*: the server process and gunicorn's settings (unit level; real gunicorn and
`flask run` are in tests/integration/test_live_runtime.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine.server import GunicornSettings, available_cpus, load_gunicorn_config

from ..stacks import flask_sqlalchemy_engines
from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]


def gunicorn_file(tmp_path: Path, body: str) -> GunicornSettings:
    """Settings read from a real gunicorn config file by gunicorn's own loader."""
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(body)
    return load_gunicorn_config(str(path))


class TestDevServer:
    def test_fires_under_werkzeug(self, make_app: MakeApp) -> None:
        """A report served through Werkzeug's development server is critical."""
        app = make_app()
        assert messages_of(app, "server.dev_server", "live", server_software="Werkzeug/3.1.3") == [
            (
                "critical",
                "The app is served by the Werkzeug development server (Werkzeug/3.1.3): single "
                "process, not hardened, not meant for production traffic.",
            )
        ]

    def test_quiet_under_gunicorn(self, make_app: MakeApp) -> None:
        """gunicorn is not the development server."""
        app = make_app()
        assert messages_of(app, "server.dev_server", "live", server_software="gunicorn/23.0") == []

    def test_skipped_from_the_cli(self, make_app: MakeApp) -> None:
        """From the CLI nothing serves the app: skipped, not passed."""
        assert outcome_of(make_app(), "server.dev_server").status.value == "skipped"


class TestRoot:
    def test_fires_as_root(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """A server process with uid 0 is an error."""
        monkeypatch.setattr("flask_prodready.checks.server.os.geteuid", lambda: 0)
        [(level, message)] = messages_of(make_app(), "server.root", "live")
        assert level == "error"
        assert message.endswith("runs as root: a code-execution bug owns the whole host.")

    def test_quiet_as_a_user(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unprivileged uid passes."""
        monkeypatch.setattr("flask_prodready.checks.server.os.geteuid", lambda: 1000)
        assert messages_of(make_app(), "server.root", "live") == []


class TestGunicornChecks:
    def test_bad_file_fires_bind_workers_timeout(self, make_app: MakeApp, tmp_path: Path) -> None:
        """bind 0.0.0.0, 1 worker and timeout 0 in a gunicorn file are each reported."""
        settings = gunicorn_file(tmp_path, "bind = '0.0.0.0:8000'\nworkers = 1\ntimeout = 0\n")
        app = make_app()
        cpus = available_cpus()
        assert messages_of(app, "server.bind_public", gunicorn=settings) == [
            (
                "warning",
                "gunicorn binds to all interfaces (0.0.0.0:8000, from gunicorn.conf.py): clients "
                "can bypass the proxy and its TLS, limits and headers.",
            )
        ]
        assert messages_of(app, "server.workers", gunicorn=settings) == [
            (
                "warning",
                "gunicorn runs 1 worker (from gunicorn.conf.py): one slow or crashed request "
                f"stalls the whole app; {cpus} CPUs on this machine suggest {2 * cpus + 1}.",
            )
        ]
        assert messages_of(app, "server.timeout", gunicorn=settings) == [
            (
                "warning",
                "gunicorn's timeout is 0 (from gunicorn.conf.py): a stuck request holds its "
                "worker forever.",
            )
        ]

    def test_good_file_is_quiet(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Loopback bind, a fitting worker count, timeout 30, max_requests with jitter pass."""
        workers = 2 * available_cpus() + 1
        settings = gunicorn_file(
            tmp_path,
            f"bind = '127.0.0.1:8000'\nworkers = {workers}\ntimeout = 30\n"
            "max_requests = 1000\nmax_requests_jitter = 100\n",
        )
        app = make_app()
        for check_id in (
            "server.bind_public",
            "server.workers",
            "server.timeout",
            "server.max_requests_jitter",
        ):
            assert messages_of(app, check_id, gunicorn=settings) == [], check_id

    def test_far_too_many_workers_and_long_timeout(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Far more workers than CPUs, and a timeout over 120 s, are reported."""
        workers = 2 * (2 * available_cpus() + 1) + 1
        settings = gunicorn_file(tmp_path, f"workers = {workers}\ntimeout = 300\n")
        app = make_app()
        [(_, workers_message)] = messages_of(app, "server.workers", gunicorn=settings)
        assert workers_message.startswith(f"gunicorn runs {workers} workers")
        [(_, timeout_message)] = messages_of(app, "server.timeout", gunicorn=settings)
        assert "timeout is 300 s" in timeout_message

    def test_max_requests_without_jitter(self, make_app: MakeApp, tmp_path: Path) -> None:
        """max_requests without jitter is info."""
        settings = gunicorn_file(tmp_path, "max_requests = 500\n")
        assert messages_of(make_app(), "server.max_requests_jitter", gunicorn=settings) == [
            (
                "info",
                "gunicorn restarts workers every 500 requests without jitter (from "
                "gunicorn.conf.py): they tend to restart together.",
            )
        ]

    @pytest.mark.parametrize("bind", ["[::]:8000", ":8000", "0.0.0.0", "tcp://0.0.0.0:8000"])
    def test_every_all_interfaces_form(self, make_app: MakeApp, tmp_path: Path, bind: str) -> None:
        """Every way of saying 'all interfaces' is public."""
        settings = gunicorn_file(tmp_path, f"bind = {bind!r}\n")
        assert len(messages_of(make_app(), "server.bind_public", gunicorn=settings)) == 1

    def test_unix_socket_is_quiet(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A unix socket behind the proxy passes."""
        settings = gunicorn_file(tmp_path, "bind = 'unix:/run/app.sock'\n")
        assert messages_of(make_app(), "server.bind_public", gunicorn=settings) == []

    def test_web_concurrency_counts_as_gunicorn_does(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """WEB_CONCURRENCY sets the worker count when the file does not."""
        monkeypatch.setenv("WEB_CONCURRENCY", "4")
        path = tmp_path / "empty.conf.py"
        path.write_text("timeout = 30\n")
        # gunicorn reads WEB_CONCURRENCY when its config module is first imported; the
        # loader must see the variable as gunicorn would at start-up.
        import subprocess
        import sys

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from flask_prodready.engine.server import load_gunicorn_config as l;"
                f"print(l({str(path)!r}).workers)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert done.stdout.strip() == "4"

    def test_skips_without_settings(self, make_app: MakeApp) -> None:
        """Without --gunicorn-config the CLI skips, saying how to judge."""
        outcome = outcome_of(make_app(), "server.workers")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pass --gunicorn-config FILE to judge gunicorn's settings from the command line",
        )

    def test_bad_gunicorn_file_is_one_clear_error(self, tmp_path: Path) -> None:
        """A gunicorn file with a bad value raises ValueError naming it, with no output."""
        with pytest.raises(ValueError, match="Invalid value for workers: lots"):
            gunicorn_file(tmp_path, "workers = 'lots'\n")


PG_URL = "postgresql+psycopg2://app:secret@127.0.0.1:5432/shop"
LABEL = "the default database (postgresql://127.0.0.1:5432/shop)"


@pytest.fixture
def db_app(make_app: MakeApp) -> Iterator[Callable[..., Flask]]:
    """An app whose Flask-SQLAlchemy default database is ``url`` (no connection made)."""
    from flask_sqlalchemy import SQLAlchemy

    made: list[tuple[SQLAlchemy, Flask]] = []

    def factory(url: str = PG_URL) -> Flask:
        app = make_app(SQLALCHEMY_DATABASE_URI=url)
        db = SQLAlchemy()
        db.init_app(app)
        made.append((db, app))
        return app

    yield factory
    for db, app in made:  # Flask-SQLAlchemy 2.x and 3.x keep their engines differently
        for engine in flask_sqlalchemy_engines(db, app):
            engine.dispose()


@pytest.fixture
def psycogreen_patched() -> Iterator[None]:
    """psycopg2's wait callback set by psycogreen for the test, unset after."""
    import psycopg2.extensions
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(None)


def mysql_app(make_app: MakeApp, driver: str) -> Flask:
    """An app handing over a MySQL engine on ``driver`` (a stand-in DBAPI, never connected)."""
    import sqlalchemy

    module = SimpleNamespace(paramstyle="format", version_info=(1, 1, 0), Error=Exception)
    engine = sqlalchemy.create_engine(f"mysql+{driver}://app:secret@127.0.0.1/shop", module=module)
    extension = ProdReady()
    app = make_app(extension)
    extension.add_engine(engine, name="main")
    return app


class TestWorkerClass:
    @pytest.mark.parametrize(
        ("spelling", "name", "fix"),
        [
            ("gevent", "gevent", "gevent"),
            ("gunicorn.workers.ggevent.GeventWorker", "gevent", "gevent"),
            ("gevent_pywsgi", "gevent_pywsgi", "gevent"),
            ("eventlet", "eventlet", "eventlet"),
            ("gunicorn.workers.geventlet.EventletWorker", "eventlet", "eventlet"),
        ],
    )
    def test_green_worker_with_unpatched_psycopg2_fires(
        self, db_app: Callable[..., Flask], tmp_path: Path, spelling: str, name: str, fix: str
    ) -> None:
        """Every spelling of gevent and eventlet with a bare psycopg2 is reported, live."""
        settings = gunicorn_file(tmp_path, f"worker_class = {spelling!r}\n")
        assert messages_of(db_app(), "server.worker_class", "live", gunicorn=settings) == [
            (
                "warning",
                f"gunicorn's {name} worker (from gunicorn.conf.py) runs its requests as greenlets "
                f"of one thread, and {LABEL} talks to its database through psycopg2 with no "
                "wait callback set (nothing like psycogreen patches it): each query stalls "
                f"every request of the worker; call psycogreen.{fix}.patch_psycopg() in "
                "gunicorn's post_fork hook, or run the sync or gthread worker.",
            )
        ]

    def test_psycogreen_patch_is_quiet(
        self, db_app: Callable[..., Flask], tmp_path: Path, psycogreen_patched: None
    ) -> None:
        """psycopg2 with psycogreen's wait callback cooperates with gevent: quiet."""
        settings = gunicorn_file(tmp_path, "worker_class = 'gevent'\n")
        assert messages_of(db_app(), "server.worker_class", "live", gunicorn=settings) == []

    @pytest.mark.parametrize("body", ["worker_class = 'sync'\n", "threads = 4\n"])
    def test_sync_and_gthread_with_psycopg2_are_quiet(
        self, db_app: Callable[..., Flask], tmp_path: Path, body: str
    ) -> None:
        """A blocking driver is right under the sync and gthread workers."""
        settings = gunicorn_file(tmp_path, body)
        assert messages_of(db_app(), "server.worker_class", "live", gunicorn=settings) == []

    def test_patch_state_is_not_judged_from_the_cli(
        self, db_app: Callable[..., Flask], tmp_path: Path
    ) -> None:
        """From the CLI the server's patch state is unknown: a gevent file alone passes."""
        settings = gunicorn_file(tmp_path, "worker_class = 'gevent'\n")
        assert messages_of(db_app(), "server.worker_class", gunicorn=settings) == []

    def test_psycopg3_is_quiet(self, db_app: Callable[..., Flask], tmp_path: Path) -> None:
        """psycopg 3 waits cooperatively under gevent by itself: quiet."""
        settings = gunicorn_file(tmp_path, "worker_class = 'gevent'\n")
        app = db_app("postgresql+psycopg://app:secret@127.0.0.1:5432/shop")
        assert messages_of(app, "server.worker_class", "live", gunicorn=settings) == []

    def test_pymysql_fires_until_gevent_patches_socket(
        self, make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """pymysql is reported over an unpatched socket module and quiet once it is patched."""
        settings = gunicorn_file(tmp_path, "worker_class = 'gevent'\n")
        app = mysql_app(make_app, "pymysql")
        monkey = SimpleNamespace(is_module_patched=lambda name: False)
        monkeypatch.setitem(sys.modules, "gevent.monkey", monkey)
        [(level, message)] = messages_of(app, "server.worker_class", "live", gunicorn=settings)
        assert level == "warning"
        assert "the engine 'main' (mysql://127.0.0.1/shop) talks to its database through " in (
            message
        )
        assert "pymysql over a socket module gevent has not patched" in message
        monkeypatch.setattr(monkey, "is_module_patched", lambda name: name == "socket")
        assert messages_of(app, "server.worker_class", "live", gunicorn=settings) == []

    def test_mysqlclient_always_fires(
        self, make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """mysqlclient is a C driver: reported even with every module patched."""
        settings = gunicorn_file(tmp_path, "worker_class = 'gevent'\n")
        monkeypatch.setitem(
            sys.modules, "gevent.monkey", SimpleNamespace(is_module_patched=lambda name: True)
        )
        [(_, message)] = messages_of(
            mysql_app(make_app, "mysqldb"), "server.worker_class", "live", gunicorn=settings
        )
        assert "mysqlclient (MySQLdb), a C driver no monkey patch reaches" in message
        assert message.endswith(
            "use pymysql (patched by gevent), or run the sync or gthread worker."
        )

    @pytest.mark.parametrize("worker_class", ["gevent", "eventlet", "tornado", "asgi"])
    def test_threads_under_a_class_that_ignores_them(
        self, make_app: MakeApp, tmp_path: Path, worker_class: str
    ) -> None:
        """threads > 1 under a worker class other than gthread and sync is reported."""
        settings = gunicorn_file(tmp_path, f"worker_class = {worker_class!r}\nthreads = 4\n")
        assert messages_of(make_app(), "server.worker_class", gunicorn=settings) == [
            (
                "warning",
                f"gunicorn's {worker_class} worker ignores threads = 4 (from gunicorn.conf.py): "
                "only the gthread worker runs requests on threads.",
            )
        ]

    @pytest.mark.parametrize(
        "body",
        [
            "worker_class = 'gthread'\nthreads = 4\n",
            "worker_class = 'sync'\nthreads = 4\n",
            "worker_class = 'gunicorn.workers.sync.SyncWorker'\nthreads = 4\n",
            "worker_class = 'gevent'\nthreads = 1\n",
        ],
    )
    def test_threads_where_they_count_are_quiet(
        self, make_app: MakeApp, tmp_path: Path, body: str
    ) -> None:
        """threads with gthread (or sync, which gunicorn turns into gthread) pass."""
        settings = gunicorn_file(tmp_path, body)
        assert messages_of(make_app(), "server.worker_class", gunicorn=settings) == []

    def test_full_class_names_are_gunicorns_short_names(self, tmp_path: Path) -> None:
        """A worker class given by its full class name reads as gunicorn's short name."""
        settings = gunicorn_file(
            tmp_path, "worker_class = 'gunicorn.workers.gthread.ThreadWorker'\n"
        )
        assert settings.worker_class == "gthread"

    @pytest.mark.parametrize(
        ("software", "reason"),
        [
            ("waitress", "served by waitress, not gunicorn"),
            ("Werkzeug/3.1.3", "served by Werkzeug/3.1.3, not gunicorn"),
            ("Frobnicator/2.0", "unknown server 'Frobnicator/2.0', not gunicorn"),
        ],
    )
    def test_skips_under_another_server(
        self, make_app: MakeApp, software: str, reason: str
    ) -> None:
        """Live under another server the check skips, naming that server."""
        outcome = outcome_of(make_app(), "server.worker_class", "live", server_software=software)
        assert (outcome.status.value, outcome.reason) == ("skipped", reason)

    def test_skips_from_the_cli_without_settings(self, make_app: MakeApp) -> None:
        """From the CLI without --gunicorn-config it skips, saying how to judge."""
        outcome = outcome_of(make_app(), "server.worker_class")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pass --gunicorn-config FILE to judge gunicorn's settings from the command line",
        )
