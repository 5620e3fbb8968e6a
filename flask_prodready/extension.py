"""``ProdReady``: the Flask extension object, and the per-app state it keeps.

Following the Flask extension pattern, nothing app-specific lives on the extension
object: ``init_app`` puts an :class:`AppState` in ``app.extensions["prodready"]``, and
the views and the CLI command read it from there.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from flask import Flask

from .cache import ReportCache
from .checks import builtin_checks
from .context import RunEnvironment
from .findings import Level, Report, WorkerInfo
from .observation import TrafficRecord
from .redaction import Redactor
from .registry import CLI, LIVE, Check, CheckFunc, Registry, make_check
from .runner import ENGINE_CHECKS, Runner
from .server import GUNICORN, GunicornSettings, live_gunicorn_settings, server_kind
from .settings import Settings, load_settings, set_defaults

F = TypeVar("F", bound=CheckFunc)

logger = logging.getLogger("flask_prodready")

EXTENSION_KEY = "prodready"
ENTRY_POINT_GROUP = "flask_prodready.checks"
#: Extra seconds a caller waits beyond the check timeout before giving up on a shared run.
WAIT_MARGIN = 1.0


def _entry_point_checks() -> list[Check]:
    """Checks shipped by installed packages in the ``flask_prodready.checks`` group.

    An entry point may name a check, a list of checks, or a module whose ``Check``
    values are taken. A broken one fails start-up, naming it: silently missing checks
    would be worse than a loud error before the deploy.
    """
    found: list[Check] = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
        except Exception as exc:
            raise RuntimeError(
                f"flask-prodready could not load the check entry point {entry_point.name!r} "
                f"({entry_point.value}): {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(loaded, Check):
            items: Iterable[Any] = [loaded]
        elif hasattr(loaded, "__dict__") and not callable(loaded):
            items = [v for v in vars(loaded).values() if isinstance(v, Check)]
        elif isinstance(loaded, (list, tuple)):
            items = loaded
        else:
            items = [loaded]
        for item in items:
            if not isinstance(item, Check):
                raise RuntimeError(
                    f"the check entry point {entry_point.name!r} ({entry_point.value}) must "
                    "name a check made with flask_prodready.check, a list of them, or a module"
                )
            found.append(item)
    return found


class AppState:
    """Everything ProdReady keeps for one app: settings, registry, runner and cache."""

    def __init__(self, extension: ProdReady, settings: Settings, registry: Registry) -> None:
        self.extension = extension
        self.settings = settings
        self.registry = registry
        self.runner = Runner()
        self.cache = ReportCache()
        self.hostname = socket.gethostname()
        self.traffic = TrafficRecord()
        self.config_at_init: dict[str, Any] = {}
        self._token_digest = (
            None if settings.token is None else hashlib.sha256(settings.token.encode()).digest()
        )
        self.healthz_checks = registry.select_names(settings.healthz_checks)

    def token_matches(self, given: str) -> bool:
        """Compare a presented token with the configured one in constant time."""
        if self._token_digest is None:
            return False
        digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(digest, self._token_digest)

    def build_report(
        self,
        app: Flask,
        *,
        mode: str,
        checks: list[Check] | None = None,
        tags: Iterable[str] = (),
        exclude: Iterable[str] = (),
        server_software: str | None = None,
        environ: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        gunicorn: GunicornSettings | None = None,
    ) -> Report:
        """Run the selected checks now (no cache) and assemble the report.

        Live under gunicorn, the worker's resolved settings are found here when not given.
        """
        selected = self.registry.select(tags, exclude) if checks is None else checks
        if gunicorn is None and mode == LIVE and server_kind(server_software) == GUNICORN:
            gunicorn = live_gunicorn_settings()
        env = RunEnvironment(
            app=app,
            mode=mode,
            settings=self.settings,
            server_software=server_software,
            environ=dict(environ or {}),
            options=dict(options or {}),
            gunicorn=gunicorn,
            observation=self.traffic.snapshot() if mode == LIVE else None,
            check_ids=self.registry.ids,
            config_at_init=self.config_at_init,
        )
        outcomes = self.runner.run(
            selected,
            env,
            timeout=self.settings.check_timeout,
            silenced=self.settings.silenced,
            redactor=Redactor.for_config(app.config),
        )
        return Report(
            outcomes=outcomes,
            worker=WorkerInfo(pid=os.getpid(), hostname=self.hostname, server=server_software),
            generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            mode=mode,
        )

    def cached_report(
        self,
        app: Flask,
        *,
        key: tuple[Any, ...],
        checks: list[Check] | Callable[[], list[Check]],
        server_software: str | None = None,
        environ: Mapping[str, Any] | None = None,
    ) -> Report:
        """A live report of ``checks``, shared between concurrent callers and reused for the
        cache period. A caller waits for a shared run as long as its slowest check may take.

        ``checks`` may be a function, so a cache hit does not even select them.
        """
        hit = self.cache.fresh(key)  # a hit needs nothing built around the lookup
        if hit is not None:
            return hit

        def selected() -> list[Check]:
            return checks() if callable(checks) else checks

        def wait() -> float:
            default = self.settings.check_timeout
            return max((c.timeout or default for c in selected()), default=default) + WAIT_MARGIN

        return self.cache.get_or_build(
            key,
            self.settings.cache_seconds,
            lambda: self.build_report(
                app,
                mode=LIVE,
                checks=selected(),
                server_software=server_software,
                environ=environ,
            ),
            wait=wait,
        )


class ProdReady:
    """Production-readiness checks for a Flask app: ``/healthz``, ``/_readiness`` and
    ``flask readiness``.

    ``ProdReady(app)`` or, in an app factory, ``prodready = ProdReady()`` then
    ``prodready.init_app(app)``. Custom checks are added with :meth:`check`.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._custom: list[Check] = []
        self._lock = threading.Lock()
        # The apps this extension is installed on, so a check declared after init_app
        # still reaches them (weakly held: the extension must not keep apps alive).
        self._states: weakref.WeakSet[AppState] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def check(
        self,
        check_id: str,
        *,
        level: str | Level = Level.ERROR,
        title: str,
        tags: Iterable[str] = (),
        hint: str = "",
        modes: Iterable[str] = (LIVE, CLI),
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Register a custom check (SPEC §9); a clash with an existing id raises ``ValueError``.

        ``timeout`` gives this check its own budget instead of ``PRODREADY_CHECK_TIMEOUT``
        (for slow work that never runs on the request path). The function is returned
        unchanged. A check declared after ``init_app`` joins the
        apps already set up too (but only checks known at ``init_app`` can be named in
        ``PRODREADY_HEALTHZ_CHECKS``).
        """

        def decorate(func: F) -> F:
            item = make_check(
                check_id,
                level=level,
                title=title,
                tags=tags,
                hint=hint,
                modes=modes,
                func=func,
                origin=getattr(func, "__module__", None) or "unknown",
                timeout=timeout,
            )
            with self._lock:
                states = list(self._states)
                taken = {c.id for c in builtin_checks()} | {c.id for c in self._custom}
                taken |= {i for state in states for i in state.registry.ids}
                if item.id in taken:
                    raise ValueError(
                        f"check id {item.id!r} is already registered; check ids must be unique"
                    )
                self._custom.append(item)
                for state in states:
                    state.registry.add(item)
            return func

        return decorate

    def init_app(self, app: Flask) -> None:
        """Validate the config, register the routes and the ``flask readiness`` command."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "ProdReady is already initialised on this app. Call init_app once per app "
                "(use one ProdReady() object and call init_app in the app factory)."
            )
        set_defaults(app.config)
        settings = load_settings(app.config)
        registry = Registry([*ENGINE_CHECKS, *builtin_checks()])
        for item in [*_entry_point_checks(), *self._custom]:
            registry.add(item)
        unknown = [
            name
            for name in settings.healthz_checks
            if name not in registry.ids and name not in registry.tags
        ]
        if unknown:
            raise ValueError(
                f"PRODREADY_HEALTHZ_CHECKS names {unknown[0]!r}, which is neither a check id "
                "nor a tag (see `flask readiness --list`)"
            )
        selected = registry.select_names(settings.healthz_checks)
        planned = [c.id for c in selected if c.func is None]
        if planned:
            logger.warning(
                "PRODREADY_HEALTHZ_CHECKS names %s, not built yet in this version of "
                "flask-prodready: /healthz reports them as skipped and cannot fail on them",
                ", ".join(planned),
            )
        # Named by id only: a tag such as "security" may well span checks of other modes.
        elsewhere = [
            c.id
            for c in selected
            if c.func is not None and LIVE not in c.modes and c.id in settings.healthz_checks
        ]
        if elsewhere:
            logger.warning(
                "PRODREADY_HEALTHZ_CHECKS names %s, which cannot judge in the running server "
                "(see `flask readiness --list`): /healthz reports them as skipped and cannot "
                "fail on them",
                ", ".join(elsewhere),
            )
        state = AppState(self, settings, registry)
        state.config_at_init = dict(app.config)
        app.extensions[EXTENSION_KEY] = state

        from .cli import readiness_command
        from .http import make_blueprint
        from .middleware import ProdReadyMiddleware

        app.register_blueprint(make_blueprint(app, settings))
        app.wsgi_app = ProdReadyMiddleware(app.wsgi_app, app, state)  # type: ignore[method-assign]
        app.cli.add_command(readiness_command)
        with self._lock:
            self._states.add(state)


def get_state(app: Flask) -> AppState:
    """The ProdReady state of ``app``; a clear error when ``init_app`` was not called."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise RuntimeError("ProdReady is not initialised on this app: call init_app(app) first")
    return state
