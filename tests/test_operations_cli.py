"""Operations checks (monitoring, backups, uploads, system, dependencies) through a real
`flask --app ... readiness` subprocess, as users run it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .checks.test_dependencies import OsvStub, audit_args, requirements
from .support import STRONG_KEY, check_of, result_of, results_of

OPERATIONS_IDS = {
    "monitoring.error_tracking",
    "monitoring.sentry_pii",
    "monitoring.sentry_environment",
    "monitoring.logging",
    "backups.stale",
    "static.upload_folder",
}

APP = """
import json
import logging
import os

from flask import Flask
from flask_prodready import ProdReady

{sentry}

def create_app():
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY={key!r},
        UPLOAD_FOLDER=os.environ["TEST_UPLOAD_FOLDER"],
        PRODREADY_BACKUP_PATH=os.environ["TEST_BACKUP_PATH"],
        PRODREADY_PIP_AUDIT_ARGS=json.loads(os.environ.get("TEST_AUDIT_ARGS", "[]")),
    )
    app.config.from_prefixed_env()  # FLASK_PRODREADY_CHECK_TIMEOUT=60 for --audit runs
    app.logger.setLevel(logging.{level})
    ProdReady(app)
    return app
"""


def write_app(project: Path, name: str, *, sentry: str = "", level: str = "INFO") -> str:
    source = APP.format(sentry=textwrap.dedent(sentry), key=STRONG_KEY, level=level)
    (project / f"{name}.py").write_text(source)
    return name


def readiness(
    project: Path, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`flask --app MODULE readiness ARGS` in ``project``, without the caller's FLASK_*,
    PRODREADY_* and SENTRY_* variables."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "PRODREADY_", "SENTRY_")) and k != "SECRET_KEY"
    }
    environ.update(env or {})
    environ["PYTHONPATH"] = str(project)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", module, "readiness", *args],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def finding_ids(done: subprocess.CompletedProcess[str]) -> set[str]:
    body: dict[str, Any] = json.loads(done.stdout)
    return {f["id"] for f in body["findings"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    return folder


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def backup_folder(tmp_path: Path, age_seconds: float) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    dump = folder / "db.sql.gz"
    dump.write_bytes(b"-- dump --\n")
    stamp = time.time() - age_seconds
    os.utime(dump, (stamp, stamp))
    return folder


def test_plain_app_reports_the_operations_gaps(project: Path, tmp_path: Path) -> None:
    """A plain app with a 5-day-old backup, uploads inside the code folder and a DEBUG
    logger: error_tracking, backups.stale, static.upload_folder and monitoring.logging."""
    (project / "uploads").mkdir()
    env = {
        "TEST_UPLOAD_FOLDER": str(project / "uploads"),
        "TEST_BACKUP_PATH": str(backup_folder(tmp_path, 5 * 24 * 3600)),
    }
    module = write_app(project, "plainapp", level="DEBUG")
    done = readiness(project, module, "--format", "json", env=env)
    assert done.returncode == 1, done.stderr  # backups.stale is an error
    assert {
        "monitoring.error_tracking",
        "backups.stale",
        "static.upload_folder",
        "monitoring.logging",
    } <= finding_ids(done)
    [stale] = [f for f in json.loads(done.stdout)["findings"] if f["id"] == "backups.stale"]
    assert " is 120 hours (5.0 days) old (db.sql.gz); the limit is 26 hours" in stale["message"]
    text = readiness(project, module, env=env).stdout
    for check_id in ("monitoring.error_tracking", "backups.stale", "static.upload_folder"):
        assert check_id in text


SENTRY_WITH_PII = """
import sentry_sdk

sentry_sdk.init(dsn={dsn!r}, default_integrations=False, send_default_pii=True)
"""

SENTRY_PROPER = """
import sentry_sdk

sentry_sdk.init(
    dsn={dsn!r}, default_integrations=False, environment="staging", release="2026.11.27"
)
"""


def test_sentry_with_pii_and_no_environment(
    project: Path, tmp_path: Path, closed_port: int
) -> None:
    """send_default_pii=True and no environment: sentry_pii and sentry_environment, no
    error_tracking; the DSN, written in the code and not in the config, appears nowhere."""
    key = secrets.token_hex(16)
    dsn = f"http://{key}@127.0.0.1:{closed_port}/42"
    (tmp_path / "data").mkdir()
    env = {
        "TEST_UPLOAD_FOLDER": str(tmp_path / "data"),
        "TEST_BACKUP_PATH": str(backup_folder(tmp_path, 3600)),
    }
    module = write_app(project, "piiapp", sentry=SENTRY_WITH_PII.format(dsn=dsn))
    as_json = readiness(project, module, "--format", "json", env=env)
    ids = finding_ids(as_json)
    assert {"monitoring.sentry_pii", "monitoring.sentry_environment"} <= ids
    assert "monitoring.error_tracking" not in ids
    as_text = readiness(project, module, "--tag", "monitoring", env=env)
    assert "monitoring.sentry_pii" in as_text.stdout
    for done in (as_json, as_text):
        assert key not in done.stdout + done.stderr
        assert f"127.0.0.1:{closed_port}" not in done.stdout + done.stderr


def test_proper_operations_setup_is_quiet(project: Path, tmp_path: Path, closed_port: int) -> None:
    """Sentry with environment and release, a fresh backup, uploads outside the code folder
    and an INFO logger: none of the operations findings."""
    (tmp_path / "data" / "uploads").mkdir(parents=True)
    env = {
        "TEST_UPLOAD_FOLDER": str(tmp_path / "data" / "uploads"),
        "TEST_BACKUP_PATH": str(backup_folder(tmp_path, 3600)),
    }
    dsn = f"http://{secrets.token_hex(16)}@127.0.0.1:{closed_port}/42"
    module = write_app(project, "properapp", sentry=SENTRY_PROPER.format(dsn=dsn))
    done = readiness(project, module, "--format", "json", env=env)
    body = json.loads(done.stdout)
    assert not OPERATIONS_IDS & finding_ids(done), body["findings"]
    for check_id in OPERATIONS_IDS:
        assert result_of(body, check_id) == "pass", check_id


def test_system_checks_always_judge(project: Path, tmp_path: Path) -> None:
    """--tag system --format json: disk, memory, fd_limit and exposed_services each passed
    or with a finding."""
    env = {"TEST_UPLOAD_FOLDER": str(tmp_path), "TEST_BACKUP_PATH": str(tmp_path)}
    module = write_app(project, "sysapp")
    done = readiness(project, module, "--tag", "system", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr  # system.* findings are warnings
    body = json.loads(done.stdout)
    assert set(body["checks"]) == {
        "system.disk",
        "system.memory",
        "system.fd_limit",
        "system.exposed_services",
    }
    for check_id, result in results_of(body).items():
        assert result in {"pass", "fail"}, (check_id, body["checks"][check_id])
        if result == "fail":
            assert check_id in {f["id"] for f in body["findings"]}


def test_system_fd_limit_from_a_low_ulimit(project: Path, tmp_path: Path) -> None:
    """A server started under `ulimit -n 512` is reported by system.fd_limit."""
    env = {"TEST_UPLOAD_FOLDER": str(tmp_path), "TEST_BACKUP_PATH": str(tmp_path)}
    module = write_app(project, "lowapp")
    script = (
        f"ulimit -Sn 512 && exec {sys.executable} -m flask --app {module} readiness "
        "--tag system --format json"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PRODREADY_"))}
    environ.update(env, PYTHONPATH=str(project))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    body = json.loads(done.stdout)
    [finding] = [f for f in body["findings"] if f["id"] == "system.fd_limit"]
    assert finding["message"].startswith(
        "The soft open-file limit (RLIMIT_NOFILE) is 512, below the 1024 this process may need"
    )


class TestAudit:
    def env(self, tmp_path: Path, args: list[str]) -> dict[str, str]:
        return {
            "TEST_UPLOAD_FOLDER": str(tmp_path),
            "TEST_BACKUP_PATH": str(tmp_path),
            "TEST_AUDIT_ARGS": json.dumps(args),
            # The audit needs more than the default 2 s: raised for the command only.
            "FLASK_PRODREADY_CHECK_TIMEOUT": "60",
        }

    def test_vulnerable_package_fails_the_gate(self, project: Path, tmp_path: Path) -> None:
        """--audit --tag dependencies with the OSV stub: the advisory is named, exit 1."""
        reqs = requirements(tmp_path, "flask==0.12", "itsdangerous==2.2.0")
        module = write_app(project, "auditapp")
        with OsvStub() as osv:
            env = self.env(tmp_path, audit_args(osv.url, reqs))
            args = ("--audit", "--tag", "dependencies")
            as_json = readiness(project, module, *args, "--format", "json", env=env)
            as_text = readiness(project, module, *args, env=env)
        assert as_json.returncode == 1, as_json.stdout + as_json.stderr
        body = json.loads(as_json.stdout)
        assert result_of(body, "dependencies.vulnerable") == "fail"
        [finding] = body["findings"]
        assert finding["id"] == "dependencies.vulnerable"
        assert "CVE-2018-1000656" in finding["message"]
        assert "GHSA-5wv5-4vpf-pj6m" in finding["message"]
        assert as_text.returncode == 1
        assert "flask 0.12 has the known vulnerability CVE-2018-1000656" in as_text.stdout

    def test_unreachable_service_is_skipped_never_passed(
        self, project: Path, tmp_path: Path, closed_port: int
    ) -> None:
        """With the OSV service unreachable the check is skipped with pip-audit's reason, and
        the run asked for the audit: unknown, exit 2, whatever the area's other check says."""
        reqs = requirements(tmp_path, "flask==0.12")
        url = f"http://127.0.0.1:{closed_port}/v1/query"
        module = write_app(project, "auditapp")
        env = self.env(tmp_path, audit_args(url, reqs))
        args = ("--audit", "--tag", "dependencies", "--format", "json")
        done = readiness(project, module, *args, env=env)
        body = json.loads(done.stdout)
        outcome = check_of(body, "dependencies.vulnerable")
        assert outcome["result"] == "skipped", outcome
        assert outcome["reason"].startswith("pip-audit could not audit (exit 1): ")
        assert "Connection refused" in outcome["reason"]
        assert body["status"] == "unknown"
        assert done.returncode == 2

    def test_without_audit_it_says_how_to_ask(self, project: Path, tmp_path: Path) -> None:
        """Without --audit, dependencies.vulnerable is skipped with how to run it; the audit
        was not asked for, so the run is judged by the area's other check."""
        module = write_app(project, "auditapp")
        env = self.env(tmp_path, [])
        done = readiness(project, module, "--tag", "dependencies", "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] != "unknown"
        outcome = check_of(json.loads(done.stdout), "dependencies.vulnerable")
        assert (outcome["result"], outcome["reason"]) == (
            "skipped",
            "run `flask readiness --audit` to audit dependencies",
        )
