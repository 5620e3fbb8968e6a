"""The check threads kept between reports: reused when idle, never waited for when busy,
ended when idle too long, and empty in a forked child."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from flask_prodready.workers import IDLE_NAME, CheckThreads


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_an_idle_thread_runs_the_next_task_under_its_name() -> None:
    pool = CheckThreads(idle_seconds=5)
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def task() -> None:
        me = threading.current_thread()
        seen.append((me.name, me.ident or 0))
        done.set()

    pool.submit("prodready:first", task)
    assert done.wait(5)
    assert _until(lambda: pool.busy == 0)
    done.clear()
    pool.submit("prodready:second", task)
    assert done.wait(5)
    assert [name for name, _ in seen] == ["prodready:first", "prodready:second"]
    assert seen[0][1] == seen[1][1]  # the same thread, reused
    assert pool.threads == 1
    assert _until(lambda: any(t.name == IDLE_NAME for t in threading.enumerate()))


def test_a_busy_thread_is_never_waited_for() -> None:
    """A task that hangs holds its thread; the next task gets a new one at once."""
    pool = CheckThreads(idle_seconds=5)
    release = threading.Event()
    ran = threading.Event()

    def hangs() -> None:
        release.wait(10)

    pool.submit("prodready:hangs", hangs)
    assert _until(lambda: pool.busy == 1)
    pool.submit("prodready:quick", ran.set)
    try:
        assert ran.wait(2)
        assert pool.threads == 2
        assert _until(lambda: pool.busy == 1)  # the hung one only
    finally:
        release.set()
    assert _until(lambda: pool.busy == 0)


def test_threads_idle_too_long_end() -> None:
    pool = CheckThreads(idle_seconds=0.05)
    done = threading.Event()

    def nap() -> None:
        time.sleep(0.05)
        done.set()

    for number in range(3):
        pool.submit(f"prodready:{number}", nap)
    assert pool.threads == 3  # none was idle when each was submitted
    assert done.wait(5)
    assert _until(lambda: pool.threads == 0)
    assert pool.busy == 0


def test_many_tasks_at_once_all_run_and_the_books_balance() -> None:
    pool = CheckThreads(idle_seconds=0.2)
    counter = []
    lock = threading.Lock()

    def task() -> None:
        with lock:
            counter.append(1)

    for round_number in range(20):
        for number in range(25):
            pool.submit(f"prodready:{round_number}.{number}", task)
        time.sleep(0.01)
    assert _until(lambda: len(counter) == 500)
    assert _until(lambda: pool.busy == 0)
    assert _until(lambda: pool.threads == 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_without_threads() -> None:
    """gunicorn forks workers from a master that may have run checks (preload_app)."""
    pool = CheckThreads(idle_seconds=5)
    done = threading.Event()
    pool.submit("prodready:parent", done.set)
    assert done.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it has, run one task, and leave
        ran = threading.Event()
        counts = f"{pool.threads} {pool.busy}"
        pool.submit("prodready:child", ran.set)
        os.write(write, f"{counts} {ran.wait(5)}".encode())
        os._exit(0)
    os.close(write)
    try:
        answer = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert answer == "0 0 True"
    assert pool.threads == 1
