"""system.exposed_services, server.code_writable, database.credentials_in_source and
dependencies.environment, on real sockets, folders, git checkouts and interpreters.

Nothing here listens beyond loopback: where a public listener is the case to judge, the
check's judgment runs over psutil's own rows (``sconn``), built here or taken from the
real listing with the address changed. Another user is ``nobody`` through ``runuser``,
with ``/usr/bin/python3`` (root's Python is unreadable to it).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from flask_prodready import ProdReady
from flask_prodready.checks import system
from flask_prodready.checks._source_scan import clear_cache
from flask_prodready.checks.database.credentials import searches
from flask_prodready.checks.dependencies import (
    unsatisfied_requirements,
    virtual_environment,
)
from flask_prodready.engine.state import get_state
from tests.postgres import PostgresServer

from ..stacks import needs_sqlalchemy_2
from ..support import GOOD_CONFIG, messages_of, outcome_of

MakeApp = Callable[..., Flask]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The test environment's packages, for interpreters that are not the test venv's.
SITE_PACKAGES = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
SYSTEM_PYTHON = "/usr/bin/python3"
COMMAND_TIMEOUT = 120.0
RUNS_AS_ROOT = os.geteuid() == 0

try:  # psutil's own named tuples: in psutil._ntuples since 7.x, psutil._common before
    _TUPLES: Any = importlib.import_module("psutil._ntuples")
except ImportError:  # pragma: no cover - older psutil
    _TUPLES = importlib.import_module("psutil._common")
sconn, addr = _TUPLES.sconn, _TUPLES.addr


def listener(ip: str, port: int, *, pid: int | None = None, udp: bool = False) -> Any:
    """A listening socket as ``psutil.net_connections()`` returns it."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    status = psutil.CONN_NONE if udp else psutil.CONN_LISTEN
    return sconn(-1, family, kind, addr(ip, port), (), status, pid)


def other_python_environment(*extra: str) -> dict[str, str]:
    """The environment of a Python that is not the test venv's: the project and the test
    venv's packages on its path, and nothing of the outer app environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "PRODREADY_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env["PYTHONPATH"] = os.pathsep.join([*extra, str(PROJECT_ROOT), *SITE_PACKAGES])
    return env


# --- system.exposed_services ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_listeners() -> Iterator[None]:
    """Each test lists the host's sockets anew (the check keeps a snapshot a minute)."""
    system.clear_listeners()
    yield
    system.clear_listeners()


def test_the_listing_is_reused_for_a_minute(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reports within LISTENERS_TTL list the host's sockets once; past it, again."""
    calls = []
    real = psutil.net_connections

    def counted(kind: str = "inet") -> Any:
        calls.append(kind)
        return real(kind=kind)

    monkeypatch.setattr(psutil, "net_connections", counted)
    app = make_app()
    for _ in range(2):
        assert outcome_of(app, "system.exposed_services").status.value in ("pass", "fail")
    assert calls == ["inet"]
    monkeypatch.setattr(system, "LISTENERS_TTL", 0.0)
    outcome_of(app, "system.exposed_services")
    assert calls == ["inet", "inet"]


class TestExposedServices:
    @pytest.mark.parametrize(
        ("address", "exposed"),
        [
            ("0.0.0.0", True),
            ("::", True),
            ("", True),
            ("10.1.2.3", True),
            ("192.168.0.7", True),
            ("fe80::1", True),
            ("::ffff:10.0.0.1", True),
            ("::ffff:0.0.0.0", True),
            ("127.0.0.1", False),
            ("127.0.0.2", False),
            ("127.255.0.9", False),
            ("::1", False),
            ("::ffff:127.0.0.1", False),
        ],
    )
    def test_classifies_addresses(self, address: str, exposed: bool) -> None:
        """Wildcards and every non-loopback address are exposed; 127.0.0.0/8, ::1 and
        IPv4-mapped loopback are not."""
        assert system.is_exposed(address) is exposed

    def test_real_loopback_listeners_are_seen_and_not_exposed(self) -> None:
        """Real sockets listening on 127.0.0.1 and 127.0.0.2 (TCP) appear in psutil's listing
        of the host, held by this process, and are judged not exposed, even as the app's
        own server behind a proxy on this host."""
        with listening_on(("127.0.0.1", 0), ("127.0.0.2", 0)) as bound:
            rows = psutil.net_connections(kind="inet")
            ours = [row for row in rows if (row.laddr.ip, row.laddr.port) in bound]
            assert sorted((r.laddr.ip, r.laddr.port) for r in ours) == sorted(bound)
            assert {row.status for row in ours} == {psutil.CONN_LISTEN}
            assert {row.pid for row in ours} == {os.getpid()}
            assert bound <= system._own_listeners(psutil)
            assert system.exposed_listeners(ours, app_addresses=bound, proxy_on_host=True) == []

    def test_fires_for_services_beyond_loopback(self) -> None:
        """Databases and caches on a wildcard or non-loopback address are reported, known by
        port or by process name (a PostgreSQL on another port), UDP included; loopback ones,
        unknown services and the app's server without a proxy on this host are not."""
        rows = [
            listener("0.0.0.0", 6379, pid=812),
            listener("::", 6379, pid=812),
            listener("127.0.0.1", 5432, pid=90),
            listener("0.0.0.0", 6543, pid=91),
            listener("10.0.0.5", 27017),
            listener("0.0.0.0", 11211, pid=77, udp=True),
            listener("0.0.0.0", 2024),
            listener("0.0.0.0", 8000, pid=os.getpid()),
        ]
        names = {812: "redis-server", 90: "postgres", 91: "postgres", 77: "memcached"}
        found = system.exposed_listeners(
            rows, process_names=names, app_addresses={("0.0.0.0", 8000)}, proxy_on_host=False
        )
        assert [system.exposure_message(e) for e in found] == [
            "Redis (redis-server, pid 812) listens on every interface (0.0.0.0:6379) on this "
            "host: other machines that reach this one can connect to it directly.",
            "Redis (redis-server, pid 812) listens on every interface ([::]:6379) on this "
            "host: other machines that reach this one can connect to it directly.",
            "PostgreSQL (postgres, pid 91) listens on every interface (0.0.0.0:6543) on this "
            "host: other machines that reach this one can connect to it directly.",
            "Memcached (memcached, pid 77) listens on every interface (0.0.0.0:11211 (UDP)) on "
            "this host: other machines that reach this one can connect to it directly.",
            "MongoDB listens on 10.0.0.5:27017, a non-loopback address on this host: other "
            "machines that reach this one can connect to it directly.",
        ]
        assert "redis.conf" in system.exposure_hint(found[0])

    def test_fires_for_the_app_server_behind_a_proxy_on_this_host(self) -> None:
        """The app's own server on every interface is reported when its proxy reaches it
        from this host, and not when the proxy is elsewhere (it needs that interface)."""
        rows = [listener("0.0.0.0", 8000, pid=1234)]
        own = {("0.0.0.0", 8000)}
        assert system.exposed_listeners(rows, app_addresses=own, proxy_on_host=False) == []
        [found] = system.exposed_listeners(rows, app_addresses=own, proxy_on_host=True)
        assert system.exposure_message(found) == (
            "The app's server (pid 1234) listens on every interface (0.0.0.0:8000), although "
            "its proxy reaches it from this host: clients can bypass the proxy and its TLS, "
            "limits and forwarded headers."
        )
        assert "127.0.0.1" in system.exposure_hint(found)

    def test_proxy_on_host_follows_the_live_evidence(self, make_app: MakeApp) -> None:
        """Live evidence of a proxy at 127.0.0.1 says the proxy is on this host; one at
        10.0.0.7 or traffic without forwarded headers says nothing of the kind."""
        for peer, headers, expected in (
            ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, True),
            ("10.0.0.7", {"X-Forwarded-For": "203.0.113.9"}, False),
            ("127.0.0.1", {}, False),
        ):
            app = make_app()
            serve(app, peer, headers)
            assert system.proxy_on_host(get_state(app).evidence()) is expected, peer
        assert system.proxy_on_host(None) is False

    def test_quiet_live_behind_a_loopback_proxy_with_a_loopback_server(
        self, make_app: MakeApp
    ) -> None:
        """Live, behind a proxy at 127.0.0.1, with this process listening on 127.0.0.1 only,
        the real check on this host reports nothing about that socket."""
        app = make_app()
        serve(app, "127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})
        with listening_on(("127.0.0.1", 0)) as bound:
            outcome = outcome_of(app, "system.exposed_services", "live")
        assert outcome.status.value in ("pass", "fail"), outcome.reason
        [(_, port)] = bound
        assert [f.message for f in outcome.findings if f":{port}" in f.message] == []

    def test_real_postgres_on_loopback_is_not_reported(self, postgres: PostgresServer) -> None:
        """The test PostgreSQL, listening on 127.0.0.1 on a random port, is found in the real
        listing and named PostgreSQL by its process, judged not exposed, and absent from the
        real check's findings; the same row on 0.0.0.0 would be reported."""
        rows = [
            row
            for row in psutil.net_connections(kind="inet")
            if row.status == psutil.CONN_LISTEN and row.laddr.port == postgres.port
        ]
        assert [row.laddr.ip for row in rows] == ["127.0.0.1"]
        names = system._process_names(psutil, [row.pid for row in rows])
        assert system.exposed_listeners(rows, process_names=names) == []

        public = [row._replace(laddr=addr("0.0.0.0", postgres.port)) for row in rows]
        [found] = system.exposed_listeners(public, process_names=names)
        assert found.service == "PostgreSQL"  # by its process name, on a port not 5432

        app = Flask("pgapp")
        app.config.update(GOOD_CONFIG)
        ProdReady(app)
        outcome = outcome_of(app, "system.exposed_services")
        assert outcome.status.value in ("pass", "fail"), outcome.reason
        assert [f for f in outcome.findings if str(postgres.port) in f.message] == []


@contextlib.contextmanager
def listening_on(*addresses: tuple[str, int]) -> Iterator[set[tuple[str, int]]]:
    """Listening TCP sockets on loopback addresses, as their ``(ip, port)``."""
    with contextlib.ExitStack() as stack:
        bound = set()
        for host, port in addresses:
            assert system.is_exposed(host) is False, host  # never beyond loopback
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, port))
            sock.listen(1)
            bound.add(sock.getsockname()[:2])
        yield bound


def serve(app: Flask, peer: str, headers: dict[str, str], count: int = 12) -> None:
    """``count`` requests to an app route from the direct peer ``peer``."""
    if "ping" not in app.view_functions:
        app.add_url_rule("/ping", "ping", lambda: "pong")
    client = app.test_client()
    for _ in range(count):
        client.get("/ping", headers=headers, environ_base={"REMOTE_ADDR": peer})


# --- server.code_writable -------------------------------------------------------------------


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A temporary folder other users can enter (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="prodready-code-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_code(folder: Path) -> Path:
    """A project with a package ``shop`` (two modules, a template), mode 0755/0644."""
    package = folder / "project" / "shop"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("VIEWS = []\n")
    (package / "templates" / "index.html").write_text("<p>{{ name }}</p>\n")
    for path in [folder / "project", *folder.joinpath("project").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return package


#: Run as another user: builds an app on the package folder and prints the live outcome.
CODE_SCRIPT = """
import json, sys
from flask import Flask
from flask_prodready import ProdReady
from flask_prodready.engine.state import get_state

app = Flask("shop", root_path=sys.argv[1], instance_path=sys.argv[2])
app.config["PRODREADY_TOKEN"] = "t" * 32
ProdReady(app)
state = get_state(app)
check = state.registry.get("server.code_writable")
outcome = state.build_report(app, mode="live", checks=[check]).outcomes[check.id]
print(json.dumps({"status": outcome.status.value, "reason": outcome.reason,
                  "messages": [f.message for f in outcome.findings],
                  "observed": [f.observed for f in outcome.findings]}))
"""


def run_as_nobody(package: Path, instance: Path) -> dict[str, Any]:
    """``server.code_writable`` judged live in a process of the user ``nobody``."""
    script = package.parent.parent / "judge.py"
    script.write_text(CODE_SCRIPT)
    script.chmod(0o644)
    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, str(script), str(package), str(instance)],
        env=other_python_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def nobody_can_run_the_package() -> str | None:
    """Why the tests as ``nobody`` cannot run here, or ``None`` when they can."""
    if not RUNS_AS_ROOT:
        return "switching to the user nobody needs root"
    if shutil.which("runuser") is None or not Path(SYSTEM_PYTHON).exists():
        return f"runuser or {SYSTEM_PYTHON} is missing"
    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", "import flask_prodready, flask"],
        env=other_python_environment(),
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        cwd="/",
    )
    if done.returncode != 0:
        return f"nobody cannot import flask and flask_prodready with {SYSTEM_PYTHON}"
    return None


class TestCodeWritable:
    def test_fires_as_root_whatever_the_modes(self, shared_folder: Path) -> None:
        """As root, code owned by root at 0755/0644 is writable: the finding says the process
        runs as root, names the package folder first and lists what it could write."""
        if not RUNS_AS_ROOT:
            pytest.skip("this test judges a root process; the suite runs as another user")
        package = make_code(shared_folder)
        app = Flask("shop", root_path=str(package), instance_path=str(shared_folder / "inst"))
        app.config.update(GOOD_CONFIG)
        ProdReady(app)
        outcome = outcome_of(app, "server.code_writable", "live")
        [finding] = outcome.findings
        assert finding.level.value == "warning"
        assert finding.message.startswith(
            f"The server process (pid {os.getpid()}) runs as root, which can write every "
            f"file, the app's code included ({package}, {package / '__init__.py'}, "
        )
        assert finding.message.endswith(
            ": a code-execution bug can persist itself in the code that runs next."
        )
        assert str(package / "templates" / "index.html") in finding.observed["writable"]
        assert "server.root" in finding.hint

    def test_skipped_from_the_command_line(self, make_app: MakeApp) -> None:
        """From the CLI the process is the CI job or a shell: the check does not judge."""
        outcome = outcome_of(make_app(), "server.code_writable", "cli")
        assert outcome.status.value == "skipped"

    def test_nobody_on_code_owned_by_root_is_quiet_and_on_its_own_code_fires(
        self, shared_folder: Path
    ) -> None:
        """Run as nobody: root-owned code at 0755/0644 passes; once nobody owns the package
        folder it fires naming that user; with the write bits off again it passes."""
        why = nobody_can_run_the_package()
        if why is not None:
            pytest.skip(why)
        package = make_code(shared_folder)
        instance = shared_folder / "instance"

        assert run_as_nobody(package, instance) == {
            "status": "pass",
            "reason": None,
            "messages": [],
            "observed": [],
        }

        shutil.chown(package, "nobody")
        shutil.chown(package / "views.py", "nobody")
        owned = run_as_nobody(package, instance)
        assert owned["status"] == "fail"
        pid_and_user = owned["messages"][0].split("(pid ", 1)[1].split(")", 1)[0]
        assert pid_and_user.endswith(", user nobody")
        assert owned["messages"][0].endswith(
            f"can write the app's code ({package}, {package / 'views.py'}): a code-execution "
            "bug can persist itself in the code that runs next."
        )
        assert owned["observed"][0]["writable"] == [str(package), str(package / "views.py")]

        package.chmod(0o555)
        (package / "views.py").chmod(0o444)
        assert run_as_nobody(package, instance)["status"] == "pass"

    def test_instance_and_upload_folders_are_not_code(self, shared_folder: Path) -> None:
        """Writable instance and upload folders inside the app folder (a module app keeps
        them there) are the app's data: as nobody, only the code counts."""
        why = nobody_can_run_the_package()
        if why is not None:
            pytest.skip(why)
        package = make_code(shared_folder)
        instance = package / "instance"
        instance.mkdir()
        (instance / "config.py").write_text("X = 1\n")
        shutil.chown(instance, "nobody")
        shutil.chown(instance / "config.py", "nobody")
        assert run_as_nobody(package, instance)["status"] == "pass"


# --- database.credentials_in_source ---------------------------------------------------------


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, timeout=60)


def app_with_engine(root: Path, url: str | URL) -> Flask:
    """An app in ``root``/app with an engine (made without connecting) handed over."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    app = Flask("credapp", root_path=str(root / "app"), instance_path=str(root / "instance"))
    app.config.update(GOOD_CONFIG)
    extension = ProdReady(app)
    extension.add_engine(create_engine(url), name="main", app=app)
    return app


class TestCredentialsInSource:
    def test_fires_on_a_tracked_py_file(self, tmp_path: Path, postgres: PostgresServer) -> None:
        """The test server's password, written in a .py file git tracks, is an error naming
        the engine and the file; the password is in no finding, hint or observed value."""
        url = postgres.url(postgres.owner, "postgres")
        root = tmp_path / "project"
        app = app_with_engine(root, url)
        (root / "app" / "settings.py").write_text(f'DATABASE_URL = "{url}"\n')
        git(root, "init", "-q")
        git(root, "add", "app/settings.py")

        outcome = outcome_of(app, "database.credentials_in_source")
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "error",
                f"The password of the engine 'main' (postgresql://127.0.0.1:{postgres.port}/"
                "postgres) is written in app/settings.py (tracked by git).",
            )
        ]
        assert outcome.findings[0].observed == {"file": "app/settings.py", "method": "git"}
        assert postgres.owner.password not in repr(outcome)

    def test_quiet_in_an_ignored_file_at_600_and_warns_when_others_read_it(
        self, tmp_path: Path, postgres: PostgresServer
    ) -> None:
        """In a secrets file git ignores, the password is fine at mode 600; at 644 the
        finding is a warning that says chmod 600."""
        url = postgres.url(postgres.owner, "postgres")
        root = tmp_path / "project"
        app = app_with_engine(root, url)
        (root / ".gitignore").write_text(".env\n")
        secrets_file = root / ".env"
        secrets_file.write_text(f"DATABASE_URL={url}\n")
        secrets_file.chmod(0o600)
        git(root, "init", "-q")
        git(root, "add", ".gitignore")

        assert messages_of(app, "database.credentials_in_source") == []
        secrets_file.chmod(0o644)
        outcome = outcome_of(app, "database.credentials_in_source")
        assert [(f.level.value, f.message, f.hint) for f in outcome.findings] == [
            (
                "warning",
                f"The password of the engine 'main' (postgresql://127.0.0.1:{postgres.port}/"
                "postgres) is kept in .env (ignored by git), but its mode is 0644: other "
                "users of the host can read it.",
                "Run: chmod 600 .env",
            )
        ]

    @needs_sqlalchemy_2
    def test_wordy_password_counts_in_a_url_not_in_prose(self, tmp_path: Path) -> None:
        """A password made of words is not reported in prose (README.md), and is reported
        percent-encoded in a URL of a tracked file."""
        password = "correct horse battery staple"
        url = URL.create("postgresql+psycopg", "app", password, "127.0.0.1", 5432, "shop")
        root = tmp_path / "project"
        app = app_with_engine(root, url)
        (root / "README.md").write_text(f"Remember: {password} is a famous example.\n")
        git(root, "init", "-q")
        git(root, "add", "README.md")
        assert messages_of(app, "database.credentials_in_source") == []

        written = f"postgresql+psycopg://app:{quote(password, safe='')}@127.0.0.1:5432/shop"
        assert "correct%20horse" in written
        (root / "app" / "db.py").write_text(f"URL = {written!r}\n")
        git(root, "add", "app/db.py")
        clear_cache()  # a complete scan is reused for minutes: the code of a process is fixed
        assert messages_of(app, "database.credentials_in_source") == [
            (
                "error",
                "The password of the engine 'main' (postgresql://127.0.0.1:5432/shop) is "
                "written in app/db.py (tracked by git).",
            )
        ]
        assert searches(password)[0].literal_only is True

    @needs_sqlalchemy_2
    def test_skips_a_password_too_short_to_search_and_an_engine_without_one(
        self, tmp_path: Path
    ) -> None:
        """A password shorter than the scan's minimum is skipped with that reason, and so is
        an engine whose URL carries no password."""
        short = app_with_engine(tmp_path / "a", "postgresql+psycopg://app:pw12@127.0.0.1/shop")
        outcome = outcome_of(short, "database.credentials_in_source")
        assert outcome.status.value == "skipped"
        assert "shorter than 8 characters" in str(outcome.reason)
        assert "pw12" not in str(outcome.reason)

        none = app_with_engine(tmp_path / "b", "postgresql+psycopg://app@127.0.0.1/shop")
        outcome = outcome_of(none, "database.credentials_in_source")
        assert outcome.status.value == "skipped"
        assert "no engine connects with a password" in str(outcome.reason)

    def test_cli_reports_the_file_never_the_password(
        self, tmp_path: Path, postgres: PostgresServer
    ) -> None:
        """``flask readiness`` on a project whose tracked app module holds the database URL
        exits 1 with the finding, in text and JSON, and prints the password nowhere."""
        url = postgres.url(postgres.owner, "postgres")
        root = tmp_path / "project"
        root.mkdir()
        (root / "credapp.py").write_text(
            textwrap.dedent(
                f"""
                import json, os
                from flask import Flask
                from sqlalchemy import create_engine
                from flask_prodready import ProdReady

                app = Flask(__name__)
                app.config.update(json.loads(os.environ["CRED_CONFIG"]))
                ProdReady(app).add_engine(create_engine({url!r}), name="main", app=app)
                """
            )
        )
        git(root, "init", "-q")
        git(root, "add", "credapp.py")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PRODREADY_"))}
        env.update(PYTHONPATH=str(root), CRED_CONFIG=json.dumps(GOOD_CONFIG))
        outputs = []
        for output in ("text", "json"):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "credapp",
                    "readiness",
                    "--tag",
                    "security",
                    "--format",
                    output,
                ],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            assert done.returncode == 1, done.stdout + done.stderr
            outputs.append(done.stdout + done.stderr)
        assert "database.credentials_in_source" in outputs[0]
        findings = json.loads(outputs[1])["findings"]
        assert [f["message"] for f in findings if f["id"] == "database.credentials_in_source"] == [
            f"The password of the engine 'main' (postgresql://127.0.0.1:{postgres.port}/"
            "postgres) is written in credapp.py (tracked by git)."
        ]
        for text in outputs:
            assert postgres.owner.password not in text


# --- dependencies.environment ---------------------------------------------------------------


class TestEnvironment:
    def test_virtual_environment_detection(self, tmp_path: Path) -> None:
        """A prefix apart from the base prefix, virtualenv's real_prefix and a conda prefix
        isolate the interpreter; the base prefix itself does not."""
        conda = tmp_path / "conda"
        (conda / "conda-meta").mkdir(parents=True)
        assert virtual_environment("/usr", "/usr") is None
        assert virtual_environment("/srv/app/.venv", "/usr") == (
            "the virtual environment /srv/app/.venv"
        )
        assert virtual_environment("/usr", "/usr", real_prefix="/usr") == (
            "the virtual environment /usr"
        )
        assert virtual_environment(str(conda), str(conda)) == f"the conda environment {conda}"

    def test_quiet_in_the_test_venv_and_agrees_with_pip_check(self, make_app: MakeApp) -> None:
        """The test suite's venv is a virtual environment, and the unsatisfied requirements
        found are those ``pip check`` reports (none when it finds none)."""
        assert sys.prefix != sys.base_prefix
        outcome = outcome_of(make_app(), "dependencies.environment")
        assert [f for f in outcome.findings if "outside a virtual" in f.message] == []
        pip_check = subprocess.run(
            [sys.executable, "-m", "pip", "check"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        problems, complete = unsatisfied_requirements(
            importlib.metadata.distributions(), time.monotonic() + 30
        )
        assert complete
        if pip_check.returncode == 0:
            assert problems == []
            assert outcome.status.value == "pass"
        else:
            assert problems

    def test_fires_in_a_venv_with_an_unsatisfied_requirement(self, tmp_path: Path) -> None:
        """In a new venv holding a distribution that requires a package nobody installed and
        an impossible Flask, ``flask readiness --tag dependencies`` reports both, and not
        the venv itself."""
        venv = tmp_path / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
        )
        python = venv / "bin" / "python"
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        ).stdout.strip()
        dist_info = Path(purelib) / "brokenpkg-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: brokenpkg\nVersion: 1.0\n"
            "Requires-Dist: nonexistent-package-xyz>=1\n"
            "Requires-Dist: flask<1\n"
            'Requires-Dist: another-missing-xyz; extra == "extra"\n'
            'Requires-Dist: windows-only-xyz; sys_platform == "win32"\n'
        )
        (tmp_path / "plainapp.py").write_text(
            "from flask import Flask\nfrom flask_prodready import ProdReady\n"
            "app = Flask(__name__)\nProdReady(app)\n"
        )
        done = subprocess.run(
            [
                str(python),
                "-m",
                "flask",
                "--app",
                "plainapp",
                "readiness",
                "--tag",
                "dependencies",
                "--format",
                "json",
            ],
            cwd=tmp_path,
            env=other_python_environment(str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr  # a warning does not fail the gate
        report = json.loads(done.stdout)
        [finding] = [f for f in report["findings"] if f["id"] == "dependencies.environment"]
        flask_version = importlib.metadata.version("flask")
        assert finding["message"] == (
            "2 requirement(s) of installed distributions are not satisfied: brokenpkg 1.0 "
            "requires nonexistent-package-xyz>=1, which is not installed, brokenpkg 1.0 "
            f"requires flask<1, but {flask_version} is installed."
        )
        assert finding["observed"]["environment"] == f"the virtual environment {venv}"

    def test_fires_outside_a_virtual_environment(self, tmp_path: Path) -> None:
        """The operating system's Python, with Flask and the package on PYTHONPATH, runs
        outside any virtual environment: reported, naming the interpreter."""
        if not Path(SYSTEM_PYTHON).exists():
            pytest.skip(f"{SYSTEM_PYTHON} is not installed")
        env = other_python_environment(str(tmp_path))
        probe = subprocess.run(
            [
                SYSTEM_PYTHON,
                "-c",
                "import sys, flask, flask_prodready; print(sys.prefix == sys.base_prefix)",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if probe.returncode != 0 or probe.stdout.strip() != "True":
            pytest.skip(f"Flask does not import with {SYSTEM_PYTHON}, or it is a venv's")
        (tmp_path / "plainapp.py").write_text(
            "from flask import Flask\nfrom flask_prodready import ProdReady\n"
            "app = Flask(__name__)\nProdReady(app)\n"
        )
        done = subprocess.run(
            [
                SYSTEM_PYTHON,
                "-m",
                "flask",
                "--app",
                "plainapp",
                "readiness",
                "--tag",
                "dependencies",
                "--format",
                "json",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The system's own distributions may add a finding of unsatisfied requirements.
        [finding] = [
            f
            for f in json.loads(done.stdout)["findings"]
            if f["id"] == "dependencies.environment" and "outside" in f["message"]
        ]
        assert finding["message"].startswith(
            f"The app runs outside a virtual environment, on {SYSTEM_PYTHON}"
        )
        assert finding["message"].endswith(
            ": it shares its packages with every other program of this interpreter, and an "
            "upgrade for one of them can break the app."
        )
        assert finding["observed"]["prefix"] == "/usr"
