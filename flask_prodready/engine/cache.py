"""A short-lived report cache where concurrent callers share one run.

Without it, twenty monitors polling ``/_readiness`` at once would run every database
check twenty times: the readiness endpoint would become the load it warns about.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import replace

from .findings import Report

#: Distinct selections (tag/exclude combinations) kept at once; the oldest go first.
MAX_ENTRIES = 64


class ReportCache:
    """Reuse a report for ``ttl`` seconds; while one is being built, others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Report]] = {}
        self._inflight: dict[Hashable, Future[Report]] = {}
        self.runs = 0  # how many reports were actually built (for tests and benchmarks)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def fresh(self, key: Hashable) -> Report | None:
        """The cached report for ``key`` if it is still fresh, else ``None`` (never builds).

        One dictionary read, atomic without the lock: a hit is the common case.
        """
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def get_or_build(
        self,
        key: Hashable,
        ttl: float,
        build: Callable[[], Report],
        wait: float | Callable[[], float],
    ) -> Report:
        """The cached report for ``key``, the one being built, or a new one from ``build``.

        ``wait`` bounds how long a follower waits for the leader's run.
        """
        with self._lock:
            hit = self.fresh(key)  # again under the lock: it may have been stored meanwhile
            if hit is not None:
                return hit  # the same marked copy for every hit
            future = self._inflight.get(key)
            leader = future is None
            if future is None:
                future = Future()
                self._inflight[key] = future
                self.runs += 1
        if not leader:
            limit = wait() if callable(wait) else wait
            return replace(future.result(timeout=limit), cached=True)

        try:
            report = build()
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            future.set_exception(exc)
            raise
        # Store and release in one step, so no caller sees neither the entry nor the run.
        with self._lock:
            self._inflight.pop(key, None)
            if ttl > 0:
                # Marked once here, so a hit is a dictionary lookup (and renderers can
                # recognise the very same object to reuse what they rendered).
                self._entries[key] = (time.monotonic() + ttl, replace(report, cached=True))
                self._evict(time.monotonic())
        future.set_result(report)
        return report

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > MAX_ENTRIES:
            oldest = min(self._entries, key=lambda k: self._entries[k][0])
            del self._entries[oldest]
