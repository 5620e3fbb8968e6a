"""supervision.* for real: gunicorn started with nohup from a shell, gunicorn under a real
supervisord (its socket, pidfile and logs in a temporary folder, no inet HTTP server),
and `flask readiness --systemd-unit` on the deploy kit's unit and variants of it.

Every server binds 127.0.0.1 and is stopped by the PID the test started; the test then
makes sure no gunicorn is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..loopback import require_gunicorn_arguments
from ..support import check_of, result_of
from .processes import HOST, PROJECT_ROOT, environment, fetch, free_port, wait_for_port

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": secrets.token_urlsafe(48)}
DEPLOY_UNIT = PROJECT_ROOT / "deploy" / "example-app.service"
STOP_TIMEOUT = 20.0
SUPERVISION_IDS = (
    "supervision.unsupervised",
    "supervision.restart_policy",
    "supervision.boot",
    "supervision.reload",
    "supervision.env_file",
)

APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(SECRET_KEY=os.environ["APP_SECRET_KEY"], PRODREADY_CACHE_SECONDS=0)
ProdReady(app)

@app.route("/")
def index():
    return "supervised?"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the app."""
    folder = tmp_path_factory.mktemp("supervision")
    (folder / "app.py").write_text(textwrap.dedent(APP))
    return folder


def gunicorn_arguments(project: Path, port: int, pidfile: Path) -> list[str]:
    """gunicorn's arguments for the app on 127.0.0.1:``port``, checked to be loopback."""
    arguments = ["--no-control-socket", "--chdir", str(project), "-b", f"{HOST}:{port}",
                 "-w", "1", "--pid", str(pidfile), "app:app"]  # fmt: skip
    require_gunicorn_arguments(arguments, environment(project, ENV))
    return arguments


def supervision_report(port: int) -> dict[str, Any]:
    answer = fetch(port, "/_readiness?tag=supervision", headers=AUTH)
    assert answer.status in (200, 503), answer.body[:300]
    body: dict[str, Any] = answer.json()
    return body


def findings(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["id"], f["message"]) for f in body["findings"]]


def read_pid(pidfile: Path) -> int:
    """The pid gunicorn wrote (bounded wait: it writes the file as it starts)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    raise AssertionError(f"gunicorn wrote no pid to {pidfile}")


def gone(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """Whether process ``pid`` has exited (waiting a bounded time for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def make_sure_gone(pids: list[int]) -> None:
    """Fail when one of ``pids`` (gunicorn masters this test started) outlived its stop,
    after killing it."""
    left = [pid for pid in pids if not gone(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"gunicorn masters left running: {left}"


def test_nohup_from_a_shell_is_unsupervised(project: Path) -> None:
    """gunicorn started by `sh -c 'nohup gunicorn ... & wait'`: its master's parent is the
    shell (nohup execs gunicorn, so only the shell is left to see), which the finding
    names with its pid; the settings checks are skipped, pointing at it."""
    port, pidfile, log = free_port(), project / "nohup.pid", project / "nohup.log"
    command = shlex.join(
        [sys.executable, "-m", "gunicorn", *gunicorn_arguments(project, port, pidfile)]
    )
    shell = subprocess.Popen(
        ["sh", "-c", f"nohup {command} > {shlex.quote(str(log))} 2>&1 & wait"],
        cwd=project,
        env=environment(project, ENV),
        stdin=subprocess.DEVNULL,
    )
    master = None
    try:
        wait_for_port(port, shell, log)
        master = read_pid(pidfile)
        body = supervision_report(port)
    finally:
        if master is not None:
            os.kill(master, signal.SIGTERM)
        try:
            shell.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            shell.kill()
            shell.wait()
        if master is not None:
            make_sure_gone([master])

    assert findings(body) == [
        (
            "supervision.unsupervised",
            f"The server's master process (gunicorn, pid {master}) descends from sh (pid "
            f"{shell.pid}), not from a supervisor: nothing restarts it if it dies, or when the "
            "machine boots.",
        )
    ]
    [finding] = body["findings"]
    assert finding["level"] == "error"
    assert finding["observed"]["master"] == {"pid": master, "name": "gunicorn"}
    assert finding["observed"]["ancestors"][0] == {"pid": shell.pid, "name": "sh"}
    for check_id in SUPERVISION_IDS[1:]:
        assert (result_of(body, check_id), check_of(body, check_id)["reason"]) == (
            "skipped",
            "nothing supervises the server (supervision.unsupervised)",
        ), check_id


SUPERVISORD_CONF = """\
[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[include]
files = programs/*.conf
"""
#: Program name -> (extra lines of its section, mode of its file).
PROGRAMS = {
    "restarts": (
        f'autorestart=true\nenvironment=APP_SECRET_KEY="{ENV["APP_SECRET_KEY"]}"\n',
        0o600,
    ),
    "norestart": ("autorestart=false\n", 0o644),
    "manual": ("autostart=false\n", 0o644),
    "exposed": (f'environment=APP_SECRET_KEY="{ENV["APP_SECRET_KEY"]}"\n', 0o644),
}


@dataclass(frozen=True)
class Supervised:
    """The running supervisord: its folder, and each program's port and gunicorn master."""

    folder: Path
    ports: dict[str, int]
    masters: dict[str, int]


def supervisor_command(name: str) -> list[str]:
    """supervisord's (or supervisorctl's) script of this environment, as installed."""
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(f"{name} is not installed in this environment (pip install supervisor)")
    return [script]


@pytest.fixture(scope="module")
def supervised(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    """A real supervisord in the foreground running the app as four programs."""
    folder = tmp_path_factory.mktemp("supervisord")
    (folder / "programs").mkdir()
    conf = folder / "supervisord.conf"
    conf.write_text(SUPERVISORD_CONF)
    ports = {name: free_port() for name in PROGRAMS}
    for name, (extra, mode) in PROGRAMS.items():
        arguments = gunicorn_arguments(project, ports[name], folder / f"{name}.pid")
        section = folder / "programs" / f"{name}.conf"
        section.write_text(
            f"[program:{name}]\n"
            f"command={shlex.join([sys.executable, '-m', 'gunicorn', *arguments])}\n"
            f"directory={project}\nredirect_stderr=true\n"
            f"stdout_logfile=%(here)s/../{name}.log\nstopwaitsecs=10\n{extra}"
        )
        section.chmod(mode)
    log = folder / "supervisord.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*supervisor_command("supervisord"), "-n", "-c", str(conf)],
            cwd=folder,
            env=environment(project, ENV),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    masters: dict[str, int] = {}
    try:
        for name in ("restarts", "norestart", "exposed"):
            wait_for_port(ports[name], process, folder / f"{name}.log")
        started = subprocess.run(
            [*supervisor_command("supervisorctl"), "-c", str(conf), "start", "manual"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "manual: started" in started.stdout, started.stdout + started.stderr
        wait_for_port(ports["manual"], process, folder / "manual.log")
        masters = {name: read_pid(folder / f"{name}.pid") for name in PROGRAMS}
        yield Supervised(folder, ports, masters)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        make_sure_gone(list(masters.values()))


def test_supervisord_with_autorestart_is_quiet(supervised: Supervised) -> None:
    """Under supervisord with autorestart=true and its secret in a 0600 file: no finding;
    reload is skipped (supervisord has no reload command)."""
    body = supervision_report(supervised.ports["restarts"])
    assert findings(body) == []
    statuses = {check_id: result_of(body, check_id) for check_id in SUPERVISION_IDS}
    assert statuses == {
        "supervision.unsupervised": "pass",
        "supervision.restart_policy": "pass",
        "supervision.boot": "pass",
        "supervision.reload": "skipped",
        "supervision.env_file": "pass",
    }


def test_supervisord_autorestart_false(supervised: Supervised) -> None:
    """autorestart=false in the program's included file: supervision.restart_policy."""
    body = supervision_report(supervised.ports["norestart"])
    where = supervised.folder / "programs" / "norestart.conf"
    assert findings(body) == [
        (
            "supervision.restart_policy",
            f"supervisord's [program:norestart] has autorestart=false ({where}): supervisord "
            "leaves the server down when it exits, even after a crash.",
        )
    ]


def test_supervisord_autostart_false(supervised: Supervised) -> None:
    """autostart=false (started by supervisorctl): supervision.boot."""
    body = supervision_report(supervised.ports["manual"])
    where = supervised.folder / "programs" / "manual.conf"
    assert findings(body) == [
        (
            "supervision.boot",
            f"supervisord's [program:manual] has autostart=false ({where}): the server does "
            "not start with supervisord, at boot or when supervisord restarts.",
        )
    ]


def test_supervisord_secret_in_a_readable_file(supervised: Supervised) -> None:
    """A secret in environment= of a 0644 file: supervision.env_file, never the value."""
    answer = fetch(supervised.ports["exposed"], "/_readiness?tag=supervision", headers=AUTH)
    where = supervised.folder / "programs" / "exposed.conf"
    assert findings(answer.json()) == [
        (
            "supervision.env_file",
            f"The supervisord file {where}, which sets APP_SECRET_KEY in environment= of "
            "[program:exposed], is readable by its group and every user (mode 0644): they "
            "can read the secrets in it.",
        )
    ]
    assert ENV["APP_SECRET_KEY"].encode() not in answer.body


# --- flask readiness --systemd-unit -------------------------------------------------------


def readiness(project: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    """`flask --app app readiness --format json --tag supervision --systemd-unit UNIT`."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "readiness", "--format", "json",
         "--tag", "supervision", "--systemd-unit", str(unit)],
        cwd=project,
        env=environment(project, ENV),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def variant(folder: Path, name: str, replace: dict[str, str]) -> Path:
    """The deploy kit's unit with whole lines replaced (``""`` drops the line)."""
    lines = DEPLOY_UNIT.read_text().splitlines()
    for old, new in replace.items():
        assert old in lines, old
        lines = [new if line == old else line for line in lines]
    path = folder / name
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def test_cli_deploy_unit_is_quiet(project: Path) -> None:
    """The deploy kit's unit has no supervision finding and exits 0 (its env file is not
    on this machine: env_file is skipped, naming it)."""
    done = readiness(project, DEPLOY_UNIT)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["findings"] == []
    assert result_of(body, "supervision.env_file") == "skipped"
    for check_id in SUPERVISION_IDS[:4]:
        assert result_of(body, check_id) == "pass", check_id


@pytest.mark.parametrize(
    ("replace", "check_id", "code"),
    [
        ({"Restart=on-failure": ""}, "supervision.restart_policy", 0),
        ({"WantedBy=multi-user.target": ""}, "supervision.boot", 0),
        ({"ExecReload=/bin/kill -HUP $MAINPID": ""}, "supervision.reload", 0),
    ],
)
def test_cli_unit_variants(
    project: Path, tmp_path: Path, replace: dict[str, str], check_id: str, code: int
) -> None:
    """Without Restart=, WantedBy= or ExecReload=, each variant reports its own id (a
    warning or info: exit 0)."""
    done = readiness(project, variant(tmp_path, "app.service", replace))
    assert done.returncode == code, done.stdout + done.stderr
    assert [f["id"] for f in json.loads(done.stdout)["findings"]] == [check_id]


def test_cli_environment_file_modes(project: Path, tmp_path: Path) -> None:
    """An EnvironmentFile= at 0644 is an error (exit 1); at 0600 it passes (exit 0)."""
    env = tmp_path / "env"
    env.write_text(f"SECRET_KEY={ENV['APP_SECRET_KEY']}\n")
    env.chmod(0o644)
    unit = variant(tmp_path, "app.service", {"EnvironmentFile=/etc/example-app/env":
                                             f"EnvironmentFile={env}"})  # fmt: skip
    done = readiness(project, unit)
    assert done.returncode == 1, done.stdout + done.stderr
    assert [(f["id"], f["level"]) for f in json.loads(done.stdout)["findings"]] == [
        ("supervision.env_file", "error")
    ]
    assert ENV["APP_SECRET_KEY"] not in done.stdout
    env.chmod(0o600)
    done = readiness(project, unit)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert (body["findings"], result_of(body, "supervision.env_file")) == ([], "pass")
