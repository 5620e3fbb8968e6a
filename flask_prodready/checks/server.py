"""``server.*``: the WSGI server the app really runs under, and gunicorn's settings.

``server.dev_server``, ``server.root`` and ``server.code_writable`` judge the running
process (live). The
gunicorn checks read gunicorn's resolved settings: the running worker's when live, the
file given with ``flask readiness --gunicorn-config`` from the CLI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..engine.context import CheckContext, CheckSkipped
from ..engine.findings import Finding, Level
from ..engine.registry import CLI, LIVE, check
from ..engine.server import (
    GUNICORN,
    UNKNOWN,
    WERKZEUG,
    GunicornSettings,
    available_cpus,
    server_kind,
)
from ._code_writable import writable_code
from .database.engines import Database, databases_of
from .static import as_folder, upload_folder

#: A gunicorn timeout above this lets one stuck request hold a worker for minutes.
MAX_TIMEOUT = 120
#: Workers above FAR_ABOVE x (2 x CPUs + 1) thrash memory and the CPU scheduler.
FAR_ABOVE = 2
#: Addresses that mean "every interface".
ALL_INTERFACES = ("0.0.0.0", "::", "[::]", "")


def _gunicorn(ctx: CheckContext) -> GunicornSettings:
    """The settings to judge, or skip saying how to provide them."""
    if ctx.gunicorn is not None:
        return ctx.gunicorn
    if ctx.mode == CLI:
        ctx.skip("pass --gunicorn-config FILE to judge gunicorn's settings from the command line")
    ctx.skip(f"the app is not served by gunicorn here (server: {ctx.server_software or 'unknown'})")


@check(
    "server.dev_server",
    level=Level.CRITICAL,
    modes=[LIVE],
    title="Not served by the Werkzeug development server",
    hint="Run the app under a production server: gunicorn 'yourapp:create_app()' "
    "(or waitress, uWSGI) behind nginx; `flask run` is for development only.",
)
def check_dev_server(ctx: CheckContext) -> Iterator[Finding]:
    if server_kind(ctx.server_software, ctx.env.environ) == WERKZEUG:
        yield ctx.finding(
            f"The app is served by the Werkzeug development server ({ctx.server_software}): "
            "single process, not hardened, not meant for production traffic.",
            observed=ctx.server_software,
        )


@check(
    "server.root",
    level=Level.ERROR,
    tags=["security"],
    modes=[LIVE],
    title="The process does not run as root",
    hint="Run the server as an unprivileged user (systemd User=, gunicorn --user, or a "
    "non-root container USER); let nginx or a socket own the privileged port.",
)
def check_root(ctx: CheckContext) -> Iterator[Finding]:
    # Live only: from the CLI the process is the CI job, which says nothing of the server.
    if os.geteuid() == 0:
        yield ctx.finding(
            f"The server process (pid {os.getpid()}) runs as root: a code-execution bug "
            "owns the whole host.",
            observed={"uid": 0},
        )


#: Writable parts of the code named in a message before "and N more".
MAX_NAMED_PATHS = 5
#: Writable parts of the code listed in ``observed``.
MAX_OBSERVED_PATHS = 50


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


@check(
    "server.code_writable",
    level=Level.WARNING,
    tags=["security"],
    modes=[LIVE],
    title="The process cannot write the app's code",
    hint="Let another user own the code (root, or the user that deploys it) and run the "
    "server as a user that can only read it: chown -R root:root CODE && chmod -R go-w CODE. "
    "Keep what the app writes (instance folder, uploads) outside the code.",
    blocking=True,
)
def check_code_writable(ctx: CheckContext) -> Iterator[Finding]:
    # Live only: from the CLI the process is the CI job or the developer, who own the
    # checkout; what matters is the user the server runs as.
    excluded = [Path(ctx.app.instance_path)]
    found = upload_folder(ctx)
    uploads = None if found is None else as_folder(found[1])
    if uploads is not None:
        excluded.append(uploads)
    access = writable_code(ctx.app, excluded=excluded, deadline=ctx.deadline - 0.05)
    if not access.writable:
        if not access.complete:
            ctx.skip(
                f"looked at {access.folders} folders and {access.files} files of the app's "
                "code before the time limit without finishing"
            )
        return
    shown = ", ".join(access.writable[:MAX_NAMED_PATHS])
    more = len(access.writable) - MAX_NAMED_PATHS
    if more > 0:
        shown += f" and {more} more"
    uid = os.geteuid()
    observed = {
        "uid": uid,
        "writable": list(access.writable[:MAX_OBSERVED_PATHS]),
        "roots": list(access.roots),
    }
    if uid == 0:
        yield ctx.finding(
            f"The server process (pid {os.getpid()}) runs as root, which can write every "
            f"file, the app's code included ({shown}): a code-execution bug can persist "
            "itself in the code that runs next.",
            hint="Run the server as an unprivileged user that can only read the code "
            "(server.root says how), with the code owned by root or the user that deploys "
            "it: chown -R root:root CODE && chmod -R go-w CODE.",
            observed=observed,
        )
        return
    user = _user_name(uid)
    yield ctx.finding(
        f"The server process (pid {os.getpid()}, user {user}) can write the app's code "
        f"({shown}): a code-execution bug can persist itself in the code that runs next.",
        observed={**observed, "user": user},
    )


def _is_public(bind: str) -> bool:
    """Whether a gunicorn bind address listens on every interface."""
    if bind.startswith(("unix:", "fd://")):
        return False
    bind = bind.removeprefix("tcp://")
    if bind.startswith("["):  # [::]:8000, [::1]:8000
        host = bind[: bind.index("]") + 1] if "]" in bind else bind
    elif bind.isdigit():  # a bare port
        host = ""
    else:
        host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    return host in ALL_INTERFACES


@check(
    "server.bind_public",
    level=Level.WARNING,
    tags=["gunicorn"],
    title="gunicorn binds to loopback or a unix socket",
    hint="Bind gunicorn to 127.0.0.1:PORT or unix:/run/APP.sock and let nginx face the "
    "network; in Kubernetes, binding all interfaces is expected.",
)
def check_bind_public(ctx: CheckContext) -> Iterator[Finding]:
    settings = _gunicorn(ctx)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and ctx.mode == LIVE:
        ctx.skip("running in Kubernetes, where the pod must listen on its own IP")
    public = [b for b in settings.bind if _is_public(b)]
    if public:
        yield ctx.finding(
            f"gunicorn binds to all interfaces ({', '.join(public)}, from {settings.source}): "
            "clients can bypass the proxy and its TLS, limits and headers.",
            observed={"bind": list(settings.bind)},
        )


@check(
    "server.workers",
    level=Level.WARNING,
    tags=["gunicorn"],
    title="gunicorn worker count fits the CPUs the process may use",
    hint="Start with workers = 2 x CPUs + 1 (gunicorn's advice) and measure.",
)
def check_workers(ctx: CheckContext) -> Iterator[Finding]:
    settings = _gunicorn(ctx)
    cpus = available_cpus()
    advised = 2 * cpus + 1
    where = "here" if ctx.mode == LIVE else "on this machine"
    observed = {"workers": settings.workers, "cpus": cpus, "advised": advised}
    if settings.workers <= 1:
        yield ctx.finding(
            f"gunicorn runs {settings.workers} worker (from {settings.source}): one slow or "
            f"crashed request stalls the whole app; {cpus} CPUs {where} suggest {advised}.",
            observed=observed,
        )
    elif settings.workers > FAR_ABOVE * advised:
        yield ctx.finding(
            f"gunicorn runs {settings.workers} workers (from {settings.source}), far above "
            f"{advised} for the {cpus} CPUs this process may use {where}.",
            observed=observed,
        )


@check(
    "server.timeout",
    level=Level.WARNING,
    tags=["gunicorn"],
    title=f"gunicorn timeout is set and at most {MAX_TIMEOUT} s",
    hint="Set timeout = 30 (gunicorn's default) and move long work to a task queue.",
)
def check_timeout(ctx: CheckContext) -> Iterator[Finding]:
    settings = _gunicorn(ctx)
    if settings.timeout <= 0:
        yield ctx.finding(
            f"gunicorn's timeout is {settings.timeout} (from {settings.source}): a stuck "
            "request holds its worker forever.",
            observed={"timeout": settings.timeout},
        )
    elif settings.timeout > MAX_TIMEOUT:
        yield ctx.finding(
            f"gunicorn's timeout is {settings.timeout} s (from {settings.source}): stuck "
            f"requests hold workers for minutes (more than {MAX_TIMEOUT} s).",
            observed={"timeout": settings.timeout},
        )


@check(
    "server.max_requests_jitter",
    level=Level.INFO,
    tags=["gunicorn"],
    title="gunicorn max_requests comes with jitter",
    hint="Set max_requests_jitter to about 10% of max_requests so workers do not all "
    "restart at the same moment.",
)
def check_max_requests_jitter(ctx: CheckContext) -> Iterator[Finding]:
    settings = _gunicorn(ctx)
    if settings.max_requests > 0 and settings.max_requests_jitter <= 0:
        yield ctx.finding(
            f"gunicorn restarts workers every {settings.max_requests} requests without jitter "
            f"(from {settings.source}): they tend to restart together.",
            observed={"max_requests": settings.max_requests, "max_requests_jitter": 0},
        )


#: gunicorn's worker classes that run a worker's requests as greenlets of one thread.
GREEN_WORKERS = ("gevent", "eventlet")
#: gunicorn's own worker classes that ignore ``threads`` (gthread alone runs requests on
#: threads; gunicorn turns sync into gthread when threads > 1).
THREADLESS_WORKERS = frozenset(
    {"gevent", "gevent_wsgi", "gevent_pywsgi", "eventlet", "tornado", "asgi"}
)


def _green_family(worker_class: str) -> str | None:
    """``gevent`` or ``eventlet`` when the worker class runs on greenlets, else ``None``."""
    return next((name for name in GREEN_WORKERS if name in worker_class), None)


def _worker_settings(ctx: CheckContext) -> GunicornSettings:
    """gunicorn's settings, or skip naming the server that runs the app instead."""
    if ctx.gunicorn is not None:
        return ctx.gunicorn
    if ctx.mode == CLI:
        ctx.skip("pass --gunicorn-config FILE to judge gunicorn's settings from the command line")
    software = ctx.server_software
    kind = server_kind(software, ctx.env.environ)
    if kind == GUNICORN:
        ctx.skip("gunicorn's settings were not found in this worker process")
    if kind == UNKNOWN:
        ctx.skip(f"unknown server {software!r}, not gunicorn" if software else "unknown server")
    ctx.skip(f"served by {software or kind}, not gunicorn")


def _socket_patched() -> bool:
    """Whether gevent or eventlet has patched the ``socket`` module of this process."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        return True
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher is not None and patcher.is_monkey_patched("socket"))


def _blocking(driver: str, family: str) -> str | None:
    """How ``driver`` blocks the whole worker in this process, or ``None`` if it yields."""
    if driver in {"psycopg2", "psycopg2cffi"}:
        extensions = sys.modules.get(f"{driver}.extensions")
        if extensions is None or extensions.get_wait_callback() is None:
            return f"{driver} with no wait callback set (nothing like psycogreen patches it)"
    elif driver == "pymysql" and not _socket_patched():
        return f"pymysql over a socket module {family} has not patched"
    elif driver == "mysqldb":
        return "mysqlclient (MySQLdb), a C driver no monkey patch reaches"
    return None


def _fix(family: str, driver: str) -> str:
    if driver.startswith("psycopg2"):
        return (
            f"call psycogreen.{family}.patch_psycopg() in gunicorn's post_fork hook, "
            "or run the sync or gthread worker"
        )
    if driver == "pymysql":
        return (
            f"apply {family}'s monkey patch before the app imports pymysql, "
            "or run the sync or gthread worker"
        )
    return "use pymysql (patched by gevent), or run the sync or gthread worker"


def _databases(ctx: CheckContext) -> list[Database]:
    try:
        return databases_of(ctx, required=False)
    except CheckSkipped:
        return []


@check(
    "server.worker_class",
    level=Level.WARNING,
    tags=["gunicorn"],
    title="gunicorn's worker class suits the app's database driver and threads",
    hint="Under gevent or eventlet, make the database driver cooperative "
    "(psycogreen.gevent.patch_psycopg() in gunicorn's post_fork hook for psycopg2) or run "
    "the sync or gthread worker; set threads only with the gthread worker.",
)
def check_worker_class(ctx: CheckContext) -> Iterator[Finding]:
    settings = _worker_settings(ctx)
    worker_class = settings.worker_class
    family = _green_family(worker_class)
    ignored = worker_class in THREADLESS_WORKERS or family is not None
    if settings.threads > 1 and ignored:
        yield ctx.finding(
            f"gunicorn's {worker_class} worker ignores threads = {settings.threads} (from "
            f"{settings.source}): only the gthread worker runs requests on threads.",
            observed={"worker_class": worker_class, "threads": settings.threads},
        )
    # Whether a driver is patched is a fact of the running process: live only.
    if family is None or ctx.mode != LIVE:
        return
    blocking: dict[str, list[Database]] = {}
    for database in _databases(ctx):
        if _blocking(database.driver, family) is not None:
            blocking.setdefault(database.driver, []).append(database)
    for driver, databases in blocking.items():
        labels = ", ".join(database.label for database in databases)
        yield ctx.finding(
            f"gunicorn's {worker_class} worker (from {settings.source}) runs its requests as "
            f"greenlets of one thread, and {labels} talks to its database through "
            f"{_blocking(driver, family)}: each query stalls every request of the worker; "
            f"{_fix(family, driver)}.",
            observed={
                "worker_class": worker_class,
                "driver": driver,
                "databases": [database.label for database in databases],
            },
        )
