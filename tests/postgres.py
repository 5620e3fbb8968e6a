"""A throwaway PostgreSQL for the database tests, and what goes with it.

``postgres`` (session) initialises a cluster in a new temporary folder, starts it on a
free loopback port with ``fsync=off``, creates two login roles with passwords (a
superuser and a least-privilege owner), and stops it by its PID at the end. When the
tests run as root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` OS user (initdb
refuses root), in a folder owned by that user. Administration goes through the cluster's
unix socket (trust); the apps under test connect over TCP with a password, so a wrong
password fails as it would in production.

Also here: a fresh database per test (``pg_database``), a TCP listener that accepts and
never answers (``blackhole``), and a small Flask project with Flask-SQLAlchemy,
Flask-Migrate and ProdReady whose migrations folder is made by ``flask db init`` and
``flask db migrate`` (``migrations_template``). Import the fixtures into a conftest with
``from tests.postgres import ...  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from .loopback import require_loopback_host, require_postgres_listen_addresses
from .stacks import PG_DRIVER
from .support import GOOD_CONFIG

HOST = "127.0.0.1"
#: The settings the pool_budget tests count with, set explicitly so the numbers hold.
MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
#: Bounds for every process started here.
COMMAND_TIMEOUT = 60.0
PG_CTL_WAIT = 30
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Role:
    """A login role of the test cluster."""

    name: str
    password: str


@dataclass
class PostgresServer:
    """One running PostgreSQL cluster on loopback, stopped with :meth:`stop`."""

    folder: Path
    port: int
    bin_dir: Path
    superuser: Role
    owner: Role
    running: bool = False
    _counter: list[int] = field(default_factory=lambda: [0])

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    def _command(self, *args: str) -> list[str]:
        """A command that runs as the ``postgres`` OS user when the tests run as root."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(*args),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            cwd=self.folder,
        )

    def start(self) -> None:
        """Start the cluster (again) on its port and wait until it accepts connections."""
        options = (
            f"-h {require_postgres_listen_addresses(HOST)} -p {self.port} -k {self.folder} "
            f"-c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={MAX_CONNECTIONS} "
            f"-c superuser_reserved_connections={SUPERUSER_RESERVED}"
        )
        done = self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(PG_CTL_WAIT),
            "-o",
            options,
            "start",
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({done.returncode}): {done.stdout}{done.stderr}"
                f"{self.log_tail()}"
            )
        self.running = True

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); if pg_ctl cannot, kill the postmaster by PID."""
        if not self.running:
            return
        done = self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(PG_CTL_WAIT),
            "stop",
        )
        if done.returncode != 0:
            pid = self.postmaster_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.running = False

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n" + self.log_file.read_text(errors="replace")[-2000:]
        return ""

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run ``sql`` as the cluster's ``postgres`` superuser over the unix socket."""
        import psycopg

        with psycopg.connect(
            host=str(self.folder),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            cursor = connection.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []

    def url(
        self,
        role: Role,
        database: str,
        *,
        driver: str = PG_DRIVER,
        host: str = HOST,
        port: int | None = None,
        **query: Any,
    ) -> str:
        """The SQLAlchemy URL of ``database`` as ``role`` over TCP (with the driver the
        installed SQLAlchemy has a dialect for, unless given)."""
        require_loopback_host(host, "PostgreSQL URL")
        suffix = f"?{urlencode(query)}" if query else ""
        port = self.port if port is None else port
        return f"{driver}://{role.name}:{role.password}@{host}:{port}/{database}{suffix}"

    def create_database(self, owner: Role | None = None) -> str:
        """A new empty database owned by ``owner`` (the least-privilege role by default)."""
        self._counter[0] += 1
        name = f"prodready_{os.getpid()}_{self._counter[0]}"
        self.admin(f'CREATE DATABASE "{name}" OWNER "{(owner or self.owner).name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's server binaries, or a failure saying what to install."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pytest.fail("PostgreSQL's server is not installed: apt-get install -y postgresql")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((require_loopback_host(HOST, "free_port"), 0))
        port: int = sock.getsockname()[1]
        return port


def start_postgres(label: str) -> PostgresServer:
    """Initialise and start a cluster with the two test roles; the caller must stop it."""
    bin_dir = postgres_bin_dir()
    # Not under pytest's tmp_path: its parent is private to root, and the postgres user
    # must reach the data folder and the socket.
    folder = Path(tempfile.mkdtemp(prefix=f"prodready-{label}-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(
        folder=folder,
        port=free_port(),
        bin_dir=bin_dir,
        superuser=Role("prodready_admin", "admin-" + secrets.token_urlsafe(18)),
        owner=Role("prodready_owner", "owner-" + secrets.token_urlsafe(18)),
    )
    try:
        done = server._run(
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        for attempt in range(START_ATTEMPTS):
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == START_ATTEMPTS - 1:
                    raise
                server.port = free_port()  # somebody took the port meanwhile
        server.admin(
            f"CREATE ROLE {server.superuser.name} LOGIN SUPERUSER "
            f"PASSWORD '{server.superuser.password}'"
        )
        server.admin(
            f"CREATE ROLE {server.owner.name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"PASSWORD '{server.owner.password}'"
        )
    except BaseException:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def running_postgres(label: str) -> Iterator[PostgresServer]:
    """A cluster for the duration of the block, stopped and deleted afterwards."""
    server = start_postgres(label)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


#: The session's shared cluster and migrations folder. conftest files of several folders
#: import the fixtures below, and pytest then keeps one session fixture per folder; these
#: make them share one cluster, stopped when the last of them is torn down.
_shared: dict[str, Any] = {}
_users = [0]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL shared by the whole session (never stopped by a test)."""
    if "server" not in _shared:
        _shared["server"] = start_postgres("pg")
    _users[0] += 1
    try:
        yield _shared["server"]
    finally:
        _users[0] -= 1
        if _users[0] == 0:
            server = _shared.pop("server")
            server.stop()
            shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database owned by the least-privilege role, dropped after the test."""
    name = postgres.create_database()
    yield name
    postgres.drop_database(name)


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """(host, port) of a TCP listener that completes the handshake and never says a word.

    Nothing calls ``accept``: the kernel queues the connections, the client sends its
    first packet into the void and waits, as with a hung database host.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((require_loopback_host(HOST, "blackhole"), 0))
        listener.listen(64)
        yield HOST, listener.getsockname()[1]


# --- a project using Flask-SQLAlchemy and Flask-Migrate ----------------------------------

#: The app module of the test project: everything comes from the environment, so one
#: file serves every configuration (``DBAPP_CONFIG`` is a JSON object of config keys).
DBAPP_SOURCE = '''
"""A small app with one model, Flask-SQLAlchemy, Flask-Migrate and ProdReady."""

import json
import os
import threading

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_prodready import ProdReady

db = SQLAlchemy()


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(200), nullable=False)


def create_app():
    app = Flask(__name__)
    app.config.update(json.loads(os.environ["DBAPP_CONFIG"]))
    db.init_app(app)
    Migrate(app, db, directory=os.environ.get("DBAPP_MIGRATIONS", "migrations"))
    ProdReady(app)

    @app.get("/ping")
    def ping():
        return "pong"

    @app.get("/threads")
    def threads():
        """How many threads flask-prodready's database checks hold in this worker."""
        names = [t.name for t in threading.enumerate()]
        return str(sum(name.startswith("prodready:database.") for name in names))

    return app
'''


def project_environment(
    project: Path, config: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a process of the test project, configured by ``config``.

    The outer ``FLASK_*``, ``PRODREADY_*``, ``WEB_CONCURRENCY`` and libpq variables are
    dropped: they would change what the app under test sees.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "PRODREADY_", "PG", "GUNICORN"))
        and k not in ("SECRET_KEY", "WEB_CONCURRENCY", "DATABASE_URL")
    }
    env["PYTHONPATH"] = str(project)
    env["DBAPP_CONFIG"] = json.dumps({**GOOD_CONFIG, **config})
    env.update(extra or {})
    return env


def run_project(
    project: Path,
    *args: str,
    config: Mapping[str, Any],
    extra: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``python -m flask --app dbapp ARGS`` in ``project``, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "dbapp", *args],
        cwd=project,
        env=project_environment(project, config, extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_project(folder: Path, migrations: Path | None = None) -> Path:
    """A project folder holding ``dbapp.py`` and, if given, a copy of ``migrations``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("[project]\nname = 'dbapp'\n")
    (folder / "dbapp.py").write_text(textwrap.dedent(DBAPP_SOURCE).lstrip())
    if migrations is not None:
        shutil.copytree(migrations, folder / "migrations", ignore=shutil.ignore_patterns("*.pyc"))
    return folder


@pytest.fixture(scope="session")
def migrations_template(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrations folder made by ``flask db init`` and ``flask db migrate`` (one revision
    creating the ``note`` table); tests copy it, never change it."""
    if "migrations" in _shared:
        made: Path = _shared["migrations"]
        return made
    project = make_project(tmp_path_factory.mktemp("dbapp-template"))
    database = postgres.create_database()
    config = {"SQLALCHEMY_DATABASE_URI": postgres.url(postgres.owner, database)}
    try:
        for args in (("db", "init"), ("db", "migrate", "-m", "create note")):
            done = run_project(project, *args, config=config)
            if done.returncode != 0:
                pytest.fail(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    finally:
        postgres.drop_database(database)
    versions = list((project / "migrations" / "versions").glob("*.py"))
    assert len(versions) == 1, versions
    _shared["migrations"] = project / "migrations"
    return project / "migrations"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
