"""``monitoring.*``: error reporting (Sentry and other trackers) and the app's logging.

The Sentry checks read the client the process actually holds (``sentry_sdk.get_client()``,
sentry-sdk 2.x), never the app's config: ``sentry_sdk.init()`` is usually called with a
DSN from the environment, outside ``app.config``. Other error trackers are read the same
way, from the state their own ``init``/``configure`` leaves in the process. No tracker is
ever imported here: if the app has not imported one, it cannot have initialised it
either. No check prints a DSN, an access token or any part of them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import logging
import logging.handlers
import os
import shlex
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flask.logging import default_handler, wsgi_errors_stream

from ..engine import log_errors
from ..engine.context import CheckContext
from ..engine.evidence import MIN_COUNT, share
from ..engine.findings import Finding, Level
from ..engine.registry import LIVE, check
from ..engine.server import GUNICORN, server_kind
from ..engine.state import get_state
from ._live import observed_traffic
from .config import ENVIRONMENT_SETTINGS, NON_PRODUCTION_WORDS, _environment_words

#: The extra that installs sentry-sdk, named in skip reasons and hints.
SENTRY_INSTALL = "pip install 'flask-prodready[sentry]'"
#: The environment sentry-sdk falls back to when neither ``environment=`` nor
#: ``SENTRY_ENVIRONMENT`` is given.
SENTRY_FALLBACK_ENVIRONMENT = "production"
#: The error trackers monitoring.error_tracking recognises besides Sentry, as messages
#: name them.
OTHER_TRACKERS = (
    "Rollbar",
    "Bugsnag",
    "Raygun",
    "Honeybadger",
    "Airbrake",
    "an OpenTelemetry exporter",
)

#: Environment variables that show a supervisor collects the process's stderr:
#: systemd (journald), Kubernetes, podman/systemd-nspawn, Heroku, supervisord.
SUPERVISOR_VARIABLES = (
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "KUBERNETES_SERVICE_HOST",
    "container",
    "DYNO",
    "SUPERVISOR_ENABLED",
)
#: Files that exist inside a Docker or podman container, whose runtime keeps stdout/stderr.
CONTAINER_MARKER_FILES = ("/.dockerenv", "/run/.containerenv")


def _sentry_client(ctx: CheckContext) -> Any:
    """The process's current Sentry client, or ``None`` when sentry-sdk was never imported.

    sentry-sdk 1.x has no ``get_client()``: skipped, saying which version is needed.
    """
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None:
        return None
    get_client = getattr(sentry_sdk, "get_client", None)
    if get_client is None:
        version = getattr(sentry_sdk, "VERSION", "?")
        ctx.skip(f"sentry-sdk {version} is older than 2.0, the first these checks can read")
    return get_client()


def _is_active(client: Any) -> bool:
    return client is not None and bool(client.is_active())


def _active_sentry_options(ctx: CheckContext) -> Mapping[str, Any]:
    """The options of the active Sentry client; skips when there is none to judge."""
    client = _sentry_client(ctx)
    if client is None and importlib.util.find_spec("sentry_sdk") is None:
        ctx.skip(f"sentry-sdk is not installed ({SENTRY_INSTALL})")
    if not _is_active(client) or not client.dsn:
        ctx.skip(
            "no active Sentry client to judge (monitoring.error_tracking reports a missing "
            "error tracker)"
        )
    options: Mapping[str, Any] = client.options
    return options


def _rollbar_active() -> bool:
    """``rollbar.init()`` ran with an access token (or the agent handler), and is enabled."""
    rollbar = sys.modules.get("rollbar")
    settings = getattr(rollbar, "SETTINGS", None)
    if not getattr(rollbar, "_initialized", False) or not isinstance(settings, Mapping):
        return False
    return bool(settings.get("enabled")) and bool(
        settings.get("access_token") or settings.get("handler") == "agent"
    )


def _bugsnag_active() -> bool:
    """The default client (``bugsnag.configure()``, ``BUGSNAG_API_KEY``) or the one that
    last installed its excepthook has an API key and notifies in its release stage."""
    legacy = sys.modules.get("bugsnag.legacy")
    if legacy is None:
        return False
    clients = [
        getattr(legacy, "default_client", None),
        getattr(sys.excepthook, "bugsnag_client", None),
    ]
    for client in clients:
        configuration = getattr(client, "configuration", None)
        if configuration is not None and configuration.api_key and configuration.should_notify():
            return True
    return False


def _honeybadger_active() -> bool:
    """``honeybadger.configure(api_key=...)`` (or ``HONEYBADGER_API_KEY``) outside the
    environments where it only pretends to send (development, dev, test)."""
    module = sys.modules.get("honeybadger")
    config = getattr(getattr(module, "honeybadger", None), "config", None)
    if config is None or not getattr(config, "api_key", None):
        return False
    return bool(config.force_report_data) or not config.is_dev()


def _raygun_active(ctx: CheckContext) -> bool:
    """raygun4py's Flask provider attached to the app with an API key."""
    if "raygun4py" not in sys.modules:
        return False
    sender = getattr(ctx.app.extensions.get("raygun"), "sender", None)
    return bool(getattr(sender, "api_key", None))


def _airbrake_active(ctx: CheckContext) -> bool:
    """pybrake's Flask integration installed on the app (it keeps its notifier there)."""
    return "pybrake" in sys.modules and ctx.app.extensions.get("pybrake") is not None


def _processors(provider: Any, chain: str, items: str) -> bool:
    if provider is None or getattr(provider, "_disabled", False):
        return False
    return bool(getattr(getattr(provider, chain, None), items, ()))


def _opentelemetry_active() -> bool:
    """An SDK TracerProvider or LoggerProvider set as the global one, with a processor
    (and so an exporter) added. The API's own proxy and no-op providers have none."""
    trace = sys.modules.get("opentelemetry.trace")
    logs = sys.modules.get("opentelemetry._logs._internal")
    return _processors(
        getattr(trace, "_TRACER_PROVIDER", None), "_active_span_processor", "_span_processors"
    ) or _processors(
        getattr(logs, "_LOGGER_PROVIDER", None),
        "_multi_log_record_processor",
        "_log_record_processors",
    )


def _other_trackers(ctx: CheckContext) -> list[str]:
    """The error trackers besides Sentry that are active in this process."""
    found = {
        "Rollbar": _rollbar_active,
        "Bugsnag": _bugsnag_active,
        "Raygun": lambda: _raygun_active(ctx),
        "Honeybadger": _honeybadger_active,
        "Airbrake": lambda: _airbrake_active(ctx),
        "an OpenTelemetry exporter": _opentelemetry_active,
    }
    active = []
    for name, is_active in found.items():
        try:
            if is_active():
                active.append(name)
        except Exception:  # another release's internals: this tracker is not recognised
            continue
    return active


@check(
    "monitoring.error_tracking",
    level=Level.WARNING,
    title="An error tracker is active in the process",
    hint="Report errors to a tracker: install sentry-sdk (" + SENTRY_INSTALL + ") and call "
    "sentry_sdk.init(dsn=os.environ['SENTRY_DSN'], environment=..., release=...) before "
    "the app is created, or initialise the tracker you use (rollbar.init, "
    "bugsnag.configure, honeybadger.configure, an OpenTelemetry exporter) there.",
    aliases=["monitoring.sentry_missing"],
)
def check_error_tracking(ctx: CheckContext) -> Iterator[Finding]:
    if _other_trackers(ctx):
        return
    others = f"no other tracker is active either ({', '.join(OTHER_TRACKERS)} looked for)"
    client = _sentry_client(ctx)
    if client is None and importlib.util.find_spec("sentry_sdk") is None:
        yield ctx.finding(
            "No error tracker is active in this process (looked for Sentry, "
            f"{', '.join(OTHER_TRACKERS)}; sentry-sdk is not installed): errors in "
            "production reach no error tracker."
        )
    elif not _is_active(client):
        yield ctx.finding(
            "No active Sentry client: sentry_sdk.init() has not run in this process, so "
            f"errors are not reported; {others}."
        )
    elif not client.dsn:
        yield ctx.finding(
            "sentry_sdk.init() ran without a DSN (no dsn= and no SENTRY_DSN), so nothing "
            f"is sent to Sentry; {others}."
        )


@check(
    "monitoring.sentry_pii",
    level=Level.WARNING,
    tags=["security"],
    title="Sentry send_default_pii is off",
    hint="Leave send_default_pii off (its default), or with data_collection set "
    "user_info=False; attach only the user fields you need with "
    "sentry_sdk.set_user({'id': ...}).",
)
def check_sentry_pii(ctx: CheckContext) -> Iterator[Finding]:
    options = _active_sentry_options(ctx)
    # sentry-sdk 2.x releases with ``data_collection`` ignore send_default_pii when it is
    # given, and collect user information unless it says user_info=False.
    collection = options.get("data_collection")
    if isinstance(collection, Mapping) and collection.get("provided_by_user"):
        if collection.get("user_info"):
            yield ctx.finding(
                "Sentry's data_collection sends user information (user_info is on, its "
                "default once data_collection is given): events carry users' IP addresses, "
                "ids and e-mail addresses.",
                observed={"data_collection.user_info": True},
            )
    elif options.get("send_default_pii"):
        yield ctx.finding(
            "Sentry's send_default_pii is on: events carry users' IP addresses, ids, "
            "cookies and request headers.",
            observed={"send_default_pii": True},
        )


@check(
    "monitoring.sentry_environment",
    level=Level.INFO,
    title="Sentry has an environment and release",
    hint="Pass environment= and release= to sentry_sdk.init(), or set SENTRY_ENVIRONMENT "
    "and SENTRY_RELEASE (for example to the deployed commit).",
)
def check_sentry_environment(ctx: CheckContext) -> Iterator[Finding]:
    options = _active_sentry_options(ctx)
    environment = options.get("environment")
    if not environment:
        yield ctx.finding(
            "Sentry has no environment: events from every deploy are filed together.",
            observed={"environment": environment},
        )
    elif environment == SENTRY_FALLBACK_ENVIRONMENT and not os.environ.get("SENTRY_ENVIRONMENT"):
        # sentry-sdk fills in "production" when nothing is given, and keeps no trace of
        # what init() was passed: an explicit environment="production" looks the same.
        # Either is right on a production deploy; it is wrong where a setting of the
        # app names another environment.
        named = _non_production_setting(ctx)
        if named is not None:
            yield ctx.finding(
                f"Sentry's environment is {environment!r} (given, or the SDK's fallback), "
                f"but {named} names a non-production environment: its events are filed "
                "as production.",
                observed={"environment": environment},
            )
    if not options.get("release"):
        yield ctx.finding(
            "Sentry has no release (no release=, no SENTRY_RELEASE, no git commit to read): "
            "errors cannot be tied to the deploy that introduced them.",
            observed={"release": None},
        )


def _non_production_setting(ctx: CheckContext) -> str | None:
    """Which setting names a non-production environment (config.environment's rule), as
    ``FLASK_CONFIG='development' in the config``; ``None`` when none does."""
    for source, values in (("config", ctx.config), ("environment", os.environ)):
        for name in ENVIRONMENT_SETTINGS:
            value = values.get(name)
            if isinstance(value, str) and _environment_words(value) & NON_PRODUCTION_WORDS:
                return f"{name}={value!r} in the {source}"
    return None


def _handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches, following ``propagate`` upwards."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    return found


def _console_stream(handler: logging.Handler) -> bool:
    """Whether ``handler`` writes to the process's stderr or stdout (Flask's default does)."""
    if handler is default_handler:
        return True
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    if stream is wsgi_errors_stream or stream in (
        sys.stderr,
        sys.stdout,
        sys.__stderr__,
        sys.__stdout__,
    ):
        return True
    try:
        return bool(stream.fileno() in (1, 2))
    except (AttributeError, OSError, ValueError):
        return False  # a stream of its own kind: not judged


def _stderr_collected(ctx: CheckContext) -> bool:
    """Whether something keeps what this process writes to stderr.

    A supervisor (systemd, a container runtime, gunicorn, supervisord, Heroku) does; so
    does a stderr redirected to a file, a pipe or a socket. A terminal or ``/dev/null``
    keeps nothing once the session ends.
    """
    if any(os.environ.get(name) for name in SUPERVISOR_VARIABLES):
        return True
    if any(os.path.exists(path) for path in CONTAINER_MARKER_FILES):
        return True
    if ctx.gunicorn is not None or server_kind(ctx.server_software) == GUNICORN:
        return True
    if server_kind(os.environ.get("SERVER_SOFTWARE")) == GUNICORN:
        return True  # gunicorn's master sets it before loading the app
    try:
        mode = os.fstat(2).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _describe_stderr() -> str:
    """Where stderr goes, for the message: a terminal, /dev/null, or something else."""
    try:
        if os.isatty(2):
            return "a terminal"
        if os.path.samestat(os.fstat(2), os.stat(os.devnull)):
            return os.devnull
    except OSError:
        return "closed"
    return "not a file, pipe or socket"


@check(
    "monitoring.logging",
    level=Level.WARNING,
    title="The app logs above DEBUG to a handler that survives the process",
    hint="Log at INFO or above in production (app.logger.setLevel(logging.INFO), or "
    "logging.config.dictConfig) to a place that outlives the process: stderr under "
    "systemd, a container runtime or gunicorn, a log file, or syslog.",
)
def check_logging(ctx: CheckContext) -> Iterator[Finding]:
    logger = ctx.app.logger
    effective = logger.getEffectiveLevel()
    if effective <= logging.DEBUG:
        yield ctx.finding(
            f"The app logger {logger.name!r} logs at DEBUG (its effective level): debug "
            "records can carry request data and secrets, and their volume buries what "
            "matters.",
            observed={"logger": logger.name, "level": logging.getLevelName(effective)},
        )
    handlers = _handlers(logger)
    usable = [h for h in handlers if not isinstance(h, logging.NullHandler)]
    if handlers and not usable:
        yield ctx.finding(
            f"Every handler of the app logger {logger.name!r} is a NullHandler: its records "
            "are dropped.",
            observed={"logger": logger.name},
        )
        return
    # Without any handler, logging's last resort writes warnings to stderr: a console too.
    if any(not _console_stream(h) for h in usable):
        return  # a file, syslog, a socket, Sentry, a queue ...: it outlives the process
    # Only stderr/stdout. From the command line, this process's stderr says nothing about
    # the server's, so only the running server judges where its stderr goes.
    if ctx.mode == LIVE and not _stderr_collected(ctx):
        yield ctx.finding(
            f"The app logger {logger.name!r} writes only to stderr, which is "
            f"{_describe_stderr()}, and no supervisor (systemd, a container, gunicorn) "
            "collects it: the log is gone when the process ends.",
            level=Level.INFO,
            observed={"logger": logger.name},
        )


#: Logger names whose error records are this extension's own (a check that crashed is
#: reported as prodready.check_crashed already).
OWN_LOGGERS = ("flask_prodready",)
#: Most loggers a finding names.
SHOWN_LOGGERS = 5
#: Share of responses that may be server errors before monitoring.server_errors fires.
SERVER_ERROR_SHARE = 0.01
#: Where logrotate's rules live (its main file, and the folder its packages drop into).
LOGROTATE_FILES = ("/etc/logrotate.conf",)
LOGROTATE_FOLDERS = ("/etc/logrotate.d",)
#: Handlers that rotate their file themselves, or reopen it when logrotate moved it.
ROTATING_HANDLERS = (
    logging.handlers.RotatingFileHandler,
    logging.handlers.TimedRotatingFileHandler,
    logging.handlers.WatchedFileHandler,
)


def _window_evidence(ctx: CheckContext) -> Any:
    evidence = ctx.observation
    if evidence is None:
        ctx.skip("only the running server can tell what it logged and answered")
    return evidence


@check(
    "monitoring.errors_logged",
    level=Level.WARNING,
    modes=[LIVE],
    title="No error records were logged in the evidence window",
    hint="Read the errors (the server's log, or your error tracker), fix their cause, and "
    "make sure someone is alerted when they happen.",
)
def check_errors_logged(ctx: CheckContext) -> Iterator[Finding]:
    evidence = _window_evidence(ctx)
    if not log_errors.counting(get_state(ctx.app).traffic):
        ctx.skip(
            "the app's logging setup replaced the root logger's handlers after init_app; "
            "error records are counted again from now"
        )
    loggers = {
        name: count
        for name, count in evidence.logged_errors.items()
        if not name.startswith(OWN_LOGGERS)
    }
    total = sum(loggers.values())
    if total >= MIN_COUNT:
        busiest = sorted(loggers.items(), key=lambda item: (-item[1], item[0]))
        named = ", ".join(f"{name} {count}" for name, count in busiest[:SHOWN_LOGGERS])
        more = f" and {len(busiest) - SHOWN_LOGGERS} more" if len(busiest) > SHOWN_LOGGERS else ""
        yield ctx.finding(
            f"{total} log records at ERROR or above in the last {evidence.window:g} s, from "
            f"{named}{more}: errors the app reports, which someone should read.",
            observed={"records": total, "loggers": dict(busiest), "workers": evidence.workers},
        )


@check(
    "monitoring.server_errors",
    level=Level.ERROR,
    modes=[LIVE],
    title="At most 1% of responses are server errors",
    hint="Find the failing requests in the server's log or error tracker (the paths below "
    "are examples) and fix their cause: a 5xx is a request the app could not serve.",
)
def check_server_errors(ctx: CheckContext) -> Iterator[Finding]:
    evidence = observed_traffic(ctx)
    failed = evidence.server_errors
    if failed >= MIN_COUNT and failed > SERVER_ERROR_SHARE * evidence.requests:
        examples = ", ".join(evidence.error_samples)
        yield ctx.finding(
            f"{share(failed, evidence.requests)} responses in the last {evidence.window:g} s "
            f"were server errors (5xx), more than {SERVER_ERROR_SHARE:.0%}"
            + (f", for example {examples}." if examples else "."),
            observed={
                "requests": evidence.requests,
                "server_errors": failed,
                "examples": list(evidence.error_samples),
                "workers": evidence.workers,
            },
        )


def _server_started(ctx: CheckContext) -> float:
    """When the server's main process started (gunicorn's arbiter for a gunicorn worker)."""
    try:
        import psutil
    except ImportError:
        ctx.skip("psutil is not installed (pip install 'flask-prodready[system]')")
    gunicorn = ctx.gunicorn is not None or server_kind(ctx.server_software) == GUNICORN
    pid = os.getppid() if gunicorn else os.getpid()
    try:
        started: float = psutil.Process(pid).create_time()
    except psutil.Error as exc:
        ctx.skip(f"the server's process {pid} cannot be read ({type(exc).__name__})")
    return started


@check(
    "monitoring.healthz_unpolled",
    level=Level.WARNING,
    modes=[LIVE],
    title="Something polls the health endpoint",
    hint="Point an uptime monitor (or your load balancer's health check, or a Kubernetes "
    "probe) at the health endpoint, and alert on its failures: nothing else tells you the "
    "site is down before your users do.",
    blocking=True,
)
def check_healthz_unpolled(ctx: CheckContext) -> Iterator[Finding]:
    evidence = _window_evidence(ctx)
    if evidence.note:
        ctx.skip(f"the evidence does not cover every worker ({evidence.note})")
    uptime = time.time() - _server_started(ctx)
    if uptime <= evidence.window:
        ctx.skip(
            f"the server has been up {uptime:.0f} s, less than the evidence window "
            f"({evidence.window:g} s)"
        )
    if evidence.healthz_requests == 0:
        path = ctx.settings.healthz_path
        yield ctx.finding(
            f"The server has been up {uptime:.0f} s and nothing requested {path} in the last "
            f"{evidence.window:g} s: no uptime monitor or probe is polling it.",
            observed={"healthz_requests": 0, "window_seconds": evidence.window},
        )


def _logrotate_patterns() -> list[str]:
    """The file patterns logrotate's rules name (``/var/log/app/*.log``), read from its
    main file and its folder; a file that cannot be read adds nothing."""
    files = [Path(name) for name in LOGROTATE_FILES]
    for folder in LOGROTATE_FOLDERS:
        with contextlib.suppress(OSError):
            files += sorted(p for p in Path(folder).iterdir() if p.is_file())
    patterns: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        pending: list[str] = []  # paths on a line of their own, before a "{" line
        depth = 0
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if depth == 0 and "{" in line:
                patterns += pending + _paths(line.split("{", 1)[0])
                pending = []
            elif depth == 0:
                pending = _paths(line)
            depth += line.count("{") - line.count("}")
            depth = max(depth, 0)
    return patterns


def _paths(text: str) -> list[str]:
    """The absolute paths (or globs) among the words of a logrotate line."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: logrotate would refuse the file too
        return []
    return [word for word in words if word.startswith("/")]


def _grows(filename: str) -> bool:
    """Whether a file handler's file can fill a disk: a regular file (or one not created
    yet), not a device or a pipe such as /dev/null."""
    try:
        return stat.S_ISREG(os.stat(filename).st_mode)
    except OSError:
        return True


def _file_handlers() -> list[tuple[str, logging.FileHandler]]:
    """``(logger name, handler)`` for every file handler of every logger of the process."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    return [
        (logger.name, handler)
        for logger in loggers
        for handler in list(logger.handlers)
        if isinstance(handler, logging.FileHandler)
    ]


@check(
    "monitoring.log_rotation",
    level=Level.WARNING,
    title="Every log file is rotated",
    hint="Use logging.handlers.WatchedFileHandler and a logrotate rule for the file, or "
    "RotatingFileHandler / TimedRotatingFileHandler; or log to stderr and let journald or "
    "the container runtime keep and rotate the log.",
    blocking=True,
)
def check_log_rotation(ctx: CheckContext) -> Iterator[Finding]:
    unrotated: dict[str, tuple[str, str]] = {}
    for name, handler in _file_handlers():
        if not isinstance(handler, ROTATING_HANDLERS) and _grows(handler.baseFilename):
            unrotated.setdefault(handler.baseFilename, (name, type(handler).__name__))
    if not unrotated:
        return
    patterns = _logrotate_patterns()
    for filename, (name, kind) in sorted(unrotated.items()):
        if any(fnmatch.fnmatchcase(filename, pattern) for pattern in patterns):
            continue
        yield ctx.finding(
            f"The logger {name or 'root'!r} writes to {filename} with a {kind}, which never "
            "rotates it, and no logrotate rule names the file: it grows until the disk is "
            "full.",
            observed={"logger": name or "root", "file": filename, "handler": kind},
        )
