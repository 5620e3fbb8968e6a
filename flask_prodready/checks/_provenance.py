"""Where a debug, testing or environment setting came from, judged for the real server.

The ``flask`` command loads ``.flaskenv`` and ``.env`` (python-dotenv, each found from
the current folder upward; ``.env`` wins; a value only fills a variable the process
does not have) before it creates the app. Flask then seeds ``DEBUG`` from
``FLASK_DEBUG`` (``ENV``, and ``DEBUG`` too, from ``FLASK_ENV`` before Flask 2.3), and
``from_prefixed_env()`` copies ``FLASK_<KEY>`` into ``<KEY>``. gunicorn and uWSGI read
no dotenv file: a value that only a dotenv file gave the ``flask`` command is not one
the production server runs with, and ``config.debug``, ``config.testing`` and
``config.environment`` name the file instead of reporting the value as the server's.

A value counts as the file's when the process holds exactly what the file says and the
run is the command line. One set in the shell to the same value cannot be told apart.
Live, inside the server, what the process holds is what it runs with, whoever put it
there (an app that calls ``load_dotenv()`` itself), so nothing is set aside.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flask.helpers

from ..engine.context import CheckContext
from ..engine.registry import CLI, Mode

#: The default dotenv files of the ``flask`` command, the later winning (``flask.cli``).
DOTENV_FILES = (".flaskenv", ".env")
#: Values of ``FLASK_DEBUG`` that Flask reads as off (``flask.helpers.get_debug_flag``).
FALSE_WORDS = frozenset({"0", "false", "no"})
#: ``from_prefixed_env()``'s default prefix: ``FLASK_TESTING`` becomes ``TESTING``.
PREFIX = "FLASK_"
#: Flask before 2.3 turns debug on for ``FLASK_ENV=development`` and seeds ``ENV`` from
#: it; 2.3 removed both, and ``get_env`` with them.
READS_FLASK_ENV = hasattr(flask.helpers, "get_env")


@dataclass(frozen=True)
class EnvValue:
    """A variable the process holds, and the dotenv file it came from, if only from one.

    ``dotenv_file`` is the file's path relative to the current folder when the ``flask``
    command loaded the value from it and nothing else set it; ``None`` means the process
    environment (the shell, the service manager, the app itself).
    """

    name: str
    value: str
    dotenv_file: str | None = None

    def __str__(self) -> str:
        return f"{self.name}={self.value!r}"

    @property
    def observed(self) -> dict[str, str]:
        """The variable, its value and its file (when from one), for a finding's ``observed``."""
        seen = {self.name: self.value}
        if self.dotenv_file is not None:
            seen["file"] = self.dotenv_file
        return seen


def flask_dotenv_values() -> dict[str, tuple[str, str]]:
    """What the ``flask`` command loads from the default dotenv files here:
    ``{name: (value, file)}``, the file relative to the current folder.

    Empty when ``FLASK_SKIP_DOTENV`` turns loading off or python-dotenv is not
    installed (then Flask loaded nothing either).
    """
    skip = os.environ.get("FLASK_SKIP_DOTENV")
    if skip and skip.lower() not in FALSE_WORDS:
        return {}
    try:
        import dotenv
    except ImportError:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for name in DOTENV_FILES:
        path = dotenv.find_dotenv(name, usecwd=True)
        if not path:
            continue
        try:
            values = dotenv.dotenv_values(path, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # unreadable: Flask could not have loaded it either
        shown = os.path.relpath(path)
        for key, value in values.items():
            if value is not None:
                found[key] = (value, shown)
    return found


class Provenance:
    """Where the variables of one run came from: read once per run (``for_run``)."""

    def __init__(self, mode: Mode, dotenv_values: Mapping[str, tuple[str, str]] | None = None):
        if dotenv_values is None:
            dotenv_values = flask_dotenv_values() if mode == CLI else {}
        self._dotenv = dict(dotenv_values)

    @classmethod
    def for_run(cls, ctx: CheckContext) -> Provenance:
        """The run's one :class:`Provenance`, shared by its checks."""
        return ctx.shared(cls, lambda: cls(ctx.mode))

    def variable(self, name: str) -> EnvValue | None:
        """``name`` as the process holds it and where it came from; ``None`` when unset."""
        value = os.environ.get(name)
        if value is None:
            return None
        loaded = self._dotenv.get(name)
        return EnvValue(name, value, loaded[1] if loaded and loaded[0] == value else None)

    def debug_flag(self) -> EnvValue | None:
        """The variable that turns Flask's debug flag on, as Flask reads it
        (``get_debug_flag``); ``None`` when debug is not asked for."""
        flag = os.environ.get("FLASK_DEBUG")
        if flag:
            return None if flag.lower() in FALSE_WORDS else self.variable("FLASK_DEBUG")
        if READS_FLASK_ENV and os.environ.get("FLASK_ENV") == "development":
            return self.variable("FLASK_ENV")
        return None

    def config_from_dotenv(self, key: str, value: Any) -> EnvValue | None:
        """The dotenv-only variable Flask gave config ``key`` its ``value`` from, if any:
        ``DEBUG`` from the debug flag, ``ENV`` from ``FLASK_ENV`` (Flask before 2.3),
        any key from ``FLASK_<KEY>`` as ``from_prefixed_env()`` copies it."""
        sources: list[EnvValue | None] = []
        if key == "DEBUG" and value:
            sources.append(self.debug_flag())
        if key == "ENV" and READS_FLASK_ENV:
            sources.append(self._equal(self.variable("FLASK_ENV"), value))
        sources.append(self._equal(self.variable(PREFIX + key), value, parse=True))
        return next((s for s in sources if s is not None and s.dotenv_file is not None), None)

    @staticmethod
    def _equal(source: EnvValue | None, value: Any, *, parse: bool = False) -> EnvValue | None:
        if source is None:
            return None
        if source.value == value:
            return source
        if parse:
            try:
                parsed = json.loads(source.value)  # as from_prefixed_env() reads it
            except ValueError:
                return None
            if parsed == value and type(parsed) is type(value):
                return source
        return None
