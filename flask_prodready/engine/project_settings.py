"""``[tool.prodready]`` of the project's ``pyproject.toml``: the defaults of ``flask readiness``.

The table is looked for from the current folder upward: the nearest ``pyproject.toml``
that has it is read (one without it is passed over), up to the file system's root::

    [tool.prodready]
    fail-level = "error"
    tags = ["security"]
    exclude = ["tls.http_redirect"]
    gunicorn-config = "deploy/gunicorn.conf.py"   # relative to this file's folder

    [tool.prodready.silenced]
    "config.trusted_hosts" = "nginx checks the Host header"
    "monitoring.error_tracking" = { reason = "errors go to journald", until = 2027-03-31 }

Options given on the command line win over the file. Anything the file gets wrong (a
file that is not TOML, an unknown key, a value of the wrong type, a bad date) raises
:class:`ProjectSettingsError` with one line naming the file and the key.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .findings import Level
from .silences import Silence, SilenceError, parse_silence

FILE_NAME = "pyproject.toml"
TABLE = "[tool.prodready]"
#: Every key the table may have (TOML's spelling, as in the command's options).
KEYS = ("exclude", "fail-level", "gunicorn-config", "silenced", "tags")


class ProjectSettingsError(ValueError):
    """``[tool.prodready]`` cannot be used; the message is one line naming file and key."""


@dataclass(frozen=True)
class ProjectSettings:
    """What ``[tool.prodready]`` sets; ``None`` (or empty) where it says nothing."""

    #: The ``pyproject.toml`` read, or ``None`` when no file up the tree has the table.
    path: Path | None = None
    fail_level: Level | None = None
    tags: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    #: Absolute, or as written when the file gave an absolute path.
    gunicorn_config: str | None = None
    silenced: Mapping[str, Silence] = field(default_factory=dict)


def _toml(path: Path) -> dict[str, Any]:
    # tomllib is in the standard library from Python 3.11; tomli is the same parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ProjectSettingsError(
            f"could not read {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    except ValueError as exc:  # TOMLDecodeError, or bytes that are not UTF-8
        detail = " ".join(str(exc).split())
        raise ProjectSettingsError(f"{path} is not valid TOML: {detail}") from None


def load_project_settings(start: Path | None = None) -> ProjectSettings:
    """``[tool.prodready]`` of the nearest ``pyproject.toml`` at or above ``start`` (the
    current folder) that has the table; empty settings when none has."""
    folder = Path.cwd() if start is None else start
    for candidate in (folder, *folder.parents):
        path = candidate / FILE_NAME
        if not path.is_file():
            continue
        tool = _toml(path).get("tool")
        if isinstance(tool, dict) and "prodready" in tool:
            return read_table(tool["prodready"], path)
    return ProjectSettings()


def _where(key: str, path: Path) -> str:
    return f"{key} in {TABLE} of {path}"


def _string_list(table: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProjectSettingsError(
            f"{_where(key, path)} must be a list of non-empty strings, got {value!r}"
        )
    return tuple(value)


def read_table(table: object, path: Path) -> ProjectSettings:
    """Check ``[tool.prodready]`` (``table``, read from ``path``) and make it settings."""
    if not isinstance(table, dict):
        raise ProjectSettingsError(f"{TABLE} of {path} must be a table, got {table!r}")
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise ProjectSettingsError(
                f"unknown key {key!r} in {TABLE} of {path}{suggestion}; "
                f"the keys are {', '.join(KEYS)}"
            )

    fail_level = None
    if "fail-level" in table:
        value = table["fail-level"]
        levels = [level.value for level in Level]
        if not isinstance(value, str) or value.lower() not in levels:
            raise ProjectSettingsError(
                f"{_where('fail-level', path)} must be one of {', '.join(levels)}, got {value!r}"
            )
        fail_level = Level.parse(value)

    gunicorn_config = None
    if "gunicorn-config" in table:
        value = table["gunicorn-config"]
        if not isinstance(value, str) or not value.strip():
            raise ProjectSettingsError(
                f"{_where('gunicorn-config', path)} must be a file path (a string), got {value!r}"
            )
        # Relative to the file that says it, wherever the command runs.
        gunicorn_config = os.path.join(path.parent, value)

    silenced: dict[str, Silence] = {}
    entries = table.get("silenced", {})
    if not isinstance(entries, dict):
        raise ProjectSettingsError(
            f"{_where('silenced', path)} must be a table of check id = reason, got {entries!r}"
        )
    origin = f"{TABLE[:-1]}.silenced] of {_shown(path)}"
    for check_id, value in entries.items():
        try:
            silenced[check_id] = parse_silence(
                value, f"{TABLE[:-1]}.silenced] {check_id!r}", origin=origin
            )
        except SilenceError as exc:
            raise ProjectSettingsError(f"{exc} (in {path})") from None

    return ProjectSettings(
        path=path,
        fail_level=fail_level,
        tags=_string_list(table, "tags", path),
        exclude=_string_list(table, "exclude", path),
        gunicorn_config=gunicorn_config,
        silenced=silenced,
    )


def _shown(path: Path) -> str:
    """``path`` as findings name it: relative to the current folder when that is shorter."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return relative if len(relative) < len(str(path)) else str(path)
