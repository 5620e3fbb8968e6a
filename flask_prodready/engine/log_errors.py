"""Count the process's log records at ERROR or above, for ``monitoring.errors_logged``.

One handler on the root logger, shared by every app of the process, counts each record
at ERROR or above into the traffic record of each app (:meth:`.TrafficRecord.record_log`):
by logger name only. It never formats a record, so a message (and any secret in it) is
never read, and it costs nothing below WARNING (the logging module checks a handler's
level before calling it).

A handler on the root logger would silence Python's "last resort" output: the stderr
line a record gets when no handler at all is configured. The counter keeps it: when it
is the only handler a record reaches, it hands the record to ``logging.lastResort`` as
the logging module would have. An app whose logging configuration runs after
``init_app`` (``dictConfig`` replaces the root's handlers) removes the counter;
:func:`counting` says so and puts it back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .observation import TrafficRecord


class ErrorRecordCounter(logging.Handler):
    """Counts records at ERROR or above into every watched traffic record.

    Its level is WARNING, the last resort's: a record the last resort would have written
    must reach :meth:`emit` to be handed on (the logging module skips the last resort
    once any handler is found, whatever that handler's level).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: weakref.WeakSet[TrafficRecord] = weakref.WeakSet()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            for traffic in list(self.records):
                with contextlib.suppress(Exception):  # counting must never break logging
                    traffic.record_log(record.name)
        if not _other_handler(record.name, self):
            last = logging.lastResort
            if last is not None and record.levelno >= last.level:
                last.handle(record)


def _other_handler(name: str, counter: logging.Handler) -> bool:
    """Whether a record of logger ``name`` reaches a handler besides ``counter`` (the
    walk ``Logger.callHandlers`` makes, whatever the handlers' levels)."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if any(handler is not counter for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


_COUNTER = ErrorRecordCounter()
_LOCK = threading.Lock()


def watch(traffic: TrafficRecord) -> None:
    """Count this process's error records into ``traffic`` from now on."""
    with _LOCK:
        _COUNTER.records.add(traffic)
        root = logging.getLogger()
        if _COUNTER not in root.handlers:
            root.addHandler(_COUNTER)


def counting(traffic: TrafficRecord) -> bool:
    """Whether error records still reach ``traffic``; when the app's logging setup
    removed the counter since, it is put back (counting from now) and ``False`` is
    returned."""
    with _LOCK:
        root = logging.getLogger()
        present = _COUNTER in root.handlers and traffic in _COUNTER.records
        if not present:
            _COUNTER.records.add(traffic)
            if _COUNTER not in root.handlers:
                root.addHandler(_COUNTER)
        return present
