"""flask-prodready: a Flask extension that lets a running app diagnose its own
production readiness (``/healthz``, a protected ``/_readiness`` report, and
``flask readiness`` for CI).

The package reads like its architecture: :mod:`.engine` (findings, registry, runner,
redaction, cache, settings, observation, per-app state), the front ends (:mod:`.web`,
:mod:`.cli`, with :mod:`.render` and the :mod:`.remote` client), and :mod:`.checks`, one
module per area. :mod:`.extension` wires them together.

Importing this package is cheap: SQLAlchemy, sentry-sdk, psutil and gunicorn are only
imported by the checks that need them, when they run.
"""

from __future__ import annotations

from ._version import __version__
from .engine.context import CheckContext
from .engine.findings import Finding, Level, Report, Status
from .engine.registry import CLI, LIVE, REMOTE, Check, Mode, check
from .extension import ProdReady

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
