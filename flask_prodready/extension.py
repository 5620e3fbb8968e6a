"""``ProdReady``: the Flask extension object, and the place that wires the parts together.

``init_app`` is the composition root: it builds the app's registry (built-in checks,
entry points, the app's own), puts an :class:`~flask_prodready.engine.state.AppState` in
``app.extensions["prodready"]``, and installs the web front end and the ``flask
readiness`` command. Nothing in the package imports this module back.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask

from .checks import builtin_checks
from .cli import readiness_command
from .engine.databases import AddedEngines
from .engine.findings import Level
from .engine.registry import DEFAULT_MODES, LIVE, Check, CheckFunc, Registry, make_check
from .engine.runner import ENGINE_CHECKS
from .engine.settings import load_settings, set_defaults
from .engine.state import EXTENSION_KEY, AppState
from .web.middleware import ProdReadyMiddleware
from .web.views import ReportEndpoint, make_blueprint

F = TypeVar("F", bound=CheckFunc)

logger = logging.getLogger("flask_prodready")

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
        # Engines handed over with add_engine: for every app, and for one app not yet
        # initialised (keyed by the app, weakly, until init_app moves them to its state).
        self._engines = AddedEngines()
        self._pending: weakref.WeakKeyDictionary[Flask, AddedEngines] = weakref.WeakKeyDictionary()
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
        modes: Iterable[str] = DEFAULT_MODES,
        timeout: float | None = None,
        blocking: bool = True,
        aliases: Iterable[str] = (),
    ) -> Callable[[F], F]:
        """Register a custom check (SPEC §10); a clash with an existing id raises ``ValueError``.

        ``timeout`` gives this check its own budget instead of ``PRODREADY_CHECK_TIMEOUT``
        (for slow work that never runs on the request path). An app's own checks usually
        ask its dependencies (Redis, a queue, an API), so they are ``blocking`` unless
        declared ``blocking=False``: each runs on a thread of its own under the timeout.
        ``aliases`` keeps the former ids of a renamed check working in silences and
        exclusions. The function is returned unchanged. A check declared after
        ``init_app`` joins the apps already set up too (but only checks known at
        ``init_app`` can be named in ``PRODREADY_HEALTHZ_CHECKS``).
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
                blocking=blocking,
                aliases=aliases,
            )
            with self._lock:
                states = list(self._states)
                known = [*builtin_checks(), *self._custom]
                taken = {name for c in known for name in (c.id, *c.aliases)}
                taken |= {i for state in states for i in state.registry.ids}
                taken |= {i for state in states for i in state.registry.aliases}
                clash = next((n for n in (item.id, *item.aliases) if n in taken), None)
                if clash is not None:
                    raise ValueError(
                        f"check id {clash!r} is already registered; check ids must be unique"
                    )
                self._custom.append(item)
                for state in states:
                    state.registry.add(item)
            return func

        return decorate

    def add_engine(self, engine: Any, *, name: str, app: Flask | None = None) -> None:
        """Hand over a SQLAlchemy engine the app keeps without Flask-SQLAlchemy: the
        ``database.*`` checks judge it like Flask-SQLAlchemy's engines, naming it "the
        engine 'NAME'".

        With ``app``, for that app only; without, for every app this extension is
        initialised on (like :meth:`check`). Either way before or after ``init_app``. Per
        app, a name names one engine and an engine has one name: a clash raises
        ``ValueError``, while handing over the same engine under the same name again does
        nothing. An engine that is also one of Flask-SQLAlchemy's is judged once, as
        Flask-SQLAlchemy's. The engine is held as long as its app (without ``app``: as
        long as this extension).
        """
        _require_engine(engine)
        if not isinstance(name, str) or not name:
            raise ValueError(f"add_engine needs a name, a non-empty string (got {name!r})")
        with self._lock:
            if app is None:
                # Every app: those initialised, those waiting for init_app, and later ones.
                holders = [
                    self._engines,
                    *self._pending.values(),
                    *(state.engines for state in self._states),
                ]
                checked = holders
            else:
                state = app.extensions.get(EXTENSION_KEY)
                if isinstance(state, AppState):
                    holders = checked = [state.engines]
                else:
                    holders = [self._pending.setdefault(app, AddedEngines())]
                    # The engines for every app join this one at init_app: no clash with them.
                    checked = [*holders, self._engines]
            for held in checked:
                problem = held.conflict(name, engine)
                if problem is not None:
                    raise ValueError(f"add_engine(name={name!r}): {problem}")
            for held in holders:
                held.add(name, engine)

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
            if registry.get(name) is None and name not in registry.tags
        ]
        if unknown:
            raise ValueError(
                f"PRODREADY_HEALTHZ_CHECKS names {unknown[0]!r}, which is neither a check id "
                "nor a tag (see `flask readiness --list`)"
            )
        selected = registry.select_names(settings.healthz_checks)
        # Named by id only: a tag such as "security" may well span checks of other modes.
        elsewhere = [
            c.id
            for c in selected
            if LIVE not in c.modes
            and c.id in {registry.resolve(name) for name in settings.healthz_checks}
        ]
        if elsewhere:
            logger.warning(
                "PRODREADY_HEALTHZ_CHECKS names %s, which cannot judge in the running server "
                "(see `flask readiness --list`): /healthz reports them as skipped and cannot "
                "fail on them",
                ", ".join(elsewhere),
            )
        state = AppState(settings, registry)
        state.config_at_init = dict(app.config)
        app.extensions[EXTENSION_KEY] = state

        report = ReportEndpoint(app, state)
        app.register_blueprint(make_blueprint(app, settings, report))
        app.wsgi_app = ProdReadyMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, app, state, report
        )
        app.cli.add_command(readiness_command)
        with self._lock:
            self._states.add(state)
            for name, engine in [
                *self._engines.items(),
                *self._pending.pop(app, AddedEngines()).items(),
            ]:
                state.engines.add(name, engine)


def _require_engine(engine: Any) -> None:
    """``TypeError`` unless ``engine`` is a (synchronous) SQLAlchemy engine."""
    try:
        from sqlalchemy.engine import Engine
    except ImportError:
        raise TypeError(
            "add_engine takes a SQLAlchemy engine, and SQLAlchemy is not installed"
        ) from None
    if not isinstance(engine, Engine):
        why = (
            " (an async engine: the database checks connect with a synchronous driver call)"
            if hasattr(engine, "sync_engine")
            else ""
        )
        raise TypeError(
            "add_engine takes a sqlalchemy.engine.Engine, as sqlalchemy.create_engine "
            f"returns, not {type(engine).__qualname__}{why}"
        )
