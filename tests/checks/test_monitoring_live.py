"""What the running app says about itself: error records, server errors, health polls, and
log files that never rotate.

The live checks read the app's own traffic record (the one the middleware writes), fed
here with real requests through the app's WSGI stack and real log records; the server's
start time is the test process's own (read with psutil).
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.checks import monitoring
from flask_prodready.engine.state import get_state

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]


@pytest.fixture
def crashy(make_app: MakeApp) -> Flask:
    """An app whose /fail logs an error and answers 500 (as an unhandled error would)."""
    app = make_app(PRODREADY_EVIDENCE_WINDOW=900)

    @app.route("/ok")
    def ok() -> str:
        return "ok"

    @app.route("/fail")
    def fail() -> tuple[str, int]:
        logging.getLogger("myapp.views").error("payment provider said no")
        return "sorry", 500

    return app


def hit(app: Flask, ok: int, failing: int = 0, healthz: int = 0) -> None:
    client = app.test_client()
    for _ in range(ok):
        assert client.get("/ok").status_code == 200
    for _ in range(failing):
        assert client.get("/fail").status_code == 500
    for _ in range(healthz):
        assert client.get("/healthz").status_code == 200


class TestErrorsLogged:
    def test_fires_on_error_records_naming_the_loggers(self, crashy: Flask) -> None:
        """5 error records in the window: the count and the logger, never the message."""
        hit(crashy, ok=95, failing=5)
        [(level, message)] = messages_of(crashy, "monitoring.errors_logged", "live")
        assert level == "warning"
        assert message == (
            "5 log records at ERROR or above in the last 900 s, from myapp.views 5: errors "
            "the app reports, which someone should read."
        )
        assert "payment" not in message

    def test_quiet_without_errors(self, crashy: Flask) -> None:
        """A clean run: no finding."""
        hit(crashy, ok=100)
        assert messages_of(crashy, "monitoring.errors_logged", "live") == []

    def test_one_record_is_not_enough(self, crashy: Flask) -> None:
        """One odd error cannot raise a finding."""
        hit(crashy, ok=99, failing=1)
        assert messages_of(crashy, "monitoring.errors_logged", "live") == []

    def test_the_extensions_own_records_do_not_count(self, crashy: Flask) -> None:
        """flask_prodready's own error records (a crashed check) are not the app's."""
        for _ in range(3):
            logging.getLogger("flask_prodready").error("check crashed")
        assert messages_of(crashy, "monitoring.errors_logged", "live") == []

    def test_skipped_from_the_command_line(self, crashy: Flask) -> None:
        """Only the running server knows what it logged."""
        assert outcome_of(crashy, "monitoring.errors_logged", "cli").status.value == "skipped"


class TestServerErrors:
    def test_fires_over_one_percent(self, crashy: Flask) -> None:
        """5 of 100 responses were 500: error, with an example path."""
        hit(crashy, ok=95, failing=5)
        assert messages_of(crashy, "monitoring.server_errors", "live") == [
            (
                "error",
                "5 of 100 responses in the last 900 s were server errors (5xx), more than "
                "1%, for example /fail.",
            )
        ]

    def test_quiet_at_one_percent(self, crashy: Flask) -> None:
        """1 of 200 (0.5%) stays quiet; so do 2 of 200 (exactly 1%)."""
        hit(crashy, ok=198, failing=2)
        assert messages_of(crashy, "monitoring.server_errors", "live") == []

    def test_skipped_below_the_minimum_sample(self, crashy: Flask) -> None:
        """3 responses, 2 of them 500: too few to judge."""
        hit(crashy, ok=1, failing=2)
        outcome = outcome_of(crashy, "monitoring.server_errors", "live")
        assert outcome.status.value == "skipped"


class TestHealthzUnpolled:
    @pytest.fixture
    def app(self, make_app: MakeApp) -> Flask:
        """An app with a one-second window (the test process is older than that)."""
        app = make_app(PRODREADY_EVIDENCE_WINDOW=1)

        @app.route("/ok")
        def ok() -> str:
            return "ok"

        return app

    def test_fires_when_nothing_polls(self, app: Flask) -> None:
        """Up longer than the window, no /healthz request in it: warning."""
        time.sleep(1.1)
        [(level, message)] = messages_of(app, "monitoring.healthz_unpolled", "live")
        assert level == "warning"
        assert message.startswith("The server has been up ")
        assert message.endswith(
            "and nothing requested /healthz in the last 1 s: no uptime monitor or probe is "
            "polling it."
        )

    def test_quiet_once_polled(self, app: Flask) -> None:
        """One /healthz request in the window: quiet."""
        hit(app, ok=0, healthz=1)
        assert messages_of(app, "monitoring.healthz_unpolled", "live") == []

    def test_skipped_for_a_young_server(self, make_app: MakeApp) -> None:
        """A window longer than the process has lived: cannot tell yet."""
        app = make_app(PRODREADY_EVIDENCE_WINDOW=86400)
        outcome = outcome_of(app, "monitoring.healthz_unpolled", "live")
        assert outcome.status.value == "skipped"
        assert "less than the evidence window (86400 s)" in (outcome.reason or "")


@pytest.fixture
def logrotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """logrotate's files, in a folder of the test's own."""
    folder = tmp_path / "logrotate.d"
    folder.mkdir()
    main = tmp_path / "logrotate.conf"
    main.write_text("weekly\nrotate 4\ninclude /etc/logrotate.d\n")
    monkeypatch.setattr(monitoring, "LOGROTATE_FILES", (str(main),))
    monkeypatch.setattr(monitoring, "LOGROTATE_FOLDERS", (str(folder),))
    return folder


@pytest.fixture
def file_logger(tmp_path: Path) -> Iterator[logging.Logger]:
    logger = logging.getLogger("myapp.filelog")
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


class TestLogRotation:
    def test_fires_on_a_plain_file_handler(
        self, make_app: MakeApp, logrotate: Path, file_logger: logging.Logger, tmp_path: Path
    ) -> None:
        """A FileHandler and no logrotate rule: warning naming the logger and the file."""
        path = tmp_path / "app.log"
        file_logger.addHandler(logging.FileHandler(path))
        assert messages_of(make_app(), "monitoring.log_rotation") == [
            (
                "warning",
                f"The logger 'myapp.filelog' writes to {path} with a FileHandler, which never "
                "rotates it, and no logrotate rule names the file: it grows until the disk "
                "is full.",
            )
        ]

    @pytest.mark.parametrize(
        "handler",
        [
            lambda p: logging.handlers.RotatingFileHandler(p, maxBytes=1_000_000, backupCount=3),
            lambda p: logging.handlers.TimedRotatingFileHandler(p, when="midnight"),
            lambda p: logging.handlers.WatchedFileHandler(p),
        ],
        ids=["rotating", "timed", "watched"],
    )
    def test_quiet_with_a_rotating_handler(
        self,
        make_app: MakeApp,
        logrotate: Path,
        file_logger: logging.Logger,
        tmp_path: Path,
        handler: object,
    ) -> None:
        """Rotating, timed-rotating and watched handlers count as rotated."""
        file_logger.addHandler(handler(tmp_path / "app.log"))  # type: ignore[operator]
        assert messages_of(make_app(), "monitoring.log_rotation") == []

    @pytest.mark.parametrize(
        "rule",
        [
            "{folder}/*.log {{\n  daily\n  copytruncate\n}}\n",
            '"{folder}/app.log"\n{{\n  weekly\n}}\n',
        ],
        ids=["glob-same-line", "quoted-next-line"],
    )
    def test_quiet_with_a_logrotate_rule(
        self,
        make_app: MakeApp,
        logrotate: Path,
        file_logger: logging.Logger,
        tmp_path: Path,
        rule: str,
    ) -> None:
        """A plain FileHandler whose file a logrotate rule names (glob or path): quiet."""
        logs = tmp_path / "logs"
        logs.mkdir()
        file_logger.addHandler(logging.FileHandler(logs / "app.log"))
        (logrotate / "myapp").write_text(rule.format(folder=logs))
        assert messages_of(make_app(), "monitoring.log_rotation") == []

    def test_a_rule_for_another_file_does_not_count(
        self, make_app: MakeApp, logrotate: Path, file_logger: logging.Logger, tmp_path: Path
    ) -> None:
        """A rule naming /var/log/other/*.log does not cover the app's file."""
        file_logger.addHandler(logging.FileHandler(tmp_path / "app.log"))
        (logrotate / "other").write_text("/var/log/other/*.log {\n  daily\n}\n")
        assert len(messages_of(make_app(), "monitoring.log_rotation")) == 1


def test_the_traffic_record_is_the_apps(make_app: MakeApp) -> None:
    """Each app counts into its own record (the live checks read get_state(app).traffic)."""
    first, second = make_app(), make_app()
    assert get_state(first).traffic is not get_state(second).traffic
