"""What a check sees: the app, the mode it runs in, and what the server observed.

One :class:`RunEnvironment` is built per run and shared; each check gets its own
:class:`CheckContext` with ``finding()`` and ``skip()`` bound to its id and level.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from .findings import Finding, Level

if TYPE_CHECKING:
    from flask import Flask

    from .observation import TrafficSnapshot
    from .registry import Check
    from .server import GunicornSettings
    from .settings import Settings


class CheckSkipped(Exception):
    """Raised by ``ctx.skip(reason)``: the check cannot judge here."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RunEnvironment:
    """Everything a run knows about where it runs, shared by all its checks.

    ``server_software`` is the WSGI ``SERVER_SOFTWARE`` of the request that asked for
    the report (``None`` from the CLI). ``gunicorn`` holds gunicorn's resolved settings
    when known. ``observation`` is the live traffic record, and ``options`` carries
    front-end switches such as the CLI's ``--audit``; ``check_ids`` is the whole catalogue
    and ``run_ids`` the checks of this run (set by the runner), so checks that need the
    same answer from a server can ask for it once.
    ``config_at_init`` is the app's config as ``init_app`` saw it: the ``flask`` command
    overwrites ``DEBUG`` from ``FLASK_DEBUG`` after the factory returns.
    """

    app: Flask
    mode: str
    settings: Settings
    server_software: str | None = None
    environ: Mapping[str, Any] = field(default_factory=dict)
    gunicorn: GunicornSettings | None = None
    observation: TrafficSnapshot | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    check_ids: frozenset[str] = frozenset()
    run_ids: frozenset[str] | None = None
    config_at_init: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckContext:
    """The argument every check function receives."""

    env: RunEnvironment
    check: Check
    deadline: float

    @property
    def app(self) -> Flask:
        return self.env.app

    @property
    def config(self) -> Mapping[str, Any]:
        return self.env.app.config

    @property
    def mode(self) -> str:
        return self.env.mode

    @property
    def settings(self) -> Settings:
        return self.env.settings

    @property
    def server_software(self) -> str | None:
        return self.env.server_software

    @property
    def gunicorn(self) -> GunicornSettings | None:
        """gunicorn's resolved settings: of the running worker (live), of the file given with
        ``--gunicorn-config`` (CLI), else ``None``. ``.source`` says which."""
        return self.env.gunicorn

    @property
    def observation(self) -> TrafficSnapshot | None:
        """What this worker's server received and sent so far (live only, else ``None``)."""
        return self.env.observation

    @property
    def options(self) -> Mapping[str, Any]:
        return self.env.options

    @property
    def config_at_init(self) -> Mapping[str, Any]:
        return self.env.config_at_init

    @property
    def check_ids(self) -> frozenset[str]:
        """Every check id registered on this app (built-in, entry points, custom)."""
        return self.env.check_ids

    @property
    def run_ids(self) -> frozenset[str]:
        """The ids of the checks in this run (this check's alone when not known)."""
        return self.env.run_ids if self.env.run_ids is not None else frozenset({self.check.id})

    def time_left(self) -> float:
        """Seconds until this check is reported as timed out (for bounding loops and I/O)."""
        return max(0.0, self.deadline - time.monotonic())

    def finding(
        self,
        message: str,
        *,
        hint: str | None = None,
        level: Level | str | None = None,
        observed: Any = None,
    ) -> Finding:
        """A finding of this check; hint and level default to the check's own."""
        return Finding(
            id=self.check.id,
            level=self.check.level if level is None else Level.parse(level),
            message=message,
            hint=self.check.hint if hint is None else hint,
            tags=self.check.tags,
            observed=observed,
        )

    def skip(self, reason: str) -> NoReturn:
        """Stop here and report this check as skipped because it cannot judge."""
        raise CheckSkipped(reason)
