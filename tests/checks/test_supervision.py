"""supervision.*: the unit-file parser, the ancestor classification, cgroups, supervisord's
configuration, and the checks on unit files (unit level; real gunicorn under a shell and
under supervisord, and `flask readiness --systemd-unit`, are in
tests/integration/test_supervision_live.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.checks._process_tree import (
    ProcessInfo,
    ancestry,
    classify,
    judge,
    program_name,
    read_proc,
    read_psutil,
    server_master,
)
from flask_prodready.checks._supervisord import config_path, find_program, read_config
from flask_prodready.checks._systemd import (
    Assignment,
    UnitFile,
    boot_links,
    dropins,
    load_unit,
    parse_systemctl_show,
    parse_unit,
    settings_of_file,
    unit_of_cgroup,
)

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
DEPLOY_UNIT = Path(__file__).resolve().parents[2] / "deploy" / "example-app.service"
SUPERVISION_IDS = (
    "supervision.unsupervised",
    "supervision.restart_policy",
    "supervision.boot",
    "supervision.reload",
    "supervision.env_file",
)


def unit_variant(tmp_path: Path, replace: dict[str, str], name: str = "app.service") -> Path:
    """The deploy kit's unit with whole lines replaced (``""`` drops the line)."""
    lines = DEPLOY_UNIT.read_text().splitlines()
    for old, new in replace.items():
        assert old in lines, old
        lines = [new if line == old else line for line in lines]
    path = tmp_path / name
    path.write_text("\n".join(line for line in lines if line != "") + "\n")
    return path


def proc(
    pid: int, ppid: int, *cmdline: str, name: str = "", terminal: str | None = None
) -> ProcessInfo:
    """A process of a chain given to :func:`judge`."""
    comm = name or os.path.basename(cmdline[0]).lstrip("-")[:15]
    return ProcessInfo(pid, ppid, comm, tuple(cmdline), terminal)


GUNICORN = proc(200, 150, "/srv/app/.venv/bin/python", "-m", "gunicorn", "app:app")


class TestUnitParser:
    def test_keeps_repeated_keys_in_order(self) -> None:
        """Repeated keys are all kept, in file order, each with its section and line."""
        text = "[Service]\nEnvironmentFile=/a\nEnvironmentFile=-/b\n"
        assert parse_unit(text, "u") == [
            Assignment("Service", "EnvironmentFile", "/a", "u", 2),
            Assignment("Service", "EnvironmentFile", "-/b", "u", 3),
        ]

    def test_comments_continuations_and_stray_lines(self) -> None:
        """# and ; lines are comments, a backslash continues a line (comments inside are
        skipped), lines without = and assignments before any section are ignored."""
        text = (
            "Stray=before\n"
            "# comment\n"
            "[Service]\n"
            "; another\n"
            "ExecStart=/bin/gunicorn \\\n"
            "# skipped inside a continuation\n"
            "  -w 4 app:app\n"
            "not an assignment\n"
            "  Restart = on-failure  \n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        )
        assert [(a.section, a.key, a.value, a.line) for a in parse_unit(text)] == [
            ("Service", "ExecStart", "/bin/gunicorn  -w 4 app:app", 5),
            ("Service", "Restart", "on-failure", 9),
            ("Install", "WantedBy", "multi-user.target", 11),
        ]

    def test_empty_assignment_resets_a_list_and_last_value_wins(self) -> None:
        """An empty assignment empties a list setting; a single setting takes the last value."""
        unit = UnitFile(
            parse_unit(
                "[Service]\nEnvironmentFile=/a\nRestart=always\nEnvironmentFile=\n"
                "EnvironmentFile=/b\nRestart=no\n"
            ),
            ["u"],
        )
        assert unit.values("Service", "EnvironmentFile") == ["/b"]
        assert unit.value("Service", "Restart") == "no"
        assert unit.value("Service", "Type") is None

    def test_dropins_apply_by_file_name_and_later_settings_win(self, tmp_path: Path) -> None:
        """Drop-ins beside the unit and in the given folders apply sorted by file name, an
        earlier folder hiding the same name; their settings override the unit's."""
        unit = tmp_path / "here" / "app.service"
        unit.parent.mkdir()
        unit.write_text("[Service]\nRestart=no\nEnvironmentFile=/etc/app/env\n")
        (tmp_path / "here" / "app.service.d").mkdir()
        (tmp_path / "here" / "app.service.d" / "20-restart.conf").write_text(
            "[Service]\nRestart=on-failure\n"
        )
        vendor = tmp_path / "vendor" / "app.service.d"
        vendor.mkdir(parents=True)
        (vendor / "10-env.conf").write_text("[Service]\nEnvironmentFile=\nEnvironmentFile=/x\n")
        (vendor / "20-restart.conf").write_text("[Service]\nRestart=always\n")  # hidden
        assert [p.name for p in dropins("app.service", [unit.parent, tmp_path / "vendor"])] == [
            "10-env.conf",
            "20-restart.conf",
        ]
        merged = load_unit(unit, [tmp_path / "vendor"])
        assert merged.value("Service", "Restart") == "on-failure"
        assert merged.values("Service", "EnvironmentFile") == ["/x"]
        assert len(merged.sources) == 3

    def test_instance_units_use_their_template_dropins(self, tmp_path: Path) -> None:
        """``app@1.service`` takes the drop-ins of ``app@.service`` too."""
        (tmp_path / "app@.service.d").mkdir()
        (tmp_path / "app@.service.d" / "x.conf").write_text("[Service]\nRestart=always\n")
        assert [p.name for p in dropins("app@1.service", [tmp_path])] == ["x.conf"]

    def test_the_deploy_unit_reads_as_systemd_reads_it(self) -> None:
        """The kit's unit: notify, Restart=on-failure, HUP reload, one env file, multi-user."""
        unit = settings_of_file(DEPLOY_UNIT, installed=False)
        assert (unit.service_type, unit.restart, unit.wanted_by) == (
            "notify",
            "on-failure",
            ("multi-user.target",),
        )
        assert unit.reloads_with_hup()
        assert [(f.path, f.optional) for f in unit.environment_files] == [
            ("/etc/example-app/env", False)
        ]
        assert unit.enabled is None

    def test_boot_links_find_what_systemctl_enable_made(self, tmp_path: Path) -> None:
        """A link in a target's .wants/ (or .requires/) folder enables the unit."""
        wants = tmp_path / "multi-user.target.wants"
        wants.mkdir()
        (wants / "app.service").symlink_to(tmp_path / "app.service")
        assert boot_links("app.service", [tmp_path]) == [wants / "app.service"]
        assert boot_links("other.service", [tmp_path]) == []


class TestReloadCommand:
    @pytest.mark.parametrize(
        "command",
        [
            "/bin/kill -HUP $MAINPID",
            "/usr/bin/kill -s HUP $MAINPID",
            "kill -SIGHUP ${MAINPID}",
            "/bin/sh -c 'kill -1 $MAINPID'",
        ],
    )
    def test_hup_to_the_main_pid_is_a_graceful_reload(self, tmp_path: Path, command: str) -> None:
        """Every spelling of ``kill -HUP $MAINPID`` counts (and ``-`` prefixes are dropped)."""
        unit = unit_variant(
            tmp_path, {"ExecReload=/bin/kill -HUP $MAINPID": f"ExecReload=-{command}"}
        )
        assert settings_of_file(unit, installed=False).reloads_with_hup()

    @pytest.mark.parametrize("command", ["/bin/kill -TERM $MAINPID", "/bin/kill -HUP 1234"])
    def test_other_signals_or_pids_are_not(self, tmp_path: Path, command: str) -> None:
        """Another signal, or a fixed pid, is no graceful reload of the main process."""
        unit = unit_variant(
            tmp_path, {"ExecReload=/bin/kill -HUP $MAINPID": f"ExecReload={command}"}
        )
        assert not settings_of_file(unit, installed=False).reloads_with_hup()

    def test_notify_reload_sends_hup(self, tmp_path: Path) -> None:
        """Type=notify-reload (systemd 253) sends SIGHUP by default, unless ReloadSignal= says
        otherwise."""
        unit = unit_variant(
            tmp_path,
            {"Type=notify": "Type=notify-reload", "ExecReload=/bin/kill -HUP $MAINPID": ""},
        )
        assert settings_of_file(unit, installed=False).reloads_with_hup()
        unit.write_text(unit.read_text().replace("[Service]", "[Service]\nReloadSignal=SIGUSR2"))
        assert not settings_of_file(unit, installed=False).reloads_with_hup()


SHOW = """\
LoadState=loaded
Type=notify
Restart=on-failure
ExecStart={ path=/srv/app/.venv/bin/gunicorn ; argv[]=/srv/app/.venv/bin/gunicorn app:app ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
ExecReload={ path=/bin/kill ; argv[]=/bin/kill -HUP $MAINPID ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
EnvironmentFiles=/etc/app/env (ignore_errors=no)
EnvironmentFiles=/etc/app/extra (ignore_errors=yes)
UnitFileState=disabled
FragmentPath=/etc/systemd/system/app.service
DropInPaths=
"""  # noqa: E501


class TestSystemctlShow:
    def test_reads_the_properties(self) -> None:
        """Restart, the reload command, env files (optional or not) and the file state."""
        unit = parse_systemctl_show(SHOW, "app.service")
        assert unit is not None
        assert unit.restart == "on-failure"
        assert unit.exec_start == ("/srv/app/.venv/bin/gunicorn app:app",)
        assert unit.reloads_with_hup()
        assert [(f.path, f.optional) for f in unit.environment_files] == [
            ("/etc/app/env", False),
            ("/etc/app/extra", True),
        ]
        assert (unit.state, unit.enabled) == ("disabled", False)
        assert unit.source == "systemctl show app.service (/etc/systemd/system/app.service)"

    def test_unknown_unit_is_none(self) -> None:
        """A unit systemd has not loaded is no answer (the files on disk are read instead)."""
        assert parse_systemctl_show("LoadState=not-found\nRestart=no\n", "x.service") is None


class TestCgroup:
    @pytest.mark.parametrize(
        ("text", "unit"),
        [
            ("0::/system.slice/yourapp.service\n", "yourapp.service"),
            ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n",
                "web.service",
            ),
            ("12:pids:/\n1:name=systemd:/system.slice/app.service\n0::/\n", "app.service"),
            ("9:name=systemd:/\n0::/\n", None),
            ("", None),
        ],
    )
    def test_unit_of_cgroup(self, text: str, unit: str | None) -> None:
        """The last .service or .scope of the v2 path, else of v1's name=systemd."""
        assert unit_of_cgroup(text) == unit


class TestProgramName:
    @pytest.mark.parametrize(
        ("name", "cmdline", "program"),
        [
            ("python", ("/venv/bin/python", "-m", "gunicorn", "app:app"), "gunicorn"),
            ("supervisord", ("/venv/bin/python", "/venv/bin/supervisord", "-n"), "supervisord"),
            ("python3", ("python3", "-X", "dev", "-m", "supervisor.supervisord"), "supervisord"),
            ("python3", ("python3", "-c", "print()"), "python3"),
            ("bash", ("-bash",), "bash"),
            ("tmux: server", ("tmux",), "tmux"),
            ("sshd", ("sshd: alice@pts/0",), "sshd"),
            ("kworker/0:1", (), "kworker/0:1"),
        ],
    )
    def test_program_name(self, name: str, cmdline: tuple[str, ...], program: str) -> None:
        """The command's file name; a Python interpreter's script or -m module."""
        assert program_name(name, cmdline) == program

    @pytest.mark.parametrize(
        ("cmdline", "kind"),
        [
            (("sh", "-c", "exec gunicorn app:app"), "wrapper"),
            (("/bin/bash", "/srv/app/start.sh"), "wrapper"),
            (("bash",), "session"),
            (("-bash",), "session"),
            (("bash", "-l"), "session"),
            (("tmux",), "session"),
            (("SCREEN", "-S", "app"), "session"),
            (("nohup", "gunicorn"), "session"),
            (("/usr/bin/supervisord", "-n"), "supervisor"),
            (("runsv", "app"), "supervisor"),
            (("/sbin/tini", "--", "gunicorn"), "supervisor"),
            (("/usr/bin/containerd-shim-runc-v2", "-id", "x"), "supervisor"),
            (("sudo", "-u", "app", "gunicorn"), "wrapper"),
            (("/venv/bin/python", "/venv/bin/pytest"), "other"),
        ],
    )
    def test_classify(self, cmdline: tuple[str, ...], kind: str) -> None:
        """Supervisors, sessions (shells people type into, tmux, screen, nohup), wrappers
        (script shells, sudo) and the rest."""
        assert classify(proc(10, 1, *cmdline)) == kind


class TestJudge:
    def test_shell_under_a_launcher_is_unsupervised_naming_the_shell(self) -> None:
        """gunicorn under `sh -c` under a launcher (pytest): unsupervised, the shell named."""
        chain = [
            GUNICORN,
            proc(150, 100, "sh", "-c", "nohup gunicorn app:app & wait"),
            proc(100, 50, "/venv/bin/python", "/venv/bin/pytest"),
            proc(50, 1, "bash"),
        ]
        verdict = judge(chain, container=True)
        assert (verdict.supervised, verdict.found) == (False, "sh (pid 150)")
        assert verdict.observed() == {
            "master": {"pid": 200, "name": "gunicorn"},
            "ancestors": [
                {"pid": 150, "name": "sh"},
                {"pid": 100, "name": "pytest"},
                {"pid": 50, "name": "bash"},
            ],
            "found": "sh (pid 150)",
        }

    def test_tmux_session(self) -> None:
        """gunicorn typed into a shell in tmux: unsupervised, the shell named."""
        chain = [GUNICORN, proc(150, 90, "-bash"), proc(90, 1, "tmux", name="tmux: server")]
        assert judge(chain).found == "bash (pid 150)"

    def test_terminal_when_no_shell_is_seen(self) -> None:
        """A launcher with no shell between: the master's controlling terminal is named."""
        master = proc(200, 150, "gunicorn", "app:app", terminal="/dev/pts/3")
        chain = [master, proc(150, 1, "/usr/bin/honcho", "start")]
        assert judge(chain).found == "a terminal (/dev/pts/3)"

    def test_launcher_without_shell_or_terminal_is_named(self) -> None:
        """With neither a shell nor a terminal, the process that decides is named."""
        chain = [GUNICORN, proc(150, 1, "/usr/bin/honcho", "start")]
        assert judge(chain).found == "honcho (pid 150)"

    def test_left_behind_by_a_login_session(self) -> None:
        """`nohup gunicorn &` then logout: adopted by systemd from a session scope."""
        chain = [GUNICORN, proc(1, 0, "/sbin/init", name="systemd")]
        verdict = judge(chain, unit="session-3.scope")
        assert not verdict.supervised
        assert verdict.found == "the login session session-3.scope (adopted by systemd (pid 1))"

    def test_systemd_service_through_a_script_shell(self) -> None:
        """ExecStart=/bin/sh -c '... gunicorn': systemd supervises the service."""
        chain = [
            GUNICORN,
            proc(150, 1, "/bin/sh", "-c", ". /srv/app/env; gunicorn app:app"),
            proc(1, 0, "/usr/lib/systemd/systemd", name="systemd"),
        ]
        verdict = judge(chain, unit="app.service")
        assert (verdict.supervised, verdict.supervisor, verdict.unit) == (
            True,
            "systemd",
            "app.service",
        )

    def test_systemd_units_of_logins_do_not_count(self) -> None:
        """A process left in sshd.service or cron.service was started by hand or by cron."""
        chain = [GUNICORN, proc(1, 0, "systemd")]
        assert not judge(chain, unit="cron.service").supervised

    def test_supervisord(self) -> None:
        """supervisord's child is supervised, through sudo too."""
        chain = [
            GUNICORN,
            proc(150, 120, "sudo", "-u", "app", "gunicorn"),
            proc(120, 1, "/usr/bin/python3", "/usr/bin/supervisord", "-n", name="supervisord"),
            proc(1, 0, "systemd"),
        ]
        verdict = judge(chain, unit="supervisor.service")
        assert (verdict.supervised, verdict.supervisor) == (True, "supervisord")
        assert verdict.ancestor is not None
        assert verdict.ancestor.pid == 120

    def test_a_shell_above_a_supervisor_does_not_matter(self) -> None:
        """supervisord started by hand in a shell still restarts the server: the nearest
        supervisor decides."""
        chain = [GUNICORN, proc(150, 90, "supervisord", "-n"), proc(90, 1, "bash")]
        assert judge(chain).supervised

    @pytest.mark.parametrize(
        ("chain", "kubernetes", "supervisor"),
        [
            ([proc(1, 0, "gunicorn", "app:app")], False, "the container runtime"),
            ([GUNICORN, proc(1, 0, "/sbin/tini", "--", "gunicorn")], False,
             "the container's init (tini)"),
            ([GUNICORN, proc(1, 0, "/bin/sh", "-c", "gunicorn app:app")], True, "Kubernetes"),
        ],
    )  # fmt: skip
    def test_container_init(
        self, chain: list[ProcessInfo], kubernetes: bool, supervisor: str
    ) -> None:
        """The server as PID 1, tini, or a `sh -c` entrypoint as PID 1: the container's."""
        verdict = judge(chain, container=True, kubernetes=kubernetes)
        assert (verdict.supervised, verdict.supervisor) == (True, supervisor)

    def test_a_shell_typed_into_a_container(self) -> None:
        """`docker run -it image bash`, then gunicorn by hand: unsupervised."""
        chain = [GUNICORN, proc(1, 0, "bash")]
        assert judge(chain, container=True).found == "bash (pid 1)"

    def test_plain_init_outside_a_container_restarts_nothing(self) -> None:
        """A daemon adopted by SysV init: unsupervised."""
        assert judge([GUNICORN, proc(1, 0, "init")]).found == "init (pid 1)"

    def test_gunicorn_master_is_the_workers_parent(self) -> None:
        """Live under gunicorn the master is the worker's parent (and an old master
        above it, after a binary upgrade, is the same program)."""
        worker = proc(300, 200, "/venv/bin/python", "-m", "gunicorn", "app:app")
        old = proc(150, 90, "/venv/bin/gunicorn", "app:app")
        chain = [worker, GUNICORN, old, proc(90, 1, "bash")]
        assert server_master(chain, gunicorn=True) == 2
        assert server_master([worker, proc(200, 1, "bash")], gunicorn=True) == 1
        assert server_master([worker, proc(200, 1, "bash")], gunicorn=False) == 0


class TestReadingProcesses:
    def test_proc_and_psutil_agree_on_this_process(self) -> None:
        """/proc and psutil read the same pid, parent, name and command line."""
        by_proc = read_proc(os.getpid())
        by_psutil = read_psutil(os.getpid())
        assert by_proc is not None
        assert by_psutil is not None
        assert (by_proc.pid, by_proc.ppid, by_proc.name, by_proc.cmdline) == (
            by_psutil.pid,
            by_psutil.ppid,
            by_psutil.name,
            by_psutil.cmdline,
        )

    def test_ancestry_ends_at_the_top(self) -> None:
        """The chain starts with the process and ends at a process without parent."""
        chain = ancestry(os.getpid(), read_proc)
        assert chain[0].pid == os.getpid()
        assert chain[-1].ppid == 0
        assert [p.ppid for p in chain[:-1]] == [p.pid for p in chain[1:]]

    def test_a_gone_process_reads_as_none(self, tmp_path: Path) -> None:
        """A pid without /proc entry is None, not an error."""
        assert read_proc(123, root=tmp_path) is None


SUPERVISORD_CONF = """\
[supervisord]
logfile=%(here)s/supervisord.log ; inline comment

[include]
files = programs/*.conf
"""


class TestSupervisordConfig:
    def test_includes_expansions_and_defaults(self, tmp_path: Path) -> None:
        """Included files (globs relative to the main file) are read, %(here)s and
        %(program_name)s expanded, and autostart/autorestart read as supervisord does."""
        (tmp_path / "supervisord.conf").write_text(SUPERVISORD_CONF)
        (tmp_path / "programs").mkdir()
        (tmp_path / "programs" / "web.conf").write_text(
            "[program:web]\ncommand=%(here)s/run %(program_name)s # comment\n"
            "autorestart=false\nautostart=off\n"
        )
        (tmp_path / "programs" / "worker.conf").write_text(
            "[program:worker]\ncommand=celery %(ENV_QUEUE)s\n"
        )
        config = read_config(str(tmp_path / "supervisord.conf"), {"QUEUE": "jobs"})
        assert len(config.files) == 3
        web, worker = sorted(config.programs, key=lambda p: p.name)
        assert web.option("command", "") == f"{tmp_path / 'programs'}/run web"
        assert (web.autorestart, web.autostart) == ("false", False)
        assert (worker.autorestart, worker.autostart) == ("unexpected", True)
        assert worker.option("command", "") == "celery jobs"
        assert web.where("autorestart") == str(tmp_path / "programs" / "web.conf")

    def test_finds_the_program_by_supervisords_variables_or_command(self, tmp_path: Path) -> None:
        """SUPERVISOR_PROCESS_NAME names the program; without it, the command line does."""
        (tmp_path / "s.conf").write_text(
            "[supervisord]\n[program:a]\ncommand=gunicorn -b 127.0.0.1:1 a:app\n"
            "[program:b]\ncommand=gunicorn -b 127.0.0.1:2 b:app\n"
        )
        config = read_config(str(tmp_path / "s.conf"), {})
        named = find_program(config, {"SUPERVISOR_PROCESS_NAME": "b"}, [])
        assert named is not None
        assert named.name == "b"
        cmdline = ["/venv/bin/gunicorn", "-b", "127.0.0.1:1", "a:app"]
        matched = find_program(config, {}, [cmdline])
        assert matched is not None
        assert matched.name == "a"
        assert find_program(config, {}, [["python", "other"]]) is None

    def test_environment_keys_and_sourced_files(self, tmp_path: Path) -> None:
        """environment= names (quoted values blanked) and files the command sources."""
        (tmp_path / "s.conf").write_text(
            "[supervisord]\n[program:a]\n"
            "command=/bin/sh -c '. /etc/app/env && exec gunicorn app:app'\n"
            'environment=APP_SECRET_KEY="x,Y=z",PATH="/usr/bin"\n'
        )
        (program,) = read_config(str(tmp_path / "s.conf"), {}).programs
        assert program.environment_keys() == ["APP_SECRET_KEY", "PATH"]
        assert program.sourced_files() == ["/etc/app/env"]

    @pytest.mark.parametrize(
        ("cmdline", "expected"),
        [
            (["supervisord", "-c", "conf/s.conf"], "/srv/conf/s.conf"),
            (["supervisord", "--configuration=/etc/s.conf"], "/etc/s.conf"),
            (["supervisord", "-c/etc/x.conf", "-n"], "/etc/x.conf"),
        ],
    )
    def test_config_path_from_the_command_line(self, cmdline: list[str], expected: str) -> None:
        """-c FILE in its forms, relative to supervisord's working folder."""
        assert config_path(cmdline, "/srv") == expected


class TestChecksFromTheCommandLine:
    def test_skipped_without_a_unit_file(self, make_app: MakeApp) -> None:
        """From the CLI without --systemd-unit every supervision check is skipped, saying why."""
        app = make_app()
        for check_id in SUPERVISION_IDS:
            outcome = outcome_of(app, check_id)
            assert outcome.status.value == "skipped", check_id
            assert "--systemd-unit FILE" in (outcome.reason or ""), check_id

    def test_deploy_unit_is_quiet(self, make_app: MakeApp) -> None:
        """The kit's unit: supervised, restarts, starts at boot, reloads with HUP; its env
        file is not on this machine, so env_file is skipped naming it."""
        app = make_app()
        for check_id in SUPERVISION_IDS[:4]:
            assert messages_of(app, check_id, systemd_unit=str(DEPLOY_UNIT)) == [], check_id
        outcome = outcome_of(app, "supervision.env_file", systemd_unit=str(DEPLOY_UNIT))
        assert outcome.status.value == "skipped"
        assert outcome.reason == (
            "the environment files are not on this machine: /etc/example-app/env"
        )

    def test_unit_from_the_setting(self, make_app: MakeApp, tmp_path: Path) -> None:
        """PRODREADY_SYSTEMD_UNIT names the unit file when the CLI does not."""
        unit = unit_variant(tmp_path, {"Restart=on-failure": ""})
        app = make_app(PRODREADY_SYSTEMD_UNIT=str(unit))
        assert [level for level, _ in messages_of(app, "supervision.restart_policy")] == ["warning"]

    def test_no_exec_start(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A unit without ExecStart= runs nothing: unsupervised."""
        exec_start = next(
            ln for ln in DEPLOY_UNIT.read_text().splitlines() if ln.startswith("ExecStart=")
        )
        unit = unit_variant(tmp_path, {exec_start: ""})
        assert messages_of(make_app(), "supervision.unsupervised", systemd_unit=str(unit)) == [
            (
                "error",
                f"The systemd unit app.service has no ExecStart= ({unit}): systemd refuses to "
                "start it, so it runs no server.",
            )
        ]

    def test_restart_absent_no_and_on_success(self, make_app: MakeApp, tmp_path: Path) -> None:
        """No Restart=, Restart=no and Restart=on-success each leave a crashed server down."""
        app = make_app()
        absent = unit_variant(tmp_path, {"Restart=on-failure": ""}, "a.service")
        assert messages_of(app, "supervision.restart_policy", systemd_unit=str(absent)) == [
            (
                "warning",
                f"The systemd unit a.service has no Restart= ({absent}): systemd does not "
                "restart the server after a crash or a kill.",
            )
        ]
        off = unit_variant(tmp_path, {"Restart=on-failure": "Restart=no"}, "b.service")
        [(_, message)] = messages_of(app, "supervision.restart_policy", systemd_unit=str(off))
        assert message.startswith("The systemd unit b.service has Restart=no (")
        success = unit_variant(tmp_path, {"Restart=on-failure": "Restart=on-success"}, "c.service")
        [(_, message)] = messages_of(app, "supervision.restart_policy", systemd_unit=str(success))
        assert message.endswith("after a crash (only a clean exit).")

    def test_restart_in_a_dropin_wins(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A drop-in beside the unit file that sets Restart=no overrides the unit."""
        unit = unit_variant(tmp_path, {})
        (tmp_path / "app.service.d").mkdir()
        (tmp_path / "app.service.d" / "override.conf").write_text("[Service]\nRestart=no\n")
        [(_, message)] = messages_of(
            make_app(), "supervision.restart_policy", systemd_unit=str(unit)
        )
        assert f"has Restart=no ({unit} (with 1 drop-ins))" in message

    def test_boot_without_wanted_by(self, make_app: MakeApp, tmp_path: Path) -> None:
        """No WantedBy= in [Install]: the unit cannot be enabled."""
        unit = unit_variant(tmp_path, {"WantedBy=multi-user.target": ""})
        assert messages_of(make_app(), "supervision.boot", systemd_unit=str(unit)) == [
            (
                "warning",
                f"The systemd unit app.service has no WantedBy= in [Install] ({unit}): "
                "`systemctl enable` cannot enable it, so it does not start at boot.",
            )
        ]

    def test_reload_without_exec_reload(self, make_app: MakeApp, tmp_path: Path) -> None:
        """No ExecReload=: no graceful reload, reported as info."""
        unit = unit_variant(tmp_path, {"ExecReload=/bin/kill -HUP $MAINPID": ""})
        assert messages_of(make_app(), "supervision.reload", systemd_unit=str(unit)) == [
            (
                "info",
                f"The systemd unit app.service has no ExecReload= ({unit}): `systemctl reload` "
                "cannot reload the server, so a deploy restarts it and drops the requests in "
                "flight.",
            )
        ]

    def test_reload_with_another_signal(self, make_app: MakeApp, tmp_path: Path) -> None:
        """ExecReload= that sends TERM is named as not graceful."""
        unit = unit_variant(
            tmp_path, {"ExecReload=/bin/kill -HUP $MAINPID": "ExecReload=/bin/kill -TERM $MAINPID"}
        )
        [(_, message)] = messages_of(make_app(), "supervision.reload", systemd_unit=str(unit))
        assert message.startswith(
            "ExecReload= of the systemd unit app.service does not send HUP to the main process "
            "(/bin/kill -TERM $MAINPID;"
        )

    def test_env_file_readable_by_others(self, make_app: MakeApp, tmp_path: Path) -> None:
        """An EnvironmentFile= at 0644 is an error; the same file at 0600 passes."""
        env = tmp_path / "env"
        env.write_text("SECRET_KEY=x\n")
        env.chmod(0o644)
        unit = unit_variant(
            tmp_path, {"EnvironmentFile=/etc/example-app/env": f"EnvironmentFile=-{env}"}
        )
        app = make_app()
        assert messages_of(app, "supervision.env_file", systemd_unit=str(unit)) == [
            (
                "error",
                f"The environment file {env} (EnvironmentFile= of app.service) is readable by "
                "its group and every user (mode 0644): they can read the secrets in it.",
            )
        ]
        env.chmod(0o640)
        [(_, message)] = messages_of(app, "supervision.env_file", systemd_unit=str(unit))
        assert "is readable by its group (mode 0640)" in message
        env.chmod(0o600)
        assert messages_of(app, "supervision.env_file", systemd_unit=str(unit)) == []

    def test_env_file_missing_optional_one_is_not_judged(
        self, make_app: MakeApp, tmp_path: Path
    ) -> None:
        """A missing optional file beside a present one: only the present one is judged."""
        env = tmp_path / "env"
        env.write_text("A=1\n")
        env.chmod(0o600)
        unit = unit_variant(
            tmp_path,
            {"EnvironmentFile=/etc/example-app/env": f"EnvironmentFile=-{tmp_path}/nope\n"
             f"EnvironmentFile={env}"},
        )  # fmt: skip
        assert messages_of(make_app(), "supervision.env_file", systemd_unit=str(unit)) == []

    def test_unreadable_unit_file_is_skipped(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A unit file that went away is skipped with the reason, never passed."""
        outcome = outcome_of(
            make_app(), "supervision.boot", systemd_unit=str(tmp_path / "gone.service")
        )
        assert outcome.status.value == "skipped"
        assert outcome.reason == (
            f"the unit file {tmp_path / 'gone.service'} cannot be read (No such file or directory)"
        )

    def test_live_with_a_unit_file_judges_the_file(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Live, a unit file named by the setting is judged as from the CLI."""
        unit = unit_variant(tmp_path, {"WantedBy=multi-user.target": ""})
        app = make_app(PRODREADY_SYSTEMD_UNIT=str(unit))
        [(level, _)] = messages_of(app, "supervision.boot", "live")
        assert level == "warning"


class TestLiveWithoutAServer:
    def test_skipped_when_no_server_identified_itself(self, make_app: MakeApp) -> None:
        """Live without SERVER_SOFTWARE (Flask's test client): no server process to judge,
        so the process-tree checks are skipped, never passed."""
        app = make_app()
        reason = (
            "no server identified itself in the request for this report (no SERVER_SOFTWARE): "
            "there is no server process to judge"
        )
        for check_id in SUPERVISION_IDS:
            outcome = outcome_of(app, check_id, "live")
            assert (outcome.status.value, outcome.reason) == ("skipped", reason), check_id
