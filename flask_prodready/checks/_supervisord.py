"""supervisord's configuration, read as supervisord reads it, for the ``supervision.*`` checks.

supervisord takes its file from ``-c FILE`` (else the first of its search paths that
exists), reads it with :mod:`configparser` (``;`` and ``#`` start inline comments), then
the files its ``[include] files=`` globs name, relative to the main file's folder.
``[program:NAME]`` sections hold ``command``, ``autostart`` (default true),
``autorestart`` (default ``unexpected``) and ``environment``.
"""

from __future__ import annotations

import configparser
import glob
import os
import platform
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: supervisord's search paths, after ``-c`` (``HERE`` is the folder above its executable's).
SEARCH_PATHS = (
    "{here}/etc/supervisord.conf",
    "{here}/supervisord.conf",
    "supervisord.conf",
    "etc/supervisord.conf",
    "/etc/supervisord.conf",
    "/etc/supervisor/supervisord.conf",
)
#: How supervisord reads booleans (``supervisor.datatypes``).
TRUE_WORDS = frozenset({"yes", "true", "on", "1"})
FALSE_WORDS = frozenset({"no", "false", "off", "0"})
#: ``%(name)s`` expansions in supervisord's values.
_EXPANSION = re.compile(r"%\(([A-Za-z0-9_]+)\)[sd]")
#: ``KEY=`` at the start of an ``environment=`` entry (values are quoted or plain).
_ENVIRONMENT_KEY = re.compile(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")
#: Files a program's shell command reads variables from (``source FILE``, ``. FILE``).
_SOURCED = re.compile(r"(?:^|[;&|(\s'\"])(?:source|\.)\s+([^\s;&|)'\"]+)")


@dataclass(frozen=True)
class Program:
    """One ``[program:NAME]`` of a supervisord configuration; ``files`` says which file
    set each option (an option set in several files: the last)."""

    name: str
    options: Mapping[str, str]
    files: Mapping[str, str] = field(default_factory=dict)

    def option(self, key: str, default: str) -> str:
        return self.options.get(key, default).strip()

    @property
    def autostart(self) -> bool:
        return self.option("autostart", "true").lower() not in FALSE_WORDS

    @property
    def autorestart(self) -> str:
        """``false``, ``unexpected`` or ``true``, as supervisord reads the value."""
        value = self.option("autorestart", "unexpected").lower()
        if value in TRUE_WORDS:
            return "true"
        return "false" if value in FALSE_WORDS else value

    def where(self, key: str | None = None) -> str:
        """The file that set ``key`` (or holds the section)."""
        return self.files.get(key or "", "") or self.files.get("", "")

    def environment_keys(self) -> list[str]:
        """The names ``environment=`` sets (quoted values blanked first)."""
        value = re.sub(r"\"[^\"]*\"|'[^']*'", '""', self.options.get("environment", ""))
        return _ENVIRONMENT_KEY.findall(value)

    def sourced_files(self) -> list[str]:
        """Files the command reads variables from: ``source FILE``/``. FILE`` in a shell
        command, ``--env-file FILE``."""
        command = self.options.get("command", "")
        found = _SOURCED.findall(command)
        found += re.findall(r"--env-file[=\s]+([^\s;&|)'\"]+)", command)
        base = Path(self.options.get("directory") or os.path.dirname(self.where()))
        return [str(base / path) for path in found]


@dataclass(frozen=True)
class SupervisordConfig:
    """A supervisord configuration: the files read and the programs they define."""

    path: str
    files: tuple[str, ...]
    programs: tuple[Program, ...]


def config_path(cmdline: Sequence[str], cwd: str | None) -> str | None:
    """The configuration a supervisord started with ``cmdline`` in ``cwd`` reads."""
    arguments = list(cmdline)
    for index, argument in enumerate(arguments):
        value = None
        if argument in ("-c", "--configuration") and index + 1 < len(arguments):
            value = arguments[index + 1]
        elif argument.startswith("--configuration="):
            value = argument.split("=", 1)[1]
        elif argument.startswith("-c") and len(argument) > 2:
            value = argument[2:]
        if value:
            return os.path.join(cwd or "/", os.path.expanduser(value))
    executable = next((a for a in arguments if "supervisord" in os.path.basename(a)), "")
    here = os.path.dirname(os.path.dirname(executable))
    for pattern in SEARCH_PATHS:
        candidate = os.path.join(cwd or "/", pattern.format(here=here))
        if os.path.isfile(candidate):
            return candidate
    return None


def _expand(value: str, expansions: Mapping[str, str]) -> str:
    return _EXPANSION.sub(lambda m: expansions.get(m[1], m[0]), value)


def _parser() -> configparser.RawConfigParser:
    return configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)


def read_config(path: str, environ: Mapping[str, str] | None = None) -> SupervisordConfig:
    """The configuration at ``path`` and its includes; raises ``OSError`` or
    ``configparser.Error``."""
    environ = os.environ if environ is None else environ
    expansions = {f"ENV_{k}": v for k, v in environ.items()}
    expansions["host_node_name"] = platform.node()
    main = os.path.abspath(path)
    parser = _parser()
    with open(main, encoding="utf-8") as handle:
        parser.read_file(handle, main)
    parsed = [(main, parser)]
    if parser.has_option("include", "files"):
        here = os.path.dirname(main)
        patterns = _expand(parser.get("include", "files"), {**expansions, "here": here}).split()
        for pattern in patterns:
            for name in sorted(glob.glob(os.path.join(here, pattern))):
                included = _parser()
                with open(name, encoding="utf-8") as handle:
                    included.read_file(handle, name)
                parsed.append((name, included))
    options: dict[str, dict[str, str]] = {}
    files: dict[str, dict[str, str]] = {}
    for name, each in parsed:
        here = os.path.dirname(name)
        for section in each.sections():
            if not section.startswith("program:"):
                continue
            program = section.split(":", 1)[1]
            values = {"here": here, "program_name": program, "group_name": program,
                      "process_num": "0", **expansions}  # fmt: skip
            files.setdefault(program, {"": name})
            for key, value in each.items(section):
                options.setdefault(program, {})[key] = _expand(value, values)
                files[program][key] = name
    programs = tuple(Program(n, options.get(n, {}), files[n]) for n in files)
    return SupervisordConfig(main, tuple(name for name, _ in parsed), programs)


def _same_command(command: str, cmdline: Sequence[str]) -> bool:
    """Whether a program's ``command`` is what the process ``cmdline`` runs (the
    executable compared by file name: supervisord looks it up on ``PATH``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words or not cmdline:
        return False
    return os.path.basename(words[0]) == os.path.basename(cmdline[0]) and list(words[1:]) == list(
        cmdline[1:]
    )


def find_program(
    config: SupervisordConfig,
    environ: Mapping[str, str],
    cmdlines: Sequence[Sequence[str]],
) -> Program | None:
    """The program that runs the server: the one named by the variables supervisord
    sets in its children (``SUPERVISOR_PROCESS_NAME``, ``SUPERVISOR_GROUP_NAME``), else
    the one whose command is one of ``cmdlines`` (the server's and its ancestors')."""
    by_name = {program.name: program for program in config.programs}
    for variable in ("SUPERVISOR_PROCESS_NAME", "SUPERVISOR_GROUP_NAME"):
        named = by_name.get(environ.get(variable, ""))
        if named is not None:
            return named
    for cmdline in cmdlines:
        for program in config.programs:
            if _same_command(program.option("command", ""), cmdline):
                return program
    return None
