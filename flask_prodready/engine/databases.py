"""SQLAlchemy engines an app keeps without Flask-SQLAlchemy, handed over by name.

``ProdReady.add_engine`` puts them here: in the app's :class:`~.state.AppState`, or on
the extension for every app it serves. The ``database.*`` checks read them beside
Flask-SQLAlchemy's engines. The engines are opaque here: this module never imports
SQLAlchemy, and checks what a name and an engine may be only against each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any


class AddedEngines:
    """Engines by name: one engine per name, one name per engine, safe across threads."""

    def __init__(self, engines: Iterable[tuple[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, Any] = {}
        for name, engine in engines:
            self.add(name, engine)

    def conflict(self, name: str, engine: Any) -> str | None:
        """Why ``engine`` cannot be added as ``name`` (``None``: it can, or already is)."""
        with self._lock:
            return self._conflict(name, engine)

    def add(self, name: str, engine: Any) -> None:
        """Hold ``engine`` as ``name``; ``ValueError`` when either is taken by another."""
        with self._lock:
            problem = self._conflict(name, engine)
            if problem is not None:
                raise ValueError(problem)
            self._engines[name] = engine

    def _conflict(self, name: str, engine: Any) -> str | None:
        held = self._engines.get(name)
        if held is engine:
            return None
        if held is not None:
            return (
                f"an engine named {name!r} is already handed over; each name names one "
                "engine (choose another name)"
            )
        for other, known in self._engines.items():
            if known is engine:
                return f"this engine is already handed over as {other!r}"
        return None

    def items(self) -> list[tuple[str, Any]]:
        """(name, engine) of every engine, sorted by name."""
        with self._lock:
            return sorted(self._engines.items())

    def passwords(self) -> list[str]:
        """The passwords of the engines' URLs: secrets to mask in every output, like those
        of the URLs in the app's config."""
        found = []
        for _, engine in self.items():
            password = getattr(getattr(engine, "url", None), "password", None)
            if password:
                found.append(str(password))
        return found
