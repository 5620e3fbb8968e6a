"""flask-prodready: a Flask extension that lets a running app diagnose its own
production readiness (``/healthz``, a protected ``/_readiness`` report, and
``flask readiness`` for CI).

The package reads like its architecture: :mod:`.engine` (findings, registry, runner,
redaction, cache, settings, observation, per-app state), the front ends (:mod:`.web`,
:mod:`.cli`, with :mod:`.render` and the :mod:`.remote` client), and :mod:`.checks`, one
module per area. :mod:`.extension` wires them together.

Importing this package is cheap: its public names are loaded on first use (so the
pytest plugin, which pytest imports in every run of a project that has the package,
costs nothing to a run that does not use it), and SQLAlchemy, sentry-sdk, psutil and
gunicorn are only imported by the checks that need them, when they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .engine.context import CheckContext
    from .engine.findings import Finding, Level, Report, Status
    from .engine.registry import CLI, LIVE, REMOTE, Check, Mode, check
    from .extension import ProdReady

#: Where each public name lives, imported when it is first asked for.
_PUBLIC = {
    "CheckContext": ".engine.context",
    "Finding": ".engine.findings",
    "Level": ".engine.findings",
    "Report": ".engine.findings",
    "Status": ".engine.findings",
    "CLI": ".engine.registry",
    "LIVE": ".engine.registry",
    "REMOTE": ".engine.registry",
    "Check": ".engine.registry",
    "Mode": ".engine.registry",
    "check": ".engine.registry",
    "ProdReady": ".extension",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = [
    "CLI",
    "LIVE",
    "REMOTE",
    "Check",
    "CheckContext",
    "Finding",
    "Level",
    "Mode",
    "ProdReady",
    "Report",
    "Status",
    "__version__",
    "check",
]
