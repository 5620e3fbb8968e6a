"""``supervision.*``: what restarts the server when it dies, and starts it at boot.

``supervision.unsupervised`` judges the running server (live): it walks up from the
server's master process (gunicorn's arbiter, the worker's parent) through its ancestors
until a supervisor (systemd, supervisord, runit, s6, a container's init, Kubernetes) or
a shell, tmux, screen, nohup or terminal decides (:mod:`._process_tree`).

The other checks judge the supervisor's settings for the server:

- the systemd unit file named with ``flask readiness --systemd-unit FILE`` or
  ``PRODREADY_SYSTEMD_UNIT``, from the CLI and live (``WantedBy=`` stands for enabling);
- else, live, the unit of the server's cgroup (``/proc/self/cgroup``) as ``systemctl
  show`` tells it, or as the unit files and drop-ins on disk say (:mod:`._systemd`);
- or the supervisord ``[program:x]`` that runs the server (:mod:`._supervisord`).

Under another supervisor they are skipped with its name: its settings are not visible
from the server's process. All of them read files or processes: ``blocking=True``.
"""

from __future__ import annotations

import configparser
import glob
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.redaction import is_secret_name
from ..engine.registry import LIVE, check
from ..engine.server import GUNICORN, UNKNOWN, server_kind
from ._process_tree import (
    ProcessInfo,
    Verdict,
    ancestry,
    cgroup_unit,
    in_container,
    judge,
    reader,
    server_master,
)
from ._supervisord import Program, config_path, find_program, read_config
from ._systemd import (
    NO_RESTART,
    UNIT_FOLDERS,
    UnitSettings,
    find_unit,
    settings_of_file,
    systemctl_show,
)

#: Seconds ``systemctl show`` may take (less when the check's own time is shorter).
SYSTEMCTL_TIMEOUT = 2.0

CLI_REASON = (
    "from the command line the server's processes are not visible: ask the running "
    "server's /_readiness, or pass --systemd-unit FILE to judge its unit file"
)


@dataclass(frozen=True)
class Supervision:
    """What the settings checks judge: a systemd unit, a supervisord program, or, when
    neither can be read, ``reason`` (the checks are skipped with it)."""

    unit: UnitSettings | None = None
    program: Program | None = None
    reason: str | None = None


class _RunShare:
    """What the checks of one run share: the process tree is read, and the supervisor's
    settings found, once per run (each under a lock of its own: finding the settings
    needs the tree)."""

    def __init__(self) -> None:
        self._tree_lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._verdict: Verdict | str | None = None
        self._supervision: Supervision | None = None

    def verdict(self, ctx: CheckContext) -> Verdict | str:
        """The judgement of the server's ancestors, or why they cannot be read."""
        with self._tree_lock:
            if self._verdict is None:
                self._verdict = _judge_tree(ctx)
            return self._verdict

    def supervision(self, ctx: CheckContext) -> Supervision:
        """The unit or program to judge (or why there is none)."""
        with self._settings_lock:
            if self._supervision is None:
                self._supervision = _find_supervision(ctx)
            return self._supervision


def _judge_tree(ctx: CheckContext) -> Verdict | str:
    kind = server_kind(ctx.server_software, ctx.env.environ)
    if ctx.gunicorn is None and kind == UNKNOWN and not ctx.server_software:
        # Flask's test client, or a report built in-process: no server runs this process.
        return (
            "no server identified itself in the request for this report (no SERVER_SOFTWARE): "
            "there is no server process to judge"
        )
    chain = ancestry(os.getpid(), reader())
    if not chain:
        return "this platform shows no process tree here (no /proc, and psutil is not installed)"
    master = server_master(chain, gunicorn=ctx.gunicorn is not None or kind == GUNICORN)
    return judge(
        chain[master:],
        unit=cgroup_unit(),
        container=in_container(),
        kubernetes=bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
    )


def _given_unit(path: Path) -> Supervision:
    try:
        unit = settings_of_file(path, installed=path.resolve().parent in UNIT_FOLDERS)
    except OSError as error:
        return Supervision(reason=f"the unit file {path} cannot be read ({error.strerror})")
    return Supervision(unit=unit)


def _systemd_unit(ctx: CheckContext, name: str | None) -> Supervision:
    """The settings of the unit ``name`` the server runs in: from systemd when it
    answers, else from the unit file and drop-ins on disk."""
    if name is None:
        return Supervision(reason="the systemd unit of this process's cgroup is not known")
    systemctl = shutil.which("systemctl")
    if systemctl is not None:
        timeout = max(0.1, min(SYSTEMCTL_TIMEOUT, ctx.time_left() / 2))
        shown = systemctl_show(systemctl, name, timeout)
        if shown is not None:
            return Supervision(unit=shown)
    path = find_unit(name)
    if path is None:
        folders = ", ".join(str(folder) for folder in UNIT_FOLDERS)
        return Supervision(
            reason=f"the unit {name} of this process's cgroup is known neither to systemctl "
            f"nor in {folders}"
        )
    return _given_unit(path)


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _supervisord_program(verdict: Verdict) -> Supervision:
    """The ``[program:x]`` of the supervisord above the server that runs it."""
    supervisord = verdict.ancestor
    if supervisord is None:
        return Supervision(reason="the supervisord process was not found")
    path = config_path(supervisord.cmdline, _cwd(supervisord.pid))
    if path is None:
        return Supervision(
            reason=f"the configuration of supervisord (pid {supervisord.pid}) was not found: "
            "no -c FILE and none in its search paths"
        )
    try:
        config = read_config(path)
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        why = error.strerror if isinstance(error, OSError) else type(error).__name__
        return Supervision(reason=f"supervisord's configuration {path} cannot be read ({why})")
    # The server and the processes between it and supervisord (its child runs the command).
    below: list[ProcessInfo] = []
    for process in verdict.chain:
        if process.pid == supervisord.pid:
            break
        below.append(process)
    program = find_program(config, os.environ, [p.cmdline for p in reversed(below)])
    if program is None:
        return Supervision(reason=f"no [program:x] of {path} runs this server")
    return Supervision(program=program)


def _find_supervision(ctx: CheckContext) -> Supervision:
    if ctx.systemd_unit:
        return _given_unit(Path(ctx.systemd_unit))
    if ctx.mode != LIVE:
        return Supervision(reason=CLI_REASON)
    verdict = ctx.shared(_RunShare).verdict(ctx)
    if isinstance(verdict, str):
        return Supervision(reason=verdict)
    if not verdict.supervised:
        return Supervision(reason="nothing supervises the server (supervision.unsupervised)")
    if verdict.supervisor == "systemd":
        return _systemd_unit(ctx, verdict.unit)
    if verdict.supervisor == "supervisord":
        return _supervisord_program(verdict)
    return Supervision(
        reason=f"the server is supervised by {verdict.supervisor}, whose settings are not "
        "visible from the server's process"
    )


def _supervision(ctx: CheckContext) -> Supervision:
    """The unit or program to judge, or skip saying why there is none."""
    found = ctx.shared(_RunShare).supervision(ctx)
    if found.reason is not None:
        ctx.skip(found.reason)
    return found


@check(
    "supervision.unsupervised",
    level=Level.ERROR,
    title="A supervisor restarts the server and starts it at boot",
    hint="Run the server under a supervisor: a systemd unit with Restart=on-failure and "
    "WantedBy=multi-user.target (`flask readiness --systemd-unit FILE` judges it), a "
    "supervisord program, or a container with a restart policy. tmux, screen, nohup and a "
    "shell restart nothing.",
    blocking=True,
)
def check_unsupervised(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.mode != LIVE:
        unit = _supervision(ctx).unit  # skipped without --systemd-unit
        if unit is not None and not unit.exec_start:
            yield ctx.finding(
                f"The systemd unit {unit.name} has no ExecStart= ({unit.source}): systemd "
                "refuses to start it, so it runs no server.",
                observed={"unit": unit.name},
            )
        return
    verdict = ctx.shared(_RunShare).verdict(ctx)
    if isinstance(verdict, str):
        ctx.skip(verdict)
    if not verdict.supervised:
        yield ctx.finding(
            f"The server's master process ({verdict.master.program}, pid "
            f"{verdict.master.pid}) descends from "
            f"{verdict.found}, not from a supervisor: nothing restarts it if it dies, or "
            "when the machine boots.",
            observed=verdict.observed(),
        )


@check(
    "supervision.restart_policy",
    level=Level.WARNING,
    title="The supervisor restarts the server when it dies",
    hint="systemd: set Restart=on-failure (and RestartSec=5) in [Service]. supervisord: "
    "remove autorestart=false (the default, unexpected, restarts a crashed server) or set "
    "autorestart=true.",
    blocking=True,
)
def check_restart_policy(ctx: CheckContext) -> Iterator[Finding]:
    found = _supervision(ctx)
    if found.unit is not None:
        unit = found.unit
        restart = unit.restart or "no"
        if restart in NO_RESTART:
            setting = f"Restart={unit.restart}" if unit.restart else "no Restart="
            after = "a crash or a kill" if restart == "no" else "a crash (only a clean exit)"
            yield ctx.finding(
                f"The systemd unit {unit.name} has {setting} ({unit.source}): systemd does "
                f"not restart the server after {after}.",
                hint="Set Restart=on-failure (and RestartSec=5) in the unit's [Service] section.",
                observed={"unit": unit.name, "Restart": unit.restart},
            )
    elif found.program is not None and found.program.autorestart == "false":
        program = found.program
        yield ctx.finding(
            f"supervisord's [program:{program.name}] has autorestart=false "
            f"({program.where('autorestart')}): supervisord leaves the server down when it "
            "exits, even after a crash.",
            hint="Remove autorestart=false (the default, unexpected, restarts a crashed "
            "server) or set autorestart=true.",
            observed={"program": program.name, "autorestart": "false"},
        )


@check(
    "supervision.boot",
    level=Level.WARNING,
    title="The server's unit or program starts at boot",
    hint="systemd: add WantedBy=multi-user.target to [Install] and run `systemctl enable "
    "UNIT`. supervisord: remove autostart=false.",
    blocking=True,
)
def check_boot(ctx: CheckContext) -> Iterator[Finding]:
    found = _supervision(ctx)
    unit = found.unit
    if unit is not None:
        observed = {"unit": unit.name, "WantedBy": list(unit.wanted_by), "state": unit.state}
        enable = (
            f"Add WantedBy=multi-user.target to [Install], then `systemctl enable {unit.name}`."
        )
        if unit.state is not None and not unit.enabled:
            yield ctx.finding(
                f"The systemd unit {unit.name} is {unit.state}, not enabled ({unit.source}): "
                "it does not start at boot.",
                hint=f"Run `systemctl enable {unit.name}` (its [Install] section needs "
                "WantedBy=multi-user.target).",
                observed=observed,
            )
        elif unit.state is None and unit.enabled is not True and not unit.wanted_by:
            yield ctx.finding(
                f"The systemd unit {unit.name} has no WantedBy= in [Install] ({unit.source}): "
                "`systemctl enable` cannot enable it, so it does not start at boot.",
                hint=enable,
                observed=observed,
            )
        elif unit.enabled is False:
            wants = ", ".join(f"{target}.wants/" for target in unit.wanted_by)
            yield ctx.finding(
                f"The systemd unit {unit.name} is not enabled: no link to it in {wants} "
                f"({unit.source}), so it does not start at boot.",
                hint=f"Run `systemctl enable {unit.name}`.",
                observed=observed,
            )
    elif found.program is not None and not found.program.autostart:
        program = found.program
        yield ctx.finding(
            f"supervisord's [program:{program.name}] has autostart=false "
            f"({program.where('autostart')}): the server does not start with supervisord, "
            "at boot or when supervisord restarts.",
            hint="Remove autostart=false (autostart is true by default).",
            observed={"program": program.name, "autostart": "false"},
        )


@check(
    "supervision.reload",
    level=Level.INFO,
    title="The systemd unit reloads the server gracefully (HUP to the main process)",
    hint="Add ExecReload=/bin/kill -HUP $MAINPID to [Service]: `systemctl reload` then makes "
    "gunicorn re-read its settings and replace its workers without dropping a request.",
    blocking=True,
)
def check_reload(ctx: CheckContext) -> Iterator[Finding]:
    found = _supervision(ctx)
    unit = found.unit
    if unit is None:
        ctx.skip(
            "supervisord has no reload command of its own (`supervisorctl signal HUP "
            "PROGRAM` reloads gunicorn gracefully)"
        )
    if unit.reloads_with_hup():
        return
    if unit.exec_reload:
        commands = "; ".join(unit.exec_reload)
        message = (
            f"ExecReload= of the systemd unit {unit.name} does not send HUP to the main "
            f"process ({commands}; {unit.source}): `systemctl reload` reloads the server "
            "some other way, or not gracefully."
        )
    else:
        message = (
            f"The systemd unit {unit.name} has no ExecReload= ({unit.source}): `systemctl "
            "reload` cannot reload the server, so a deploy restarts it and drops the "
            "requests in flight."
        )
    yield ctx.finding(message, observed={"unit": unit.name, "ExecReload": list(unit.exec_reload)})


def _readable_by(mode: int) -> str | None:
    """Who besides the owner can read a file of ``mode``, or ``None``."""
    group, others = bool(mode & stat.S_IRGRP), bool(mode & stat.S_IROTH)
    if group and others:
        return "its group and every user"
    if group or others:
        return "its group" if group else "every user"
    return None


def _mode(path: str) -> int | None:
    """The permission bits of ``path``, or ``None`` when it is not on this machine."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


@check(
    "supervision.env_file",
    level=Level.ERROR,
    tags=["security"],
    title="Environment files of the server are readable only by their owner",
    hint="chmod 600 the file, owned by root: systemd (and supervisord running as root) read "
    "it before they switch to the server's user.",
    blocking=True,
)
def check_env_file(ctx: CheckContext) -> Iterator[Finding]:
    found = _supervision(ctx)
    candidates: list[tuple[str, str]] = []  # (path, what reads it)
    if found.unit is not None:
        for entry in found.unit.environment_files:
            paths = sorted(glob.glob(entry.path)) if glob.has_magic(entry.path) else [entry.path]
            what = f"EnvironmentFile= of {found.unit.name}"
            candidates += [(path, what) for path in paths]
    elif found.program is not None:
        program = found.program
        secrets = [key for key in program.environment_keys() if is_secret_name(key)]
        if secrets:
            where = program.where("environment")
            names = ", ".join(secrets)
            candidates.append((where, f"sets {names} in environment= of [program:{program.name}]"))
        what = f"read by the command of [program:{program.name}]"
        candidates += [(path, what) for path in program.sourced_files()]
    missing: list[str] = []
    for path, what in candidates:
        mode = _mode(path)
        if mode is None:
            missing.append(path)
            continue
        who = _readable_by(mode)
        if who is not None:
            if what.startswith("sets "):
                subject = f"The supervisord file {path}, which {what},"
            else:
                subject = f"The environment file {path} ({what})"
            yield ctx.finding(
                f"{subject} is readable by {who} (mode {mode:04o}): they can read the "
                "secrets in it.",
                observed={"path": path, "mode": f"{mode:04o}"},
            )
    if candidates and len(missing) == len(candidates):
        ctx.skip(f"the environment files are not on this machine: {', '.join(missing)}")
