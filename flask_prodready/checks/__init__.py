"""The built-in checks, one module per area of the catalogue (``config``, ``cookies`` ...).

Each public module of this package declares its checks with ``@check(...)`` at module
level; :func:`builtin_checks` finds them, so a new area is a new module and nothing
else. Optional libraries are imported inside the check functions, never here.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import Check
from ._planned import PLANNED_CHECKS


def builtin_checks() -> list[Check]:
    """Every built-in check, then the reserved ids not built yet."""
    found: list[Check] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.extend(value for value in vars(module).values() if isinstance(value, Check))
    built = {item.id for item in found}
    return found + [item for item in PLANNED_CHECKS if item.id not in built]
