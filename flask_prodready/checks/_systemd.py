"""systemd units for the ``supervision.*`` checks: the unit-file format, where a unit and
its drop-ins live, what ``systemctl show`` says of a unit, and which unit a cgroup names.

The unit-file format (``systemd.syntax(7)``) looks like INI but a key may be repeated
(``EnvironmentFile=``, ``ExecReload=``), so :mod:`configparser` cannot read it;
:func:`parse_unit` is the small parser used instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where systemd looks for system units, highest priority first.
UNIT_FOLDERS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
)
#: What ``systemctl show`` is asked for.
SHOW_PROPERTIES = (
    "LoadState",
    "Type",
    "Restart",
    "ExecStart",
    "ExecReload",
    "ReloadSignal",
    "EnvironmentFiles",
    "UnitFileState",
    "FragmentPath",
    "DropInPaths",
)
#: Unit-file states in which systemd starts the unit at boot.
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "alias", "generated"})
#: ``Restart=`` values that leave a crashed server down.
NO_RESTART = frozenset({"no", "on-success"})
#: ``kill -HUP $MAINPID`` and its spellings (``-s HUP``, ``-SIGHUP``, ``-1``, ``${MAINPID}``).
_HUP_MAIN_PID = re.compile(
    r"(?:^|[\s/'\"])kill\s+(?:-s\s*|--signal[=\s]\s*|-)(?:SIG)?(?:HUP|1)\s+"
    r"[\"']?\$(?:MAINPID|\{MAINPID\})(?:[\s\"';]|$)"
)
#: The prefixes an ``Exec*=`` command may carry (``-``, ``@``, ``:``, ``+``, ``!``, ``!!``).
_EXEC_PREFIXES = "-@:+!"


@dataclass(frozen=True)
class Assignment:
    """One ``Key=value`` line of a unit file, with its section and where it was written."""

    section: str
    key: str
    value: str
    source: str
    line: int


def parse_unit(text: str, source: str = "<unit>") -> list[Assignment]:
    """Every assignment of a unit file, in file order, repeated keys included.

    As ``systemd.syntax(7)`` says: ``#`` and ``;`` start comment lines; ``[Section]``
    starts a section; ``Key=value`` is stripped around the key and the value (quotes are
    kept: each setting has its own quoting); a line ending in a backslash goes on with
    the next (the backslash becomes a space, comment lines in between are skipped).
    Lines without ``=`` and assignments before the first section are ignored, as systemd
    ignores them with a warning.
    """
    found: list[Assignment] = []
    section = ""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if pending and line.startswith(("#", ";")):
            continue
        if not pending:
            start = number
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        logical = " ".join([*pending, line]).strip()
        pending = []
        key, equals, value = logical.partition("=")
        if equals and section and key.strip():
            found.append(Assignment(section, key.strip(), value.strip(), source, start))
    if pending:  # a continuation at the end of the file
        key, equals, value = " ".join(pending).strip().partition("=")
        if equals and section and key.strip():
            found.append(Assignment(section, key.strip(), value.strip(), source, start))
    return found


class UnitFile:
    """A unit and its drop-ins, as systemd merges them: files in order, later settings win,
    and for a list setting an empty assignment (``EnvironmentFile=``) empties the list."""

    def __init__(self, assignments: Iterable[Assignment], sources: Sequence[str]) -> None:
        self.assignments = tuple(assignments)
        self.sources = tuple(sources)

    def values(self, section: str, key: str) -> list[str]:
        """Every value of a list setting, after the resets."""
        found: list[str] = []
        for item in self.assignments:
            if item.section == section and item.key == key:
                found = [] if not item.value else [*found, item.value]
        return found

    def value(self, section: str, key: str) -> str | None:
        """The value of a single setting: the last one assigned (``None``: unset or reset)."""
        values = self.values(section, key)
        return values[-1] if values else None


def _template(name: str) -> list[str]:
    """The template of an instance unit (``app@.service`` for ``app@1.service``)."""
    prefix, at, instance = name.partition("@")
    return [f"{prefix}@{instance[instance.rfind('.') :]}"] if at and "." in instance else []


def dropins(name: str, folders: Iterable[Path]) -> list[Path]:
    """The drop-ins of unit ``name`` (``NAME.d/*.conf``, and the template's for an
    instance ``app@1.service``) in ``folders``, in the order systemd applies them: by
    file name, a name in an earlier folder hiding the same name in a later one."""
    names = [name, *_template(name)]
    chosen: dict[str, Path] = {}
    for folder in folders:
        for unit_name in names:
            for path in sorted((folder / f"{unit_name}.d").glob("*.conf")):
                chosen.setdefault(path.name, path)
    return [chosen[key] for key in sorted(chosen)]


def load_unit(path: Path, folders: Sequence[Path] = ()) -> UnitFile:
    """The unit file at ``path`` with its drop-ins: those beside it, and those in
    ``folders`` (systemd's own, for an installed unit). Raises ``OSError``."""
    places = [path.parent, *(folder for folder in folders if folder != path.parent)]
    assignments = parse_unit(path.read_text(encoding="utf-8", errors="replace"), str(path))
    sources = [str(path)]
    for dropin in dropins(path.name, places):
        try:
            text = dropin.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        assignments += parse_unit(text, str(dropin))
        sources.append(str(dropin))
    return UnitFile(assignments, sources)


def find_unit(name: str, folders: Sequence[Path] = UNIT_FOLDERS) -> Path | None:
    """The file of the system unit ``name`` (its template's for an instance), or ``None``."""
    for candidate in (name, *_template(name)):
        for folder in folders:
            if (folder / candidate).is_file():
                return folder / candidate
    return None


def boot_links(name: str, folders: Sequence[Path] = UNIT_FOLDERS) -> list[Path]:
    """The links that make a target pull unit ``name`` in at boot (``*.wants/NAME``,
    ``*.requires/NAME``): what ``systemctl enable`` makes."""
    found: list[Path] = []
    for folder in folders:
        for kind in ("wants", "requires"):
            for target in sorted(folder.glob(f"*.{kind}")):
                if os.path.lexists(target / name):  # a link, even one that points nowhere
                    found.append(target / name)
    return found


def unit_of_cgroup(text: str) -> str | None:
    """The systemd unit (``app.service``, ``session-3.scope``) of a ``/proc/PID/cgroup``
    text: the last such part of the cgroup v2 path (``0::/system.slice/app.service``),
    else of cgroup v1's ``name=systemd`` hierarchy; ``None`` when there is none."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    for hierarchy in ("", "name=systemd"):
        for part in reversed(paths.get(hierarchy, "").split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return None


@dataclass(frozen=True)
class EnvironmentFile:
    """An ``EnvironmentFile=`` of a unit; ``optional`` when written with a leading ``-``."""

    path: str
    optional: bool


@dataclass(frozen=True)
class UnitSettings:
    """What the ``supervision.*`` checks judge of a systemd unit, wherever it was read.

    ``enabled`` is ``None`` when only the file is known (not whether it is installed);
    ``source`` says where the settings come from, for messages.
    """

    name: str
    source: str
    service_type: str | None
    restart: str | None
    exec_start: tuple[str, ...]
    exec_reload: tuple[str, ...]
    reload_signal: str | None
    environment_files: tuple[EnvironmentFile, ...]
    wanted_by: tuple[str, ...]
    enabled: bool | None
    state: str | None = None

    def reloads_with_hup(self) -> bool:
        """Whether ``systemctl reload`` sends SIGHUP to the main process: an
        ``ExecReload=`` that is ``kill -HUP $MAINPID`` (or a spelling of it), or
        ``Type=notify-reload`` with the default ``ReloadSignal=SIGHUP``."""
        if any(_HUP_MAIN_PID.search(command) for command in self.exec_reload):
            return True
        signal = (self.reload_signal or "SIGHUP").upper().removeprefix("SIG")
        return self.service_type == "notify-reload" and signal in {"HUP", "1"}


def _command(value: str) -> str:
    return value.lstrip(_EXEC_PREFIXES).strip()


def settings_of_file(path: Path, *, installed: bool) -> UnitSettings:
    """The settings of the unit file at ``path`` and its drop-ins. ``installed``: it is a
    unit of this machine, so systemd's folders hold its drop-ins and the links that enable
    it. Raises ``OSError``."""
    unit = load_unit(path, UNIT_FOLDERS if installed else ())
    wanted = [
        target
        for key in ("WantedBy", "RequiredBy", "UpheldBy")
        for value in unit.values("Install", key)
        for target in value.split()
    ]
    environment_files = [
        EnvironmentFile(value.lstrip("-").strip(), value.startswith("-"))
        for value in unit.values("Service", "EnvironmentFile")
    ]
    sources = unit.sources[0] + (
        f" (with {len(unit.sources) - 1} drop-ins)" if len(unit.sources) > 1 else ""
    )
    return UnitSettings(
        name=path.name,
        source=sources,
        service_type=unit.value("Service", "Type"),
        restart=unit.value("Service", "Restart"),
        exec_start=tuple(_command(v) for v in unit.values("Service", "ExecStart")),
        exec_reload=tuple(_command(v) for v in unit.values("Service", "ExecReload")),
        reload_signal=unit.value("Service", "ReloadSignal"),
        environment_files=tuple(environment_files),
        wanted_by=tuple(wanted),
        enabled=bool(boot_links(path.name)) if installed else None,
    )


def parse_systemctl_show(text: str, name: str) -> UnitSettings | None:
    """The settings in the output of ``systemctl show NAME --property=...``; ``None``
    when systemd does not know the unit (``LoadState`` other than ``loaded``)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            values.setdefault(key.strip(), []).append(value.strip())

    def one(key: str) -> str | None:
        found = [value for value in values.get(key, []) if value]
        return found[-1] if found else None

    if one("LoadState") != "loaded":
        return None

    def commands(key: str) -> tuple[str, ...]:
        # ExecReload={ path=/bin/kill ; argv[]=/bin/kill -HUP $MAINPID ; ignore_errors=no ; ... }
        return tuple(
            argv.strip()
            for value in values.get(key, [])
            for argv in re.findall(r"argv\[\]=(.*?) ;", value)
        )

    environment_files = []
    for value in values.get("EnvironmentFiles", []):
        match = re.fullmatch(r"(.*?)\s*\(ignore_errors=(yes|no)\)", value)
        if match:
            environment_files.append(EnvironmentFile(match[1], match[2] == "yes"))
        elif value:
            environment_files.append(EnvironmentFile(value, False))
    state = one("UnitFileState")
    return UnitSettings(
        name=name,
        source=f"systemctl show {name} ({one('FragmentPath') or 'no unit file'})",
        service_type=one("Type"),
        restart=one("Restart"),
        exec_start=commands("ExecStart"),
        exec_reload=commands("ExecReload"),
        reload_signal=one("ReloadSignal"),
        environment_files=tuple(environment_files),
        wanted_by=(),
        enabled=state in ENABLED_STATES,
        state=state,
    )


def systemctl_show(systemctl: str, name: str, timeout: float) -> UnitSettings | None:
    """What the running systemd says of unit ``name``, or ``None`` when it cannot say
    (systemctl fails, times out, or does not know the unit)."""
    try:
        done = subprocess.run(
            [systemctl, "show", name, "--no-pager", f"--property={','.join(SHOW_PROPERTIES)}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return parse_systemctl_show(done.stdout, name)
