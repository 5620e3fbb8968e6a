"""What every part of the suite shares: the loopback address, errors, HTTP and facts."""

from __future__ import annotations

import http.client
import importlib.metadata
import ipaddress
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Every server listens, and every client connects, here and nowhere else.
HOST = "127.0.0.1"
REPOSITORY = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """The benchmark could not measure (a server did not start, wrk failed, ...)."""


def loopback(host: str) -> str:
    """``host`` when it is a loopback address (127.0.0.0/8, ::1 or ``localhost``), else
    BenchError naming it.

    Every bind of the suite goes through here: its servers carry load, tokens and a
    database with a password, and must not be reachable from the network, even for one
    run. (The test suite's :mod:`tests.loopback` judges whole nginx and gunicorn
    configurations; the benchmarks only ever bind ``HOST``.)
    """
    try:
        if host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise BenchError(f"{host!r} is not a loopback address: the benchmarks bind only to loopback")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((loopback(HOST), 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one GET on a new loopback connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        body = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return response.status, found, body
    finally:
        connection.close()


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without what would change the apps under test.

    ``FLASK_*``, ``PRODREADY_*``, libpq's ``PG*`` and gunicorn's variables are dropped;
    ``extra`` is added.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "PRODREADY_", "PG", "GUNICORN"))
        and key not in ("SECRET_KEY", "WEB_CONCURRENCY", "DATABASE_URL", "PYTHONPATH")
    }
    env.update(extra)
    return env


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def code_version() -> str:
    """The commit of the code under test, with "+changes" when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}+changes" if changed else head


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    packages = (
        "gunicorn",
        "flask",
        "werkzeug",
        "flask-prodready",
        "flask-sqlalchemy",
        "sqlalchemy",
        "psycopg",
        "flask-healthz",
        "py-healthcheck",
    )
    return {
        "nproc": usable if usable is not None else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: version(name) for name in packages},
        "code": code_version(),
        "loadavg_start": load_average(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
