"""The process-wide counter of error log records: counts by logger name, never reads a
message, and leaves Python's own logging behaviour as it was."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine import log_errors
from flask_prodready.engine.evidence import Evidence
from flask_prodready.engine.observation import TrafficRecord
from flask_prodready.engine.state import get_state


def counted(record: TrafficRecord) -> dict[str, int]:
    return dict(Evidence.merge(record.buckets(), window=record.window).logged_errors)


@pytest.fixture
def traffic() -> Iterator[TrafficRecord]:
    record = TrafficRecord()
    log_errors.watch(record)
    yield record
    log_errors._COUNTER.records.discard(record)


def test_records_at_error_and_above_are_counted_by_logger(traffic: TrafficRecord) -> None:
    """ERROR and CRITICAL count under their logger's name; WARNING and below do not."""
    logging.getLogger("myapp.jobs").error("failed")
    logging.getLogger("myapp.jobs").critical("down")
    logging.getLogger("myapp.jobs").warning("slow")
    logging.getLogger("other").info("fine")
    assert counted(traffic) == {"myapp.jobs": 2}


def test_the_message_is_never_formatted(traffic: TrafficRecord) -> None:
    """A record whose message cannot even be formatted is counted without being read (the
    counter is handed the record directly: the test run's own log capture formats)."""

    class Exploding:
        def __str__(self) -> str:
            raise AssertionError("the counter read the message")

    record = logging.LogRecord("myapp", logging.ERROR, __file__, 1, "%s", (Exploding(),), None)
    log_errors._COUNTER.handle(record)
    assert counted(traffic) == {"myapp": 1}


def test_records_of_loggers_that_do_not_propagate_are_not_seen(traffic: TrafficRecord) -> None:
    """A logger with propagate=False keeps its records from the root, and so from the count."""
    quiet = logging.getLogger("myapp.private")
    quiet.propagate = False
    try:
        quiet.error("kept to itself")
    finally:
        quiet.propagate = True
    assert counted(traffic) == {}


def test_an_app_counts_its_unhandled_exceptions() -> None:
    """Flask logs an unhandled exception at ERROR on app.logger: it is counted for the app."""
    app = Flask("crashy")
    app.config.update(SECRET_KEY="k" * 40)
    ProdReady(app)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("no")

    assert app.test_client().get("/boom").status_code == 500
    assert counted(get_state(app).traffic) == {"crashy": 1}


def test_a_removed_counter_is_put_back_and_says_so(traffic: TrafficRecord) -> None:
    """dictConfig after init_app drops the root's handlers: counting() reports it once and
    puts the counter back."""
    root = logging.getLogger()
    root.removeHandler(log_errors._COUNTER)
    assert log_errors.counting(traffic) is False
    assert log_errors._COUNTER in root.handlers
    assert log_errors.counting(traffic) is True


LAST_RESORT = """
import logging
from flask import Flask
from flask_prodready import ProdReady

app = Flask("plain")
app.config.update(SECRET_KEY="k" * 40)
ProdReady(app)
logging.getLogger("plain.jobs").error("seen on stderr")
logging.getLogger("plain.jobs").warning("also seen")
logging.getLogger("plain.jobs").info("not seen")
"""


def test_python_last_resort_output_is_kept() -> None:
    """With no logging configured, a record still reaches stderr through Python's last
    resort handler, as it did before the counter was installed."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LAST_RESORT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr == "seen on stderr\nalso seen\n"


CONFIGURED = """
import logging, sys
logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
from flask import Flask
from flask_prodready import ProdReady

app = Flask("plain")
app.config.update(SECRET_KEY="k" * 40)
ProdReady(app)
logging.getLogger("plain.jobs").error("once")
"""


def test_a_configured_handler_gets_each_record_once() -> None:
    """With a handler configured, the last resort stays silent and the record is written
    once, by that handler."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CONFIGURED)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "ERROR once\n"
    assert done.stderr == ""
