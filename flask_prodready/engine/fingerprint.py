"""The configuration fingerprint: one short hash, equal on every worker and replica that
runs the same configuration with the same versions, different when either differs.

It covers every key of ``app.config`` (the app's own, Flask's and every extension's) and
the installed versions of Flask, flask-prodready and the app's own distribution. A secret
counts only by its presence: its key contributes ``"<set>"`` or ``"<unset>"``, never its
value nor anything computed from it, so the fingerprint tells nobody anything about a
secret and rotating one does not change it. A key is a secret when its name names one
(:func:`~.redaction.is_secret_name`: ``SECRET_KEY``, ``*_PASSWORD``, ``*_TOKEN`` ...) or
when the report's redactor would mask anything in its value (a database URL with a
password, a value that holds a secret of the environment): what the reports hide, the
fingerprint leaves out.

Values are rendered so that every process of one deploy renders them alike: JSON scalars
and containers as themselves (tuples as lists, sets as sorted lists, mapping keys
sorted), a ``timedelta`` as its seconds, a path as its text, anything else by its type
name alone (an object's ``repr`` may hold a memory address). No key is left out by name:
none of Flask's keys differs between the processes of one deploy, a per-process object
(a lock, a client) counts by its type, and the one secret every deploy has per
environment, ``PRODREADY_TOKEN``, counts by presence like every secret.

The fingerprint is computed at the first report of a process and kept for the process's
life (:meth:`~.state.AppState.fingerprint`): an app factory may change the config after
``init_app``, but nothing changes it while the app serves.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .redaction import UnsafeValue, is_secret_name
from .service import distribution_of

if TYPE_CHECKING:
    from flask import Flask

    from .redaction import Redactor

#: Hex digits of the sha256 shown: 64 bits, plenty to tell a fleet's configurations apart.
DIGITS = 16
#: What a secret contributes instead of its value.
SET = "<set>"
UNSET = "<unset>"
#: Deepest nesting rendered; a deeper value counts by its type name.
MAX_DEPTH = 16


@dataclass(frozen=True)
class Fingerprint:
    """The configuration's fingerprint and the versions it covers."""

    #: sha256 of the canonical JSON of the configuration and versions, first 16 hex digits.
    digest: str
    flask: str
    prodready: str
    #: The app's distribution name when it is installed as one, else its import name.
    app: str
    #: The installed version of the app's distribution; ``None`` when it is none.
    app_version: str | None

    def versions(self) -> dict[str, str]:
        """``{"flask": ..., "flask-prodready": ..., <app distribution>: ...}`` (the last only
        when the app is an installed distribution)."""
        found = {"flask": self.flask, "flask-prodready": self.prodready}
        if self.app_version is not None:
            found.setdefault(self.app, self.app_version)
        return found


def compute_fingerprint(app: Flask, redactor: Redactor) -> Fingerprint:
    """The fingerprint of ``app``'s configuration and versions; ``redactor`` is the one its
    reports are redacted with, and decides what else is a secret."""
    app_name, app_version = app_distribution(app)
    fingerprint = Fingerprint(
        digest="",
        flask=_installed_version("flask") or "unknown",
        prodready=__version__,
        app=app_name,
        app_version=app_version,
    )
    canonical = canonical_json(
        {
            "app": app_name,
            "config": canonical_config(app.config, redactor),
            "versions": fingerprint.versions(),
        }
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:DIGITS]
    return Fingerprint(digest, fingerprint.flask, __version__, app_name, app_version)


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys, no spaces and ASCII only: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_config(config: Mapping[Any, Any], redactor: Redactor) -> dict[str, Any]:
    """Every string key of ``config`` with its rendered value, secrets by presence only.
    A key that is no string (config keys are names) is left out."""
    rendered: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            continue
        shown = render_value(value)
        if is_secret_name(key) or _masks(redactor, shown):
            shown = UNSET if _is_unset(value) else SET
        rendered[key] = shown
    return rendered


def _masks(redactor: Redactor, shown: Any) -> bool:
    """Whether the redactor would mask anything in a rendered value (one it cannot walk
    counts as masked: it is left out rather than risked)."""
    try:
        return bool(redactor.value(shown) != shown)
    except (UnsafeValue, RecursionError):
        return True


def _is_unset(value: Any) -> bool:
    """``None`` and empty values: a secret that is not there."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, bytearray, Mapping, list, tuple, set, frozenset)):
        return len(value) == 0
    return False


def render_value(value: Any, depth: int = 0, path: frozenset[int] = frozenset()) -> Any:
    """``value`` as JSON data that is the same in every process holding an equal value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # an enum's member that is a str: its plain value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, os.PathLike):
        path_text = os.fspath(value)
        return path_text if isinstance(path_text, str) else _type_name(value)
    containers = (Mapping, list, tuple, set, frozenset)
    if isinstance(value, containers) and depth < MAX_DEPTH and id(value) not in path:
        inner = path | {id(value)}
        if isinstance(value, Mapping):
            if all(isinstance(k, str) for k in value):
                return {str(k): render_value(v, depth + 1, inner) for k, v in value.items()}
            return _type_name(value)
        items = [render_value(item, depth + 1, inner) for item in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=canonical_json)  # a set has no order of its own
        return items
    return _type_name(value)


def _type_name(value: Any) -> str:
    kind = type(value)
    return f"<{kind.__module__}.{kind.__qualname__}>"


def app_distribution(app: Flask) -> tuple[str, str | None]:
    """(name, version) of the installed distribution that provides the app's top-level
    package (as for the body's ``version``, engine/service.py); (the app's ``name``,
    ``None``) when none does (an app run from a checkout) or several do."""
    package = app.import_name.split(".", 1)[0]
    found = None if package == "__main__" else distribution_of(package)
    return found if found is not None else (app.name, None)


def _installed_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
