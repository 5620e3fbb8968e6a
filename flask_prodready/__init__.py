"""flask-prodready: a Flask extension that lets a running app diagnose its own
production readiness (``/healthz``, a protected ``/_readiness`` report, and
``flask readiness`` for CI).

Importing this package is cheap: SQLAlchemy, sentry-sdk, psutil and gunicorn are only
imported by the checks that need them, when they run.
"""

from __future__ import annotations

from .context import CheckContext
from .extension import ProdReady
from .findings import Finding, Level, Report, Status
from .registry import CLI, LIVE, REMOTE, Check, check

__all__ = [
    "CLI",
    "LIVE",
    "REMOTE",
    "Check",
    "CheckContext",
    "Finding",
    "Level",
    "ProdReady",
    "Report",
    "Status",
    "check",
]
__version__ = "0.1.0"
