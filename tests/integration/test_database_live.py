"""The database checks as users meet them: `flask readiness` on a real project, and
`/healthz` and `/_readiness` under real gunicorn while PostgreSQL stops, starts again, or
its host accepts connections and never answers.

The project (tests/postgres.py) has one model, a migrations folder made by `flask db init`
and `flask db migrate`, and takes its configuration from the environment.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ..postgres import (
    HOST,
    PostgresServer,
    make_project,
    project_environment,
    run_project,
    running_postgres,
    wait_until,
)
from ..support import TOKEN, result_of
from .processes import fetch, gunicorn

DATABASE_IDS = {
    "database.unreachable",
    "database.sqlite",
    "database.pool_budget",
    "database.pre_ping",
    "database.connect_timeout",
    "database.superuser",
    "database.migrations",
}
#: The check timeout the live apps run with, and the margin SPEC §8 allows /healthz.
CHECK_TIMEOUT = 1.0
MARGIN = 1.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def gunicorn_environment(project: Path, config: dict[str, Any]) -> dict[str, str]:
    env = project_environment(project, config)
    return {"DBAPP_CONFIG": env["DBAPP_CONFIG"], "PYTHONPATH": env["PYTHONPATH"]}


def timed_healthz(port: int) -> tuple[int, float]:
    started = time.monotonic()
    answer = fetch(port, "/healthz", timeout=CHECK_TIMEOUT + 10)
    return answer.status, time.monotonic() - started


@pytest.mark.integration
def test_cli_reports_a_careless_database_setup(
    postgres: PostgresServer, pg_database: str, migrations_template: Path, tmp_path: Path
) -> None:
    """A careless setup gives the five database findings; unreachable passes."""
    # Superuser, pools of 40 + 20 for 4 workers, no pre-ping, no connect timeout, and the
    # migrations folder's revision never applied.
    project = make_project(tmp_path / "careless", migrations_template)
    config = {
        "SQLALCHEMY_DATABASE_URI": postgres.url(postgres.superuser, pg_database),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 40, "max_overflow": 20},
    }
    done = run_project(
        project, "readiness", "--format", "json", config=config, extra={"WEB_CONCURRENCY": "4"}
    )

    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    found = {f["id"]: f["level"] for f in body["findings"] if f["id"].startswith("database.")}
    assert found == {
        "database.superuser": "error",
        "database.pool_budget": "error",
        "database.pre_ping": "warning",
        "database.connect_timeout": "warning",
        "database.migrations": "error",
    }
    assert result_of(body, "database.unreachable") == "pass"
    assert postgres.superuser.password not in done.stdout + done.stderr


@pytest.mark.integration
def test_cli_passes_a_careful_database_setup(
    postgres: PostgresServer, pg_database: str, migrations_template: Path, tmp_path: Path
) -> None:
    """A careful, migrated setup passes every database check; `--tag database` exits 0."""
    # The least-privilege role, pools of 5 + 5, pre-ping, a 2 s connect timeout, and
    # `flask db upgrade` run by the role itself.
    project = make_project(tmp_path / "careful", migrations_template)
    config = {
        "SQLALCHEMY_DATABASE_URI": postgres.url(postgres.owner, pg_database),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_size": 5,
            "max_overflow": 5,
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": 2},
        },
    }
    upgrade = run_project(project, "db", "upgrade", config=config)
    assert upgrade.returncode == 0, upgrade.stderr
    workers = {"WEB_CONCURRENCY": "4"}

    done = run_project(project, "readiness", "--format", "json", config=config, extra=workers)
    body = json.loads(done.stdout)
    assert [f for f in body["findings"] if f["id"].startswith("database.")] == []
    assert {cid: result_of(body, cid) for cid in DATABASE_IDS} == dict.fromkeys(
        DATABASE_IDS, "pass"
    )

    tagged = run_project(project, "readiness", "--tag", "database", config=config, extra=workers)
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr


@pytest.mark.integration
def test_healthz_follows_postgresql_down_and_up(tmp_path: Path) -> None:
    """/healthz and /_readiness turn 503 when PostgreSQL stops and recover when it is back."""
    with running_postgres("live") as server:  # its own cluster: this test stops it
        database = server.create_database()
        project = make_project(tmp_path / "live")
        config = {
            "SQLALCHEMY_DATABASE_URI": server.url(server.owner, database),
            "PRODREADY_HEALTHZ_CHECKS": ["database.unreachable"],
            "PRODREADY_CACHE_SECONDS": 0,
            "PRODREADY_CHECK_TIMEOUT": CHECK_TIMEOUT,
        }
        env = gunicorn_environment(project, config)
        with gunicorn(project, "dbapp:create_app()", ["-w", "2"], env=env) as port:
            assert wait_until(lambda: fetch(port, "/ping").status == 200, 15)
            assert [fetch(port, "/healthz").status for _ in range(4)] == [200] * 4

            server.stop()
            for _ in range(4):  # both workers, whichever answers
                status, elapsed = timed_healthz(port)
                assert (status, elapsed < CHECK_TIMEOUT + MARGIN) == (503, True), elapsed
            readiness = fetch(port, "/_readiness", headers=AUTH)
            assert readiness.status == 503
            report = readiness.json()
            [finding] = [f for f in report["findings"] if f["id"] == "database.unreachable"]
            assert finding["level"] == "critical"
            assert "cannot be reached" in finding["message"]
            assert server.owner.password not in readiness.body.decode()

            server.start()
            assert wait_until(
                lambda: [fetch(port, "/healthz").status for _ in range(4)] == [200] * 4, 15
            )
            body = fetch(port, "/_readiness", headers=AUTH).json()
            assert result_of(body, "database.unreachable") == "pass"
            # Judged from the running gunicorn's settings: 2 sync workers x 1 connection.
            assert result_of(body, "database.pool_budget") == "pass"


@pytest.mark.integration
def test_silent_database_host_does_not_hang_the_app(
    tmp_path: Path, blackhole: tuple[str, int]
) -> None:
    """A silent DB host: /healthz is 503 on time, other routes answer, threads stay bounded."""
    # No connect timeout configured: only the check's own bound stands between a probe
    # and the operating system's. Every "prodready:database.*" thread is counted: the
    # check and its one connection attempt make two; a pile-up would make more.
    password = "silent-host-password-0123456789"
    project = make_project(tmp_path / "silent")
    config = {
        "SQLALCHEMY_DATABASE_URI": (
            f"postgresql+psycopg://app:{password}@{HOST}:{blackhole[1]}/app"
        ),
        "PRODREADY_HEALTHZ_CHECKS": ["database.unreachable"],
        "PRODREADY_CACHE_SECONDS": 0,
        "PRODREADY_CHECK_TIMEOUT": CHECK_TIMEOUT,
    }
    env = gunicorn_environment(project, config)
    with gunicorn(project, "dbapp:create_app()", ["-w", "1", "--threads", "4"], env=env) as port:
        assert wait_until(lambda: fetch(port, "/ping").status == 200, 15)
        probes: list[tuple[int, float]] = []
        prober = threading.Thread(
            target=lambda: probes.extend(timed_healthz(port) for _ in range(5)), daemon=True
        )
        prober.start()
        pings: list[tuple[int, float]] = []
        threads: list[int] = []
        deadline = time.monotonic() + 5 * (CHECK_TIMEOUT + MARGIN) + 5
        while prober.is_alive() and time.monotonic() < deadline:
            started = time.monotonic()
            pings.append((fetch(port, "/ping").status, time.monotonic() - started))
            threads.append(int(fetch(port, "/threads").body))
            time.sleep(0.05)
        prober.join(timeout=5)

        assert len(probes) == 5
        assert all(status == 503 for status, _ in probes), probes
        assert max(elapsed for _, elapsed in probes) < CHECK_TIMEOUT + MARGIN, probes
        assert len(pings) > 5
        assert all(status == 200 for status, _ in pings)
        assert max(elapsed for _, elapsed in pings) < 0.5, pings
        assert max(threads) <= 2, threads

        readiness = fetch(port, "/_readiness", headers=AUTH)
        report = readiness.json()
        [finding] = [f for f in report["findings"] if f["id"] == "database.unreachable"]
        assert finding["message"].startswith("The default database (postgresql://127.0.0.1:")
        assert password not in readiness.body.decode()
