"""monitoring.*: a real sentry-sdk client (DSN on a closed loopback port) and real loggers."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from flask import Flask
from flask.logging import default_handler

from flask_prodready.checks import monitoring

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
InitSentry = Callable[..., str]

#: Variables sentry-sdk reads when an option is not given.
SENTRY_VARIABLES = (
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "HEROKU_BUILD_COMMIT",
    "HEROKU_SLUG_COMMIT",
    "SOURCE_VERSION",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "CIRCLE_SHA1",
    "GAE_DEPLOYMENT_ID",
    "K_REVISION",
)


def _expected_sentry_warning(warning: warnings.WarningMessage) -> bool:
    """sentry-sdk releases with data_collection deprecate send_default_pii, the option
    monitoring.sentry_pii judges; that is the only warning init may give here."""
    return issubclass(warning.category, DeprecationWarning) and "send_default_pii" in str(
        warning.message
    )


@pytest.fixture
def init_sentry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``init_sentry(**options)`` initialises the real SDK with a DSN whose host is a closed
    loopback port and returns the DSN's key; at the end the client is closed and a
    non-recording client put back, so no other test sees it."""
    for name in SENTRY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no git checkout: sentry-sdk finds no release by itself
    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))  # bound, never listening: nothing can be sent

    def init(*, with_dsn: bool = True, **options: Any) -> str:
        key = secrets.token_hex(16)
        dsn = f"http://{key}@127.0.0.1:{port_holder.getsockname()[1]}/42" if with_dsn else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sentry_sdk.init(dsn=dsn, default_integrations=False, **options)
        unexpected = [w for w in caught if not _expected_sentry_warning(w)]
        assert not unexpected, [str(w.message) for w in unexpected]
        return key

    try:
        yield init
    finally:
        sentry_sdk.get_client().close(timeout=1)
        sentry_sdk.get_global_scope().set_client(None)
        port_holder.close()


def supports_data_collection() -> bool:
    return "data_collection" in getattr(sentry_sdk.consts, "DEFAULT_OPTIONS", {})


#: The end of monitoring.error_tracking's Sentry messages.
NO_OTHER_TRACKER = (
    "no other tracker is active either (Rollbar, Bugsnag, Raygun, Honeybadger, Airbrake, an "
    "OpenTelemetry exporter looked for)."
)


class TestErrorTrackingWithSentry:
    def test_fires_without_a_client(self, make_app: MakeApp) -> None:
        """sentry-sdk imported but never initialised, no other tracker: a warning."""
        assert not sentry_sdk.get_client().is_active()
        assert messages_of(make_app(), "monitoring.error_tracking") == [
            (
                "warning",
                "No active Sentry client: sentry_sdk.init() has not run in this process, so "
                f"errors are not reported; {NO_OTHER_TRACKER}",
            )
        ]

    def test_fires_when_sentry_sdk_is_not_installed(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without sentry-sdk there is certainly no Sentry: a finding, not a skip."""
        monkeypatch.setitem(sys.modules, "sentry_sdk", None)
        outcome = outcome_of(make_app(), "monitoring.error_tracking")
        assert [(f.level.value, f.message) for f in outcome.findings] == [
            (
                "warning",
                "No error tracker is active in this process (looked for Sentry, Rollbar, "
                "Bugsnag, Raygun, Honeybadger, Airbrake, an OpenTelemetry exporter; sentry-sdk "
                "is not installed): errors in production reach no error tracker.",
            )
        ]
        assert "pip install 'flask-prodready[sentry]'" in outcome.findings[0].hint

    def test_skipped_with_sentry_sdk_1(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sentry-sdk 1.x (no get_client) cannot be read: skipped, naming the version."""
        old = types.ModuleType("sentry_sdk")
        old.VERSION = "1.45.0"  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "sentry_sdk", old)
        outcome = outcome_of(make_app(), "monitoring.error_tracking")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "sentry-sdk 1.45.0 is older than 2.0, the first these checks can read",
        )

    def test_fires_without_a_dsn(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """sentry_sdk.init() without a DSN sends nothing: reported."""
        init_sentry(with_dsn=False)
        assert messages_of(make_app(), "monitoring.error_tracking") == [
            (
                "warning",
                "sentry_sdk.init() ran without a DSN (no dsn= and no SENTRY_DSN), so nothing is "
                f"sent to Sentry; {NO_OTHER_TRACKER}",
            )
        ]

    def test_quiet_with_a_client(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """An active client with a DSN: no finding."""
        init_sentry(environment="staging", release="1.0")
        assert messages_of(make_app(), "monitoring.error_tracking") == []


class TestSentryPii:
    def test_fires_on_send_default_pii(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """send_default_pii=True is a warning."""
        init_sentry(send_default_pii=True)
        assert messages_of(make_app(), "monitoring.sentry_pii") == [
            (
                "warning",
                "Sentry's send_default_pii is on: events carry users' IP addresses, ids, "
                "cookies and request headers.",
            )
        ]

    def test_fires_on_data_collection_with_user_info(
        self, make_app: MakeApp, init_sentry: InitSentry
    ) -> None:
        """With sentry-sdk's data_collection, user_info (on by default) is the PII switch."""
        if not supports_data_collection():
            pytest.skip("this sentry-sdk has no data_collection option")
        init_sentry(data_collection={})
        assert messages_of(make_app(), "monitoring.sentry_pii") == [
            (
                "warning",
                "Sentry's data_collection sends user information (user_info is on, its default "
                "once data_collection is given): events carry users' IP addresses, ids and "
                "e-mail addresses.",
            )
        ]

    def test_quiet_by_default(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """The SDK's default (no PII): no finding."""
        init_sentry()
        assert messages_of(make_app(), "monitoring.sentry_pii") == []

    def test_quiet_with_user_info_off(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """data_collection with user_info=False: no finding."""
        if not supports_data_collection():
            pytest.skip("this sentry-sdk has no data_collection option")
        init_sentry(data_collection={"user_info": False})
        assert messages_of(make_app(), "monitoring.sentry_pii") == []

    def test_skipped_without_a_client(self, make_app: MakeApp) -> None:
        """No client: nothing to judge, skipped (error_tracking reports the absence)."""
        outcome = outcome_of(make_app(), "monitoring.sentry_pii")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "no active Sentry client to judge (monitoring.error_tracking reports a missing "
            "error tracker)",
        )

    def test_skipped_when_not_installed(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without sentry-sdk: skipped, naming the extra to install."""
        monkeypatch.setitem(sys.modules, "sentry_sdk", None)
        outcome = outcome_of(make_app(), "monitoring.sentry_pii")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "sentry-sdk is not installed (pip install 'flask-prodready[sentry]')",
        )


class TestSentryEnvironment:
    def test_fires_without_environment_and_release(
        self, make_app: MakeApp, init_sentry: InitSentry
    ) -> None:
        """Neither given on a development config: the fallback 'production' and the
        missing release, each reported."""
        init_sentry()
        assert messages_of(
            make_app(FLASK_CONFIG="development"), "monitoring.sentry_environment"
        ) == [
            (
                "info",
                "Sentry's environment is 'production' (given, or the SDK's fallback), but "
                "FLASK_CONFIG='development' in the config names a non-production environment: "
                "its events are filed as production.",
            ),
            (
                "info",
                "Sentry has no release (no release=, no SENTRY_RELEASE, no git commit to read): "
                "errors cannot be tied to the deploy that introduced them.",
            ),
        ]

    def test_fires_on_an_empty_environment(
        self, make_app: MakeApp, init_sentry: InitSentry
    ) -> None:
        """environment='' is no environment."""
        init_sentry(environment="", release="1.0")
        assert messages_of(make_app(), "monitoring.sentry_environment") == [
            ("info", "Sentry has no environment: events from every deploy are filed together.")
        ]

    def test_quiet_with_both(self, make_app: MakeApp, init_sentry: InitSentry) -> None:
        """environment= and release= given: no finding."""
        init_sentry(environment="staging", release="2026.11.27")
        assert messages_of(make_app(), "monitoring.sentry_environment") == []

    def test_quiet_with_explicit_production_and_release(
        self, make_app: MakeApp, init_sentry: InitSentry
    ) -> None:
        """sentry_sdk.init(environment="production", release="1.2.3"): no finding."""
        init_sentry(environment="production", release="1.2.3")
        assert messages_of(make_app(), "monitoring.sentry_environment") == []

    def test_quiet_with_the_fallback_on_a_production_config(
        self, make_app: MakeApp, init_sentry: InitSentry
    ) -> None:
        """The SDK's own 'production' on an app whose config names production: no finding."""
        init_sentry(release="1.2.3")
        assert (
            messages_of(make_app(FLASK_CONFIG="production"), "monitoring.sentry_environment") == []
        )

    def test_quiet_with_the_variables(
        self, make_app: MakeApp, init_sentry: InitSentry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SENTRY_ENVIRONMENT=production and SENTRY_RELEASE count as set."""
        monkeypatch.setenv("SENTRY_ENVIRONMENT", "production")
        monkeypatch.setenv("SENTRY_RELEASE", "abc123")
        init_sentry()
        assert messages_of(make_app(), "monitoring.sentry_environment") == []


class TestDsnNeverShown:
    def test_not_in_any_readiness_format(
        self, make_app: MakeApp, init_sentry: InitSentry, auth: dict[str, str]
    ) -> None:
        """The DSN given to sentry_sdk.init() (not in the config) appears in no HTTP output."""
        key = init_sentry(send_default_pii=True)
        app = make_app()
        client = app.test_client()
        for query in ("format=json", "format=html", "tag=monitoring&format=json"):
            response = client.get(f"/_readiness?{query}", headers=auth)
            body = response.get_data(as_text=True)
            assert "monitoring.sentry_pii" in body
            assert key not in body


@pytest.fixture
def app_logger(make_app: MakeApp) -> Iterator[logging.Logger]:
    """The test app's logger, put back as it was afterwards (loggers are process-wide)."""
    logger = make_app().logger
    saved = (logger.level, list(logger.handlers), logger.propagate)
    try:
        yield logger
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]


def only_flask_default_handler(logger: logging.Logger) -> None:
    """INFO, and Flask's default stderr handler alone (pytest adds handlers to the root)."""
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [default_handler]
    logger.propagate = False


@contextlib.contextmanager
def stderr_to(path: str) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` for a moment (a real redirection)."""
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(target)
        os.close(saved)


@pytest.fixture
def no_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing says a supervisor collects stderr (this machine may be a container)."""
    for name in (*monitoring.SUPERVISOR_VARIABLES, "SERVER_SOFTWARE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(monitoring, "CONTAINER_MARKER_FILES", ())


class TestLogging:
    def test_fires_at_debug(self, make_app: MakeApp, app_logger: logging.Logger) -> None:
        """An app logger at DEBUG is a warning."""
        app_logger.setLevel(logging.DEBUG)
        assert messages_of(make_app(), "monitoring.logging") == [
            (
                "warning",
                "The app logger 'testapp' logs at DEBUG (its effective level): debug records can "
                "carry request data and secrets, and their volume buries what matters.",
            )
        ]

    def test_quiet_at_info(self, make_app: MakeApp, app_logger: logging.Logger) -> None:
        """INFO with Flask's default handler, judged from the CLI: no finding."""
        app_logger.setLevel(logging.INFO)
        assert messages_of(make_app(), "monitoring.logging") == []

    def test_fires_when_every_handler_is_a_null_handler(
        self, make_app: MakeApp, app_logger: logging.Logger
    ) -> None:
        """Records that reach only NullHandlers are dropped: a warning."""
        app_logger.setLevel(logging.INFO)
        app_logger.handlers[:] = [logging.NullHandler()]
        app_logger.propagate = False
        assert messages_of(make_app(), "monitoring.logging") == [
            (
                "warning",
                "Every handler of the app logger 'testapp' is a NullHandler: its records are "
                "dropped.",
            )
        ]

    @pytest.mark.usefixtures("no_supervisor")
    def test_info_when_stderr_goes_nowhere(
        self, make_app: MakeApp, app_logger: logging.Logger
    ) -> None:
        """Live, only Flask's default handler, stderr is /dev/null and no supervisor: an info
        finding."""
        only_flask_default_handler(app_logger)
        with stderr_to(os.devnull):
            findings = messages_of(make_app(), "monitoring.logging", "live")
        assert findings == [
            (
                "info",
                "The app logger 'testapp' writes only to stderr, which is /dev/null, and no "
                "supervisor (systemd, a container, gunicorn) collects it: the log is gone when "
                "the process ends.",
            )
        ]

    @pytest.mark.usefixtures("no_supervisor")
    def test_quiet_when_stderr_goes_to_a_file(
        self, make_app: MakeApp, app_logger: logging.Logger, tmp_path: Path
    ) -> None:
        """Live, stderr redirected to a file: it is kept, no finding."""
        only_flask_default_handler(app_logger)
        with stderr_to(str(tmp_path / "stderr.log")):
            assert messages_of(make_app(), "monitoring.logging", "live") == []

    @pytest.mark.parametrize(
        ("variable", "software"),
        [("INVOCATION_ID", None), ("JOURNAL_STREAM", None), (None, "gunicorn/23.0.0")],
    )
    @pytest.mark.usefixtures("no_supervisor")
    def test_quiet_under_a_supervisor(
        self,
        make_app: MakeApp,
        app_logger: logging.Logger,
        monkeypatch: pytest.MonkeyPatch,
        variable: str | None,
        software: str | None,
    ) -> None:
        """stderr under systemd/journald or gunicorn is collected, even if it looks lost."""
        only_flask_default_handler(app_logger)
        if variable is not None:
            monkeypatch.setenv(variable, "8:12345")
        with stderr_to(os.devnull):
            found = messages_of(make_app(), "monitoring.logging", "live", server_software=software)
        assert found == []

    @pytest.mark.usefixtures("no_supervisor")
    def test_quiet_with_a_file_handler(
        self, make_app: MakeApp, app_logger: logging.Logger, tmp_path: Path
    ) -> None:
        """A FileHandler survives the process, wherever stderr goes."""
        only_flask_default_handler(app_logger)
        handler = logging.FileHandler(tmp_path / "app.log", delay=True)
        app_logger.addHandler(handler)
        try:
            with stderr_to(os.devnull):
                assert messages_of(make_app(), "monitoring.logging", "live") == []
        finally:
            handler.close()


def test_import_does_not_import_sentry_or_psutil() -> None:
    """The monitoring and system checks import their libraries only when they run."""
    import subprocess

    code = (
        "import sys, flask_prodready.checks.monitoring, flask_prodready.checks.system, "
        "flask_prodready.checks.dependencies; "
        "print(sorted({'sentry_sdk', 'psutil', 'pip_audit'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
