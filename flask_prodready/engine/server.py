"""Which WSGI server runs the app, and gunicorn's resolved settings.

Live: ``SERVER_SOFTWARE`` names the server (``gunicorn/23.0.0``, ``Werkzeug/3.1.3``,
``waitress``); inside a gunicorn worker, the worker object holds the configuration
gunicorn actually resolved (config file, command line, ``GUNICORN_CMD_ARGS``,
``WEB_CONCURRENCY``), found once per process with a ``gc`` scan. From the CLI,
``--gunicorn-config FILE`` is read with gunicorn's own loader, so it means what it
would mean to gunicorn. gunicorn is imported only when it is already running or a
config file is asked for.
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where cgroup v2 states the CPU quota of this process's group.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

GUNICORN = "gunicorn"
WERKZEUG = "werkzeug"
WAITRESS = "waitress"
UWSGI = "uwsgi"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class GunicornSettings:
    """The gunicorn settings the checks judge, and where they were read (for messages)."""

    workers: int
    threads: int
    worker_class: str
    worker_connections: int
    timeout: int
    bind: tuple[str, ...]
    max_requests: int
    max_requests_jitter: int
    forwarded_allow_ips: tuple[str, ...]
    preload_app: bool
    source: str

    @property
    def concurrency(self) -> int:
        """Requests one worker may serve at once (threads, or connections for async workers)."""
        if self.worker_class in {"sync"}:
            return 1
        if self.worker_class in {"gthread"}:
            return max(1, self.threads)
        return max(1, self.worker_connections)


def server_kind(software: str | None, environ: Any = None) -> str:
    """``gunicorn``, ``werkzeug``, ``waitress``, ``uwsgi`` or ``unknown`` from the environ."""
    text = (software or "").lower()
    if text.startswith("gunicorn"):
        return GUNICORN
    if text.startswith("werkzeug") or (environ is not None and "werkzeug.socket" in environ):
        return WERKZEUG
    if text.startswith("waitress"):
        return WAITRESS
    if "uwsgi" in text or (environ is not None and "uwsgi.version" in environ):
        return UWSGI
    return UNKNOWN


#: gunicorn's worker classes by class name, to their short names (``-k`` accepts either).
WORKER_CLASS_NAMES = {
    "syncworker": "sync",
    "threadworker": "gthread",
    "geventworker": "gevent",
    "geventpywsgiworker": "gevent_pywsgi",
    "eventletworker": "eventlet",
    "tornadoworker": "tornado",
    "asgiworker": "asgi",
}


def worker_class_name(uri: str) -> str:
    """gunicorn's short name of a worker class (``gunicorn.workers.ggevent.GeventWorker``
    -> ``gevent``); a class of the app's own keeps its lowercased class name."""
    name = uri.strip().lower().rsplit(".", 1)[-1]
    if name in WORKER_CLASS_NAMES:
        return WORKER_CLASS_NAMES[name]
    return name or "sync"


def _from_config(cfg: Any, source: str) -> GunicornSettings:
    worker_class = worker_class_name(str(getattr(cfg, "worker_class_str", "sync") or "sync"))
    if worker_class in {"sync", ""} and int(cfg.threads) > 1:
        worker_class = "gthread"  # gunicorn switches sync to gthread when threads > 1
    return GunicornSettings(
        workers=int(cfg.workers),
        threads=int(cfg.threads),
        worker_class=worker_class,
        worker_connections=int(cfg.worker_connections),
        timeout=int(cfg.timeout),
        bind=tuple(str(b) for b in (cfg.bind or [])),
        max_requests=int(cfg.max_requests),
        max_requests_jitter=int(cfg.max_requests_jitter),
        forwarded_allow_ips=tuple(str(ip) for ip in (cfg.forwarded_allow_ips or [])),
        preload_app=bool(cfg.preload_app),
        source=source,
    )


_live_lock = threading.Lock()
_live: dict[int, GunicornSettings | None] = {}


def live_gunicorn_settings() -> GunicornSettings | None:
    """The running gunicorn worker's settings (once per process), or ``None`` outside one."""
    pid = os.getpid()
    with _live_lock:
        if pid in _live:
            return _live[pid]
    found: GunicornSettings | None = None
    base = sys.modules.get("gunicorn.workers.base")
    worker_type = getattr(base, "Worker", None)
    if worker_type is not None:
        for obj in gc.get_objects():
            if isinstance(obj, worker_type) and getattr(obj, "cfg", None) is not None:
                found = _from_config(obj.cfg, "the running gunicorn")
                break
    with _live_lock:
        _live[pid] = found
    return found


class GunicornConfigError(ValueError):
    """A gunicorn config file gunicorn could not read. The message is one line, the last
    of what gunicorn printed; ``output`` is all of it, for a front end that masks secrets
    in the whole text before it picks a line (a secret may span lines)."""

    def __init__(self, path: str, output: str) -> None:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        super().__init__(
            f"could not read the gunicorn config {path}: {lines[-1] if lines else output}"
        )
        self.path = path
        self.output = output


def load_gunicorn_config(path: str) -> GunicornSettings:
    """Read a gunicorn config file with gunicorn's own loader; ``ValueError`` when it fails
    (:class:`GunicornConfigError` when gunicorn refused the file).

    gunicorn prints and exits on a bad file; both are caught and turned into one message.
    """
    try:
        from gunicorn.app.base import Application
    except ImportError:
        raise ValueError(
            "--gunicorn-config needs gunicorn installed (pip install 'flask-prodready[gunicorn]')"
        ) from None

    class _ConfigOnly(Application):  # type: ignore[misc]
        def __init__(self) -> None:  # no command line parsing, no app loading
            self.usage, self.prog, self.callable, self.logger = None, None, None, None

        def init(self, parser: Any, opts: Any, args: Any) -> None:
            return None

        def load(self) -> None:
            return None

    loader = _ConfigOnly()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            loader.load_default_config()
            loader.load_config_from_file(path)
    except (Exception, SystemExit) as exc:
        output = captured.getvalue()
        if not output.strip():
            output = f"{type(exc).__name__}: {exc}"
        raise GunicornConfigError(path, output) from None
    return _from_config(loader.cfg, os.path.basename(path))


def available_cpus() -> int:
    """CPUs this process may use: affinity, then the cgroup v2 quota, never the host's count."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cpus)
