"""The threads that run checks, kept between reports.

Starting a thread costs more than most checks take, and ``Thread.start`` waits until the
new thread holds the GIL: with fifty checks, the last would start many milliseconds after
the first, while a check waiting on a database needs the GIL at every step of its
connection. Idle threads wait here for the next check instead, and a new thread is
started only when none is idle, so a check that hangs never delays another. A thread
idle for :data:`IDLE_SECONDS` ends; a forked child (gunicorn's workers) starts empty.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

#: Seconds a thread waits for another check before it ends.
IDLE_SECONDS = 60.0
#: Name of a thread while it waits for work.
IDLE_NAME = "prodready:idle"


class CheckThreads:
    """An unbounded pool of daemon threads: ``submit`` never waits for a busy one.

    Daemon threads, unlike :class:`concurrent.futures.ThreadPoolExecutor`'s, so that a
    check hanging on a dead server cannot keep the interpreter from exiting.
    """

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._reset()
        if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork either
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._tasks: deque[tuple[str, Callable[[], None]]] = deque()
        self._idle = 0  # threads waiting, minus tasks queued for them
        self._threads = 0

    @property
    def busy(self) -> int:
        """Threads running a check now (hung ones included)."""
        with self._lock:
            return self._threads - self._idle - len(self._tasks)

    @property
    def threads(self) -> int:
        with self._lock:
            return self._threads

    def submit(self, name: str, task: Callable[[], None]) -> None:
        """Run ``task`` (which must not raise) in an idle thread, or in a new one named
        ``name``; the thread carries ``name`` while it runs the task."""
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._tasks.append((name, task))
                self._work.notify()
                return
            self._threads += 1
        try:
            threading.Thread(target=self._serve, args=(name, task), name=name, daemon=True).start()
        except BaseException:
            with self._lock:
                self._threads -= 1
            raise

    def _serve(self, name: str, task: Callable[[], None]) -> None:
        me = threading.current_thread()
        work: tuple[str, Callable[[], None]] | None = (name, task)
        try:
            while work is not None:
                me.name = work[0]
                work[1]()
                me.name = IDLE_NAME
                work = self._next()
        finally:
            with self._lock:
                self._threads -= 1

    def _next(self) -> tuple[str, Callable[[], None]] | None:
        """The next task, or ``None`` after waiting ``idle_seconds`` for one."""
        with self._work:
            self._idle += 1
            until = time.monotonic() + self.idle_seconds
            while not self._tasks:
                left = until - time.monotonic()
                if left <= 0:
                    # Nothing was queued for this thread: every queued task was taken.
                    self._idle -= 1
                    return None
                self._work.wait(left)
            return self._tasks.popleft()


#: The check threads of this process, shared by every app and front end.
CHECK_THREADS = CheckThreads()
