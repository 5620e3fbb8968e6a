"""A throwaway PostgreSQL on loopback for the cold report, stopped by its PID.

As in the test suite (tests/postgres.py): ``initdb`` refuses root, so when this runs as
root the server's commands run as the ``postgres`` OS user, in a temporary folder owned by
it. The app connects over TCP with a password as a least-privilege owner role;
administration goes through the cluster's unix socket.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .common import HOST, BenchError, free_port, loopback

#: Bounds for every command run here, and for the server's start and stop.
COMMAND_TIMEOUT = 60.0
PG_CTL_WAIT = 30
STOP_WAIT = 10.0
OWNER = "bench_owner"
DATABASE = "bench"


@dataclass
class Postgres:
    folder: Path
    port: int
    bin_dir: Path
    password: str
    pid: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self) -> str:
        """The SQLAlchemy URL of the bench database, as its owner, over TCP."""
        return f"postgresql+psycopg://{OWNER}:{self.password}@{HOST}:{self.port}/{DATABASE}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
                cwd=self.folder,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{args[0]} did not finish within {COMMAND_TIMEOUT:g} s") from exc

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.folder),
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            connection.execute(sql.encode())

    def log_tail(self) -> str:
        try:
            return (self.folder / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def bin_dir() -> Path:
    """The newest installed PostgreSQL's server binaries."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise BenchError("PostgreSQL's server is not installed (Debian: apt-get install -y postgresql)")


def _start(server: Postgres) -> None:
    options = f"-h {loopback(HOST)} -p {server.port} -k {server.folder} -c fsync=off"
    done = server.run(
        str(server.bin_dir / "pg_ctl"),
        "-D",
        str(server.data_dir),
        "-l",
        str(server.folder / "postgres.log"),
        "-w",
        "-t",
        str(PG_CTL_WAIT),
        "-o",
        options,
        "start",
    )
    if done.returncode != 0:
        raise BenchError(f"pg_ctl start failed: {done.stdout}{done.stderr}{server.log_tail()}")
    # The postmaster's id, to stop it by PID whatever pg_ctl does.
    server.pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(server: Postgres) -> None:
    """``pg_ctl stop -m fast``, then SIGKILL the postmaster by PID if it is still there."""
    if server.pid is None:
        return
    with contextlib.suppress(BenchError):
        server.run(
            str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-m", "fast", "-w", "stop"
        )
    deadline = time.monotonic() + STOP_WAIT
    while _alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    server.pid = None


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A cluster with a bench database owned by a password role, stopped and deleted after."""
    folder = Path(tempfile.mkdtemp(prefix="prodready-bench-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = Postgres(folder, free_port(), bin_dir(), "owner-" + secrets.token_urlsafe(18))
    try:
        done = server.run(
            str(server.bin_dir / "initdb"),
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
            raise BenchError(f"initdb failed: {done.stdout}{done.stderr}")
        for attempt in range(3):
            try:
                _start(server)
                break
            except BenchError:
                if attempt == 2:
                    raise
                server.port = free_port()  # somebody took the port meanwhile
        server.admin(
            f"CREATE ROLE {OWNER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"PASSWORD '{server.password}'"
        )
        server.admin(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
        yield server
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _stop(server)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
