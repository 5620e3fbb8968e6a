"""monitoring.error_tracking: any active error tracker counts, not only Sentry.

Rollbar and Bugsnag are the real libraries, initialised with an endpoint on a closed
loopback port; nothing is reported, so nothing is sent. Their process-wide state is put
back after each test.
"""

from __future__ import annotations

import copy
import importlib
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_prodready.engine.state import get_state

from ..support import messages_of

MakeApp = Callable[..., Flask]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: nothing can be delivered to it."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.fixture
def no_sentry(monkeypatch: pytest.MonkeyPatch) -> None:
    """sentry-sdk as if not installed, so only the other trackers can count."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)


@pytest.fixture
def rollbar(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real rollbar module, its settings and initialised flag restored afterwards."""
    with warnings.catch_warnings():
        # rollbar imports the cgi module, deprecated since Python 3.11.
        warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
        module = importlib.import_module("rollbar")
    monkeypatch.setattr(module, "SETTINGS", copy.deepcopy(module.SETTINGS))
    monkeypatch.setattr(module, "_initialized", False)
    return module


@pytest.fixture
def bugsnag(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real bugsnag module; its default client's key and its excepthooks put back."""
    module = importlib.import_module("bugsnag")
    configuration = module.legacy.configuration
    monkeypatch.setattr(configuration, "api_key", configuration.api_key)
    try:
        yield module
    finally:
        module.legacy.default_client.uninstall_sys_hook()


class TestErrorTracking:
    def test_fires_without_any_tracker(self, make_app: MakeApp, no_sentry: None) -> None:
        """No Sentry and no other tracker initialised: a warning naming what was looked for."""
        assert messages_of(make_app(), "monitoring.error_tracking") == [
            (
                "warning",
                "No error tracker is active in this process (looked for Sentry, Rollbar, "
                "Bugsnag, Raygun, Honeybadger, Airbrake, an OpenTelemetry exporter; sentry-sdk "
                "is not installed): errors in production reach no error tracker.",
            )
        ]

    def test_quiet_with_rollbar(
        self, make_app: MakeApp, no_sentry: None, rollbar: Any, closed_port: int
    ) -> None:
        """rollbar.init() with an access token and no Sentry: no finding."""
        rollbar.init(
            "0123456789abcdef0123456789abcdef",
            environment="production",
            endpoint=f"http://127.0.0.1:{closed_port}/api/1/",
            handler="blocking",
            allow_logging_basic_config=False,
        )
        assert messages_of(make_app(), "monitoring.error_tracking") == []

    def test_fires_with_rollbar_imported_but_not_initialised(
        self, make_app: MakeApp, no_sentry: None, rollbar: Any
    ) -> None:
        """Importing rollbar is not reporting to it: the finding stays."""
        assert len(messages_of(make_app(), "monitoring.error_tracking")) == 1

    def test_fires_with_rollbar_disabled(
        self, make_app: MakeApp, no_sentry: None, rollbar: Any, closed_port: int
    ) -> None:
        """rollbar.init(..., enabled=False) reports nothing: the finding stays."""
        rollbar.init(
            "0123456789abcdef0123456789abcdef",
            endpoint=f"http://127.0.0.1:{closed_port}/api/1/",
            handler="blocking",
            allow_logging_basic_config=False,
            enabled=False,
        )
        assert len(messages_of(make_app(), "monitoring.error_tracking")) == 1

    def test_quiet_with_bugsnag(
        self, make_app: MakeApp, no_sentry: None, bugsnag: Any, closed_port: int
    ) -> None:
        """bugsnag.configure(api_key=...) and no Sentry: no finding."""
        bugsnag.configure(
            api_key="0123456789abcdef0123456789abcdef",
            endpoint=f"http://127.0.0.1:{closed_port}",
            session_endpoint=f"http://127.0.0.1:{closed_port}",
            auto_capture_sessions=False,
        )
        assert messages_of(make_app(), "monitoring.error_tracking") == []

    def test_fires_with_bugsnag_outside_its_release_stages(
        self, make_app: MakeApp, no_sentry: None, bugsnag: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A Bugsnag key whose release stage is not one it notifies in sends nothing."""
        configuration = bugsnag.legacy.configuration
        monkeypatch.setattr(configuration, "notify_release_stages", ["production"])
        monkeypatch.setattr(configuration, "release_stage", "development")
        monkeypatch.setattr(configuration, "api_key", "0123456789abcdef0123456789abcdef")
        assert len(messages_of(make_app(), "monitoring.error_tracking")) == 1


class TestFormerId:
    def test_silenced_by_the_former_id(self, make_app: MakeApp, no_sentry: None) -> None:
        """PRODREADY_SILENCED naming monitoring.sentry_missing silences the finding."""
        app = make_app(PRODREADY_SILENCED={"monitoring.sentry_missing": "errors go to journald"})
        report = get_state(app).build_report(app, mode="cli")
        findings = [f for f in report.findings if f.id == "monitoring.error_tracking"]
        assert [f.silenced for f in findings] == [True]

    def test_excluded_by_the_former_id(self, make_app: MakeApp, no_sentry: None) -> None:
        """--exclude monitoring.sentry_missing leaves monitoring.error_tracking out."""
        app = make_app()
        report = get_state(app).build_report(app, mode="cli", exclude=["monitoring.sentry_missing"])
        assert "monitoring.error_tracking" not in report.outcomes
