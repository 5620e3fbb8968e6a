"""The built-in checks, one module (or package) per area of the catalogue (``config``,
``cookies``, ``database`` ...).

Each public module of this package declares its checks with ``@check(...)`` at module
level; :func:`builtin_checks` finds them, so a new area is a new module and nothing
else. This is the one place outside the checks that knows where they live. Optional
libraries are imported inside the check functions, never here.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..engine.registry import Check


def builtin_checks() -> list[Check]:
    """Every built-in check, area by area."""
    found: list[Check] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.extend(value for value in vars(module).values() if isinstance(value, Check))
    return found
