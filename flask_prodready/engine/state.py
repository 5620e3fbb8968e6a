"""The per-app state ProdReady keeps: settings, registry, runner, report cache, traffic.

Following the Flask extension pattern, nothing app-specific lives on the extension
object: ``init_app`` puts an :class:`AppState` in ``app.extensions["prodready"]``, and
the front ends read it from there (:func:`get_state`). It holds no reference back to
the extension, so the front ends depend on this module only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from . import log_errors
from .cache import ReportCache
from .context import RemoteTarget, RunEnvironment
from .databases import AddedEngines
from .evidence import Evidence
from .findings import Report, WorkerInfo
from .fingerprint import Fingerprint, compute_fingerprint
from .observation import TrafficRecord
from .redaction import Redactor
from .registry import LIVE, REMOTE, Check, Mode, Registry
from .runner import Runner
from .server import GUNICORN, GunicornSettings, live_gunicorn_settings, server_kind
from .service import service_info
from .settings import Settings
from .sharing import SharedEvidence, read_window
from .silences import active

if TYPE_CHECKING:
    from flask import Flask

#: The key of ``app.extensions`` under which an app's state lives.
EXTENSION_KEY = "prodready"
#: Extra seconds a caller waits beyond the check timeout before giving up on a shared run.
WAIT_MARGIN = 1.0


class AppState:
    """Everything ProdReady keeps for one app: settings, registry, runner and cache."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.runner = Runner()
        self.cache = ReportCache()
        self.hostname = socket.gethostname()
        self.traffic = TrafficRecord(window=settings.evidence_window)
        log_errors.watch(self.traffic)  # monitoring.errors_logged
        #: This worker's side of the evidence shared by the server's workers (set by the
        #: middleware on the worker's first request), and the pid it was set up in.
        self.shared: SharedEvidence | None = None
        self.shared_pid = 0
        self.config_at_init: dict[str, Any] = {}
        #: SQLAlchemy engines handed over with ``ProdReady.add_engine`` for this app.
        self.engines = AddedEngines()
        self._token_digest = (
            None if settings.token is None else hashlib.sha256(settings.token.encode()).digest()
        )
        self.healthz_checks = registry.select_names(settings.healthz_checks)
        #: (pid, fingerprint) of the configuration, computed at this process's first report.
        self._fingerprint: tuple[int, Fingerprint] | None = None

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
        mode: Mode | str,
        checks: list[Check] | None = None,
        tags: Iterable[str] = (),
        exclude: Iterable[str] = (),
        server_software: str | None = None,
        environ: Mapping[str, Any] | None = None,
        gunicorn: GunicornSettings | None = None,
        audit: bool = False,
        remote: RemoteTarget | None = None,
        nginx_config: str | None = None,
        systemd_unit: str | None = None,
        settings: Settings | None = None,
    ) -> Report:
        """Run the selected checks now (no cache) and assemble the report.

        Live under gunicorn, the worker's resolved settings are found here when not given.
        ``nginx_config`` and ``systemd_unit`` (the CLI's options) take the place of their
        ``PRODREADY_*`` settings. ``settings`` replaces the app's for this run (the CLI's,
        with the silences of ``pyproject.toml`` added).
        """
        mode = Mode(mode)
        settings = self.settings if settings is None else settings
        selected = self.registry.select(tags, exclude) if checks is None else checks
        if gunicorn is None and mode == LIVE and server_kind(server_software) == GUNICORN:
            gunicorn = live_gunicorn_settings()
        evidence = self.evidence() if mode == LIVE else None
        env = RunEnvironment(
            app=app,
            mode=mode,
            settings=settings,
            server_software=server_software,
            environ=dict(environ or {}),
            gunicorn=gunicorn,
            observation=evidence,
            audit=audit,
            remote=remote,
            check_ids=self.registry.ids,
            check_aliases=self.registry.aliases,
            nginx_config=nginx_config or settings.nginx_config,
            systemd_unit=systemd_unit or settings.systemd_unit,
            config_at_init=self.config_at_init,
        )
        redactor = Redactor.for_config(app.config, extra=self.engines.passwords())
        outcomes = self.runner.run(
            selected,
            env,
            timeout=self.settings.check_timeout,
            # An expired silence silences nothing (prodready.silence_expired reports it).
            silenced={
                self.registry.resolve(k): v
                for k, v in active(settings.silenced, date.today()).items()
            },
            redactor=redactor,
        )
        return Report(
            outcomes=outcomes,
            worker=WorkerInfo(pid=os.getpid(), hostname=self.hostname, server=server_software),
            generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            mode=mode.value,
            evidence=None if evidence is None else evidence.coverage(),
            service=service_info(app),
            # A remote report is another process's: the app here is a stand-in.
            fingerprint=None if mode == REMOTE else self.fingerprint(app, redactor),
        )

    def fingerprint(self, app: Flask, redactor: Redactor) -> Fingerprint:
        """The fingerprint of the app's configuration and versions, computed at this
        process's first report and kept: an app factory may still change the config after
        ``init_app``, nothing changes it while the app serves (engine/fingerprint.py)."""
        kept = self._fingerprint
        if kept is None or kept[0] != os.getpid():
            kept = self._fingerprint = (os.getpid(), compute_fingerprint(app, redactor))
        return kept[1]

    def evidence(self) -> Evidence:
        """The traffic of every live worker of this server over the evidence window."""
        buckets, workers, note = read_window(self.traffic, self.shared)
        return Evidence.merge(
            buckets, window=self.settings.evidence_window, workers=workers, note=note
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


def get_state(app: Flask) -> AppState:
    """The ProdReady state of ``app``; a clear error when ``init_app`` was not called."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise RuntimeError("ProdReady is not initialised on this app: call init_app(app) first")
    return state
