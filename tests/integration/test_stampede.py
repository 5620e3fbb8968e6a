"""Concurrent requests to /_readiness share one run of the checks (SPEC §8): twenty at
once to one gunicorn gthread worker with twenty threads, while a check takes a second."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .fault_app import (
    AUTH,
    SLOW_CHECK_SECONDS,
    TARGET,
    fault_app_environment,
    write_fault_app,
)
from .processes import fetch, gunicorn

pytestmark = pytest.mark.integration

REQUESTS = 20
CHECK_TIMEOUT = 2.0
#: What an answer may take beyond the check timeout (SPEC §8: "plus a small margin").
MARGIN = 2.0


def test_twenty_concurrent_requests_share_one_run(tmp_path: Path) -> None:
    """Twenty requests at once all get the report within the check timeout plus 2 s, and
    the slow check ran once."""
    runs = write_fault_app(tmp_path)
    env = fault_app_environment(
        tmp_path, {"PRODREADY_CHECK_TIMEOUT": CHECK_TIMEOUT, "PRODREADY_CACHE_SECONDS": 30}
    )
    args = ["-k", "gthread", "-w", "1", "--threads", str(REQUESTS)]
    with gunicorn(tmp_path, TARGET, args, env=env) as port:
        assert fetch(port, "/ping").status == 200  # the worker has loaded the app
        barrier = threading.Barrier(REQUESTS)
        answers: list[tuple[int, bool, float]] = []

        def ask() -> None:
            barrier.wait(timeout=10)
            started = time.monotonic()
            answer = fetch(port, "/_readiness?tag=stampede", headers=AUTH, timeout=15)
            answers.append((answer.status, answer.json()["cached"], time.monotonic() - started))

        clients = [threading.Thread(target=ask) for _ in range(REQUESTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=30)

    assert len(answers) == REQUESTS
    assert [status for status, _, _ in answers] == [200] * REQUESTS
    assert runs.read_text().splitlines() == ["run"]
    assert sorted(cached for _, cached, _ in answers) == [False] + [True] * (REQUESTS - 1)
    slowest = max(elapsed for _, _, elapsed in answers)
    assert SLOW_CHECK_SECONDS <= slowest < CHECK_TIMEOUT + MARGIN, answers
