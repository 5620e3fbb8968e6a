"""gunicorn servers started and stopped by PID, and what /proc tells about them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import HOST, BenchError, free_port, http_get, loopback

#: Seconds a server gets to answer its first request.
START_TIMEOUT = 30.0
#: Start attempts per server (a free port can be taken between choosing and binding).
START_ATTEMPTS = 3
#: Seconds a server gets to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT = 10.0
#: gunicorn's own bound on a graceful stop (its default is 30 s).
GRACEFUL_TIMEOUT = 5
#: Sync workers per app under load.
WORKERS_DEFAULT = 2


@dataclass
class Server:
    """One gunicorn master started by this suite, leading its own process group."""

    name: str
    module: str
    port: int
    workers: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def alive(self) -> bool:
        return self.process.poll() is None


#: Every server started and not yet stopped, for the final clean-up.
_started: list[Server] = []

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent id, CPU seconds in user and system mode) of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def worker_pids(server: Server) -> frozenset[int]:
    """The ids of the master's children (its workers), from /proc."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] == server.pid:
                found.add(int(entry.name))
    return frozenset(found)


def server_cpu(server: Server) -> tuple[float, frozenset[int]] | None:
    """CPU seconds used so far by a gunicorn master and its workers, and the workers' ids."""
    master = _proc_stat(server.pid)
    if master is None:
        return None
    total = master[1]
    workers = set()
    for pid in worker_pids(server):
        stat = _proc_stat(pid)
        if stat is not None:
            total += stat[1]
            workers.add(pid)
    return total, frozenset(workers)


def vm_rss_kib(pid: int) -> int:
    """The resident set size of a process in KiB (``VmRSS`` of /proc/PID/status)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/status: {exc}") from exc
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no VmRSS line")


def gunicorn_command(
    module: str, port: int, folder: Path, log: Path, workers: int, extra: Sequence[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--no-control-socket",
        "-w",
        str(workers),
        "-k",
        "sync",
        "-b",
        f"{loopback(HOST)}:{port}",
        "--chdir",
        str(folder),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
        *extra,
        f"{module}:app",
    ]


def start_server(
    name: str,
    module: str,
    folder: Path,
    env: dict[str, str],
    *,
    workers: int = WORKERS_DEFAULT,
    ready_path: str = "/ok",
    extra: Sequence[str] = (),
) -> Server:
    """Start gunicorn and wait (bounded) until it answers ``ready_path`` and all its workers
    are forked; retry on a taken port."""
    last_error = ""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        log = folder / f"{name}-{attempt}.log"
        process = subprocess.Popen(
            gunicorn_command(module, port, folder, log, workers, extra),
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C reaches us, and we stop it
        )
        server = Server(name, module, port, workers, log, process)
        _started.append(server)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"gunicorn exited with {process.returncode}:\n{server.log_tail()}"
                break
            try:
                status, _, _ = http_get(port, ready_path, timeout=2.0)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200 and len(worker_pids(server)) == workers:
                return server
            last_error = f"GET {ready_path} answered {status}"
            time.sleep(0.1)
        else:
            last_error = (
                f"not ready within {START_TIMEOUT:g} s ({last_error}):\n{server.log_tail()}"
            )
        stop_server(server)
    raise BenchError(f"could not start the {name} app: {last_error}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_server(server: Server) -> None:
    """SIGTERM the master, SIGKILL its group after STOP_TIMEOUT; never raises."""
    process = server.process
    pgid = process.pid  # start_new_session: the master leads its own group
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
    # Workers that outlived their master (they stop by themselves, but not at once).
    deadline = time.monotonic() + STOP_TIMEOUT
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if server in _started:
        _started.remove(server)


def stop_all() -> None:
    for server in list(reversed(_started)):
        stop_server(server)


@contextlib.contextmanager
def stopping_at_exit() -> Iterator[None]:
    """Every server started inside the block is stopped on the way out, whatever happened.

    A second Ctrl-C cannot cut the clean-up short (it is bounded anyway).
    """
    try:
        yield
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)
