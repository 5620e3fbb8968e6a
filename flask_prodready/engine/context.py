"""What a check sees: the app, the mode it runs in, and what the server observed.

One :class:`RunEnvironment` is built per run and shared; each check gets its own
:class:`CheckContext` with ``finding()`` and ``skip()`` bound to its id and level.
What a front end hands to checks is typed here (:class:`RemoteTarget`, ``audit``,
``gunicorn``), and what checks of one run share (one database connection per engine)
lives in the run's :class:`RunResources`, asked for by type.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .findings import Finding, Level

if TYPE_CHECKING:
    from flask import Flask

    from .evidence import Evidence
    from .registry import Check, Mode
    from .server import GunicornSettings
    from .settings import Settings

R = TypeVar("R")


class CheckSkipped(Exception):
    """Raised by ``ctx.skip(reason)``: the check cannot judge here."""

    def __init__(self, reason: str, asked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.asked = asked


@dataclass(frozen=True)
class RemoteTarget:
    """What remote mode hands to the ``tls.*`` checks: the report URL it fetched, the CA
    file it trusts (``None``: the system's), its time limit and the plain-http port."""

    url: str
    cafile: str | None = None
    timeout: float = 10.0
    http_port: int | None = None


class RunResources:
    """What the checks of one run share, one object per type, made on first use.

    The database checks ask for one connection per engine and run this way, instead of
    each opening its own. An object with a ``close()`` method is closed when the run
    ends (hung checks may still hold it: closing must be safe from another thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[type[Any], Any] = {}

    def get(self, kind: type[R], make: Callable[[], R] | None = None) -> R:
        """The run's one ``kind`` (``make()``, or ``kind()`` when not given, the first time)."""
        with self._lock:
            found = self._made.get(kind)
            if found is None:
                found = self._made[kind] = (make or kind)()
            return found

    def close(self) -> None:
        """Close what was made (errors are the resource's own business, never the run's)."""
        with self._lock:
            made = list(self._made.values())
            self._made.clear()
        for item in made:
            closer = getattr(item, "close", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    closer()


@dataclass(frozen=True)
class RunEnvironment:
    """Everything a run knows about where it runs, shared by all its checks.

    ``server_software`` is the WSGI ``SERVER_SOFTWARE`` of the request that asked for
    the report (``None`` from the CLI). ``gunicorn`` holds gunicorn's resolved settings
    when known. ``observation`` is the live traffic record. ``audit`` is the CLI's
    ``--audit`` and ``remote`` what remote mode fetched; ``check_ids`` is the whole
    catalogue and ``check_aliases`` its former ids. ``config_at_init`` is the app's config
    as ``init_app`` saw it: the ``flask`` command overwrites ``DEBUG`` from
    ``FLASK_DEBUG`` after the factory returns.
    """

    app: Flask
    mode: Mode
    settings: Settings
    server_software: str | None = None
    environ: Mapping[str, Any] = field(default_factory=dict)
    gunicorn: GunicornSettings | None = None
    observation: Evidence | None = None
    audit: bool = False
    remote: RemoteTarget | None = None
    check_ids: frozenset[str] = frozenset()
    check_aliases: Mapping[str, str] = field(default_factory=dict)
    #: Files of the host named for this run (``--nginx-config``, ``--systemd-unit``, or
    #: their ``PRODREADY_*`` settings); ``None`` lets the checks look where they live.
    nginx_config: str | None = None
    systemd_unit: str | None = None
    config_at_init: Mapping[str, Any] = field(default_factory=dict)
    resources: RunResources = field(default_factory=RunResources, compare=False)


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
    def mode(self) -> Mode:
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
    def observation(self) -> Evidence | None:
        """What the server's workers received and sent over the evidence window (live
        only, else ``None``)."""
        return self.env.observation

    @property
    def audit(self) -> bool:
        """Whether the command line asked for the vulnerability audit (``--audit``)."""
        return self.env.audit

    @property
    def remote(self) -> RemoteTarget | None:
        """What remote mode fetched (``prodready --url``), else ``None``."""
        return self.env.remote

    @property
    def config_at_init(self) -> Mapping[str, Any]:
        return self.env.config_at_init

    @property
    def check_ids(self) -> frozenset[str]:
        """Every check id registered on this app (built-in, entry points, custom)."""
        return self.env.check_ids

    @property
    def nginx_config(self) -> str | None:
        """The nginx configuration file named for this run, if any."""
        return self.env.nginx_config

    @property
    def systemd_unit(self) -> str | None:
        """The systemd unit file named for this run, if any."""
        return self.env.systemd_unit

    @property
    def check_aliases(self) -> Mapping[str, str]:
        """Former ids of renamed checks, each with the id it now stands for."""
        return self.env.check_aliases

    def shared(self, kind: type[R], make: Callable[[], R] | None = None) -> R:
        """The one ``kind`` object the checks of this run share (see :class:`RunResources`)."""
        return self.env.resources.get(kind, make)

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

    def skip(self, reason: str, *, asked: bool = False) -> NoReturn:
        """Stop here and report this check as skipped because it cannot judge.

        ``asked=True`` when the run asked for this very judgment (``ctx.audit`` for an
        audit): the report is then ``unknown`` rather than a pass.
        """
        raise CheckSkipped(reason, asked)
