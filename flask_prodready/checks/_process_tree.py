"""The server's ancestors, and whether one of them restarts it: ``supervision.unsupervised``.

Processes are read with psutil when it is installed, else from ``/proc/PID/stat`` and
``/proc/PID/cmdline`` (Linux). :func:`judge` walks up from the server's master process:

- a **supervisor** (systemd running the process in a ``.service`` unit, supervisord,
  runit, s6, daemontools, a container's init, Kubernetes) decides: supervised;
- a **session** (an interactive or login shell, tmux, screen, nohup, sshd, login, a
  terminal emulator) decides: unsupervised;
- a **wrapper** (a shell running ``-c`` or a script, ``env``, ``sudo``, ``poetry run``
  ...) lives only as long as the server: the walk goes on through it;
- any other process (``pytest``, a hand-written launcher) decides: unsupervised, since
  nothing above it watches the server.

A process that outlived its parent is adopted by PID 1 (or a subreaper). When that is
systemd, the cgroup says whether it runs in a service or was left behind by a login
session (``session-3.scope``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._systemd import unit_of_cgroup

#: More ancestors than this is a loop or a runaway chain: the walk stops.
MAX_ANCESTORS = 64

SUPERVISORS = {
    "supervisord": "supervisord",
    "runsv": "runit",
    "runsvdir": "runit",
    "runit": "runit",
    "s6-supervise": "s6",
    "s6-svscan": "s6",
    "supervise": "daemontools",
    "docker-init": "the container's init (docker-init)",
    "tini": "the container's init (tini)",
    "dumb-init": "the container's init (dumb-init)",
    "catatonit": "the container's init (catatonit)",
    "conmon": "podman (conmon)",
    "circusd": "circus",
    "launchd": "launchd",
}
SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "tcsh", "csh", "busybox"}
)
SESSIONS = frozenset(
    {
        "tmux", "screen", "byobu", "zellij", "dtach", "abduco", "nohup",
        "sshd", "login", "mosh-server", "agetty", "getty",
        "xterm", "urxvt", "gnome-terminal-server", "konsole", "kitty", "alacritty",
        "wezterm-gui", "terminator", "tilix", "xfce4-terminal", "foot",
    }
)  # fmt: skip
WRAPPERS = frozenset(
    {
        "env", "nice", "ionice", "chrt", "taskset", "timeout", "flock", "setsid",
        "setpriv", "runuser", "su", "sudo", "doas", "gosu", "su-exec", "chpst",
        "setuidgid", "s6-setuidgid", "s6-envdir", "envdir", "authbind", "newrelic-admin",
        "ddtrace-run", "opentelemetry-instrument", "uv", "poetry", "pipenv", "pdm",
        "hatch", "rye", "dotenv", "doppler", "op", "pidproxy",
    }
)  # fmt: skip
#: systemd units that run logins and jobs, not servers: a process left in one of them
#: was started by hand (or by cron) and nothing restarts it.
LOGIN_UNITS = ("ssh.service", "sshd.service", "cron.service", "crond.service", "getty@",
               "serial-getty@", "user@", "systemd-logind.service")  # fmt: skip
#: Files that only exist inside a container (Docker, podman).
CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
#: Python options that take a value as the next argument.
_PYTHON_VALUE_OPTIONS = frozenset({"-W", "-X", "--check-hash-based-pycs"})

SUPERVISOR = "supervisor"
SESSION = "session"
WRAPPER = "wrapper"
OTHER = "other"


@dataclass(frozen=True)
class ProcessInfo:
    """One process: ``name`` is the kernel's (``comm``), ``terminal`` its controlling
    terminal (``/dev/pts/3``) or ``None``."""

    pid: int
    ppid: int
    name: str
    cmdline: tuple[str, ...] = ()
    terminal: str | None = None

    @property
    def program(self) -> str:
        return program_name(self.name, self.cmdline)

    def describe(self) -> str:
        return f"{self.program} (pid {self.pid})"


def program_name(name: str, cmdline: Sequence[str]) -> str:
    """What a process runs, as people name it: the command's file name (``tmux`` for
    ``tmux: server``, ``sshd`` for ``sshd: alice@pts/0``), and for a Python interpreter
    its script or ``-m`` module (``gunicorn``, ``supervisord``, ``pytest``)."""
    if not cmdline:
        return name
    # A login shell's argv[0] is "-bash"; a process may rewrite its title ("sshd: alice").
    first = os.path.basename(cmdline[0].split(": ", 1)[0]).split(" ", 1)[0].lstrip("-") or name
    if first == "init":  # systemd started as /sbin/init names itself "systemd"
        return name or first
    if not first.startswith(("python", "pypy")):
        return first
    arguments = iter(cmdline[1:])
    for argument in arguments:
        if argument == "-m":
            return next(arguments, first).rsplit(".", 1)[-1]
        if argument.startswith("-m") and len(argument) > 2:
            return argument[2:].rsplit(".", 1)[-1]
        if argument in ("-c", "-"):
            return first
        if argument in _PYTHON_VALUE_OPTIONS:
            next(arguments, None)
        elif not argument.startswith("-"):
            return os.path.basename(argument)
    return first


def _is_script_shell(process: ProcessInfo) -> bool:
    """A shell running ``-c`` or a script file (not one a person types into)."""
    first = process.cmdline[0] if process.cmdline else ""
    arguments = process.cmdline[1:]
    if first.startswith("-") or any(a in ("-i", "-l", "--login") for a in arguments):
        return False  # a login or interactive shell
    return any(
        not argument.startswith("-") or (not argument.startswith("--") and "c" in argument)
        for argument in arguments
    )


def classify(process: ProcessInfo) -> str:
    """:data:`SUPERVISOR`, :data:`SESSION`, :data:`WRAPPER` or :data:`OTHER` (systemd and
    PID 1 are judged by :func:`judge`, which knows the cgroup)."""
    program = process.program
    if program in SUPERVISORS or program.startswith("containerd-shim"):
        return SUPERVISOR
    if program in SHELLS:
        return WRAPPER if _is_script_shell(process) else SESSION
    if program in SESSIONS or program.lower() == "screen":
        return SESSION
    if program in WRAPPERS:
        return WRAPPER
    return OTHER


@dataclass(frozen=True)
class Verdict:
    """Whether the server is supervised, by what, or where it was started instead."""

    supervised: bool
    master: ProcessInfo
    #: The supervisor (``supervisord``, ``systemd``, ``runit`` ...), when supervised.
    supervisor: str | None = None
    #: The supervising process, or the ancestor named when unsupervised.
    ancestor: ProcessInfo | None = None
    #: Where the server was started, in words, when unsupervised.
    found: str | None = None
    #: The systemd unit of the server's cgroup, when known.
    unit: str | None = None
    chain: tuple[ProcessInfo, ...] = field(default=())

    def observed(self) -> dict[str, object]:
        return {
            "master": {"pid": self.master.pid, "name": self.master.program},
            "ancestors": [{"pid": p.pid, "name": p.program} for p in self.chain[1:]],
            "found": self.found,
            **({"unit": self.unit} if self.unit else {}),
        }


def in_container() -> bool:
    """Whether this process runs in a container (Docker, podman, nspawn, Kubernetes)."""
    return (
        any(marker.exists() for marker in CONTAINER_MARKERS)
        # systemd-nspawn and podman set the lowercase variable ``container``.
        or bool(os.environ.get("container"))  # noqa: SIM112
        or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    )


def _adopted_by_systemd(unit: str | None) -> bool:
    """Whether systemd runs the server in a service of its own (not a login's unit)."""
    return bool(unit and unit.endswith(".service") and not unit.startswith(LOGIN_UNITS))


def judge(
    chain: Sequence[ProcessInfo],
    *,
    unit: str | None = None,
    container: bool = False,
    kubernetes: bool = False,
) -> Verdict:
    """Judge the ancestors ``chain`` (the server's master first, then its parent, up to
    the top); ``unit`` is the systemd unit of the server's cgroup, ``container`` and
    ``kubernetes`` say where the process runs (they make PID 1 a supervisor)."""
    master, ancestors = chain[0], tuple(chain)
    runtime = "Kubernetes" if kubernetes else "the container runtime"
    if master.pid == 1:
        return Verdict(True, master, runtime, master, unit=unit, chain=ancestors)
    noted: ProcessInfo | None = None  # the nearest shell, tmux, screen ... on the way up

    def unsupervised(decider: ProcessInfo, found: str | None = None) -> Verdict:
        named = noted or decider
        if found is None:
            if noted is None and classify(decider) != SESSION and master.terminal:
                named, found = decider, f"a terminal ({master.terminal})"
            else:
                found = named.describe()
        return Verdict(False, master, None, named, found, unit, ancestors)

    for process in chain[1:]:
        kind = classify(process)
        if process.program == "systemd":  # PID 1, or a user's service manager
            if _adopted_by_systemd(unit):
                return Verdict(True, master, "systemd", process, unit=unit, chain=ancestors)
            if unit is None:
                return unsupervised(process, f"{process.describe()}, outside any service")
            where = f"the login session {unit}" if unit.startswith("session-") else unit
            return unsupervised(process, f"{where} (adopted by {process.describe()})")
        if kind == SUPERVISOR:
            supervisor = SUPERVISORS.get(process.program, process.program)
            return Verdict(True, master, supervisor, process, unit=unit, chain=ancestors)
        if kind == SESSION:
            noted = noted or process
            return unsupervised(process)
        if process.pid == 1 and container and process.program != "init":
            # The container's main process: the container lives and dies with it.
            return Verdict(True, master, runtime, process, unit=unit, chain=ancestors)
        if process.pid != 1 and (kind == WRAPPER or process.program == master.program):
            if process.program in SHELLS:
                noted = noted or process
            continue
        return unsupervised(process)
    return unsupervised(chain[-1])


# --- reading processes -------------------------------------------------------------------


def _terminal_of(tty_nr: int) -> str | None:
    """The device of a ``tty_nr`` from ``/proc/PID/stat`` (``/dev/pts/3``), ``None`` for 0."""
    if not tty_nr:
        return None
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"/dev/pts/{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"/dev/tty{minor}"
    return f"tty {major}:{minor}"


def read_proc(pid: int, root: Path = Path("/proc")) -> ProcessInfo | None:
    """Process ``pid`` from ``/proc/PID/stat`` and ``cmdline``, or ``None`` if gone."""
    try:
        stat = (root / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return None
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp session tty_nr ...
    try:
        cmdline = (root / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    arguments = tuple(part.decode(errors="replace") for part in cmdline if part)
    return ProcessInfo(pid, int(fields[1]), name, arguments, _terminal_of(int(fields[4])))


def read_psutil(pid: int) -> ProcessInfo | None:
    """Process ``pid`` read with psutil, or ``None`` if gone (``ImportError`` without it)."""
    import psutil

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            ppid, name, terminal = process.ppid(), process.name(), process.terminal()
            try:
                cmdline = tuple(process.cmdline())
            except psutil.AccessDenied:
                cmdline = ()
    except psutil.Error:
        return None
    return ProcessInfo(pid, int(ppid), str(name), cmdline, terminal)


def reader() -> Callable[[int], ProcessInfo | None]:
    """psutil's reader when it is installed, else ``/proc``'s."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return read_proc
    return read_psutil


def ancestry(pid: int, read: Callable[[int], ProcessInfo | None]) -> list[ProcessInfo]:
    """Process ``pid`` and its ancestors up to the top (at most :data:`MAX_ANCESTORS`)."""
    chain: list[ProcessInfo] = []
    seen: set[int] = set()
    current: int = pid
    while current > 0 and current not in seen and len(chain) < MAX_ANCESTORS:
        seen.add(current)
        process = read(current)
        if process is None:
            break
        chain.append(process)
        current = process.ppid
    return chain


def server_master(chain: Sequence[ProcessInfo], *, gunicorn: bool) -> int:
    """Where the server's master is in ``chain`` (this process first): gunicorn's
    arbiter is the worker's parent; other servers' master shares the worker's program
    (uWSGI), or is the process itself."""
    index = 1 if gunicorn and len(chain) > 1 else 0
    while index + 1 < len(chain) and chain[index + 1].program == chain[index].program:
        index += 1
    return index


def cgroup_unit(pid: int | str = "self") -> str | None:
    """The systemd unit of process ``pid``'s cgroup, or ``None``."""
    try:
        return unit_of_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    except OSError:
        return None
