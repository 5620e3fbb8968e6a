"""Faults under real gunicorn (SPEC §8): a crashing and a hanging check, a check that keeps
hanging across many uncached runs, PostgreSQL stopped and started again under load, and
requests a server refuses before the app sees them.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..postgres import make_project, project_environment, running_postgres, wait_until
from ..support import TOKEN
from .fault_app import AUTH, TARGET, fault_app_environment, worker_threads, write_fault_app
from .processes import HOST, fetch, gunicorn

pytestmark = pytest.mark.integration

GTHREAD = ["-k", "gthread", "-w", "1", "--threads", "4", "--graceful-timeout", "5"]


def test_crash_and_hang_break_neither_the_report_nor_the_routes(tmp_path: Path) -> None:
    """While a report with a crashing and a hanging check is built, the app's routes and
    /healthz answer at once; the report arrives on time, names both, and carries no
    traceback in JSON or HTML."""
    write_fault_app(tmp_path)
    env = fault_app_environment(
        tmp_path, {"PRODREADY_CHECK_TIMEOUT": 1.0, "PRODREADY_CACHE_SECONDS": 0}
    )
    with gunicorn(tmp_path, TARGET, GTHREAD, env=env) as port:
        assert fetch(port, "/ping").status == 200
        reports: list[tuple[int, str, float]] = []

        def ask(fmt: str) -> None:
            started = time.monotonic()
            answer = fetch(port, f"/_readiness?format={fmt}", headers=AUTH, timeout=15)
            reports.append((answer.status, answer.body.decode(), time.monotonic() - started))

        askers = [threading.Thread(target=ask, args=(fmt,)) for fmt in ("json", "html")]
        for asker in askers:
            asker.start()
        pings: list[tuple[int, float]] = []
        while any(asker.is_alive() for asker in askers) and len(pings) < 2000:
            started = time.monotonic()
            status = fetch(port, "/ping").status
            pings.append((status, time.monotonic() - started))
            assert fetch(port, "/healthz").status == 200
        for asker in askers:
            asker.join(timeout=15)

    assert len(pings) >= 3
    assert {status for status, _ in pings} == {200}
    assert max(elapsed for _, elapsed in pings) < 0.5, pings
    assert len(reports) == 2
    for status, body, elapsed in reports:
        assert status == 503
        assert elapsed < 1.0 + 1.5
        assert "check faults.crashes raised ConnectionResetError" in body
        assert "check faults.hangs did not finish within 1 s" in body
        assert "config.debug" in body  # the other checks are there
        assert "Traceback" not in body
        assert 'File "' not in body


def test_hanging_check_does_not_pile_up_threads(tmp_path: Path) -> None:
    """Thirty uncached reports while a check keeps hanging: the worker's thread count stays
    within three of its count before, and the check is never started again."""
    write_fault_app(tmp_path)
    env = fault_app_environment(
        tmp_path, {"PRODREADY_CHECK_TIMEOUT": 0.1, "PRODREADY_CACHE_SECONDS": 0}
    )
    with gunicorn(tmp_path, TARGET, GTHREAD, env=env) as port:
        # Fill the worker's thread pool first, so that its growth is not counted.
        warmers = [threading.Thread(target=fetch, args=(port, "/ping")) for _ in range(8)]
        for warmer in warmers:
            warmer.start()
        for warmer in warmers:
            warmer.join(timeout=10)
        pid = int(fetch(port, "/pid").body)
        baseline = worker_threads(pid)
        counts: list[int] = []
        messages: list[str] = []
        for _ in range(30):
            answer = fetch(port, "/_readiness?tag=faults", headers=AUTH)
            assert answer.status == 503
            [timeout] = [
                f for f in answer.json()["findings"] if f["id"] == "prodready.check_timeout"
            ]
            messages.append(timeout["message"])
            counts.append(worker_threads(pid))
        assert int(fetch(port, "/pid").body) == pid  # the same worker all along

    assert max(counts) <= baseline + 3, (baseline, counts)
    assert messages[0] == "check faults.hangs did not finish within 0.1 s"
    assert all("still running from an earlier report" in m for m in messages[1:]), messages


@dataclass(frozen=True)
class WrkResult:
    """What wrk said about one run."""

    requests: int
    non_2xx: int
    socket_errors: int
    output: str


def run_wrk(port: int, path: str, seconds: int) -> subprocess.Popen[str]:
    """wrk with one thread and four connections for at most ``seconds`` on
    127.0.0.1:``port``; :func:`wrk_result` may end it sooner."""
    return subprocess.Popen(
        [
            *("wrk", "-t1", "-c4", f"-d{seconds}s", "--timeout", "5s"),
            f"http://{HOST}:{port}{path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk_result(process: subprocess.Popen[str]) -> WrkResult:
    """Stop wrk by its PID (SIGINT: it prints its summary) and read what it says."""
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output
    requests = re.search(r"(\d+) requests in", output)
    assert requests is not None, output
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(requests.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        output=output,
    )


@pytest.fixture
def wrk_installed() -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: apt-get install -y wrk (.ci/run installs it)")


@pytest.mark.usefixtures("wrk_installed")
def test_postgresql_stopped_and_started_under_load(tmp_path: Path) -> None:
    """Under wrk load on a route that does not touch the database, PostgreSQL stops and
    starts again: the route never fails, /healthz turns 503 and back to 200, and the
    same worker serves throughout."""
    with running_postgres("faults") as server:  # its own cluster: this test stops it
        database = server.create_database()
        project = make_project(tmp_path / "dbapp")
        config = {
            "SQLALCHEMY_DATABASE_URI": server.url(server.owner, database),
            "PRODREADY_HEALTHZ_CHECKS": ["database.unreachable"],
            "PRODREADY_CACHE_SECONDS": 0,
            "PRODREADY_CHECK_TIMEOUT": 1.0,
        }
        env = project_environment(project, config)
        env = {"DBAPP_CONFIG": env["DBAPP_CONFIG"], "PYTHONPATH": env["PYTHONPATH"]}
        args = ["-k", "gthread", "-w", "1", "--threads", "8"]
        with gunicorn(project, "dbapp:create_app()", args, env=env) as port:
            assert wait_until(lambda: fetch(port, "/healthz").status == 200, 15)
            pid = fetch(port, "/_readiness", headers=AUTH).json()["worker"]["pid"]
            load = run_wrk(port, "/ping", seconds=30)  # stopped once PostgreSQL is back
            polls: list[int] = []
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set() and len(polls) < 1000:
                    polls.append(fetch(port, "/healthz", timeout=10).status)
                    stop.wait(0.1)

            poller = threading.Thread(target=poll)
            poller.start()
            try:
                time.sleep(1.0)
                server.stop()
                down = wait_until(lambda: bool(polls) and polls[-1] == 503, 10)
                server.start()
                up = wait_until(lambda: bool(polls) and polls[-1] == 200, 15)
                time.sleep(0.5)  # load goes on a little after the recovery
            finally:
                stop.set()
                poller.join(timeout=15)
                result = wrk_result(load)
            assert fetch(port, "/_readiness", headers=AUTH).json()["worker"]["pid"] == pid

    assert (down, up) == (True, True), polls
    first_503 = polls.index(503)
    assert 200 in polls[:first_503]
    assert 200 in polls[first_503:]
    assert set(polls) == {200, 503}
    assert result.requests > 100, result.output
    assert (result.non_2xx, result.socket_errors) == (0, 0), result.output


def raw_request(port: int, request: bytes) -> int:
    """Send ``request`` as is and return the status code of the answer."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert match is not None, head[:200]
    return int(match.group(1))


def test_what_gunicorn_refuses_and_what_reaches_the_app(tmp_path: Path) -> None:
    """Under gunicorn a 64 KiB Authorization header is refused by the server (400 or 431),
    a long wrong one reaches the app and is 401, raw bytes that are not UTF-8 in the
    query string are 400: never 200, never 500."""
    write_fault_app(tmp_path)
    env = fault_app_environment(tmp_path, {})
    with gunicorn(tmp_path, TARGET, GTHREAD, env=env) as port:
        huge = fetch(port, "/_readiness", headers={"Authorization": "Bearer " + "x" * 65536})
        assert huge.status in {400, 431}
        wrong = fetch(port, "/_readiness", headers={"Authorization": "Bearer " + "x" * 8000})
        assert wrong.status == 401
        token_then_junk = {"Authorization": f"Bearer {TOKEN}" + "x" * 65536}
        assert fetch(port, "/_readiness", headers=token_then_junk).status in {400, 431}
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        for query in (b"tag=\xff", b"\xff=1"):
            request = b"GET /_readiness?" + query + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
            assert raw_request(port, request) == 400
        assert fetch(port, "/ping").status == 200
