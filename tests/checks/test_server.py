"""server.*: the server process and gunicorn's settings (unit level; real gunicorn and
`flask run` are in tests/integration/test_live_runtime.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.engine.server import GunicornSettings, available_cpus, load_gunicorn_config

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]


def gunicorn_file(tmp_path: Path, body: str) -> GunicornSettings:
    """Settings read from a real gunicorn config file by gunicorn's own loader."""
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(body)
    return load_gunicorn_config(str(path))


class TestDevServer:
    def test_fires_under_werkzeug(self, make_app: MakeApp) -> None:
        """A report served through Werkzeug's development server is critical."""
        app = make_app()
        assert messages_of(app, "server.dev_server", "live", server_software="Werkzeug/3.1.3") == [
            (
                "critical",
                "The app is served by the Werkzeug development server (Werkzeug/3.1.3): single "
                "process, not hardened, not meant for production traffic.",
            )
        ]

    def test_quiet_under_gunicorn(self, make_app: MakeApp) -> None:
        """gunicorn is not the development server."""
        app = make_app()
        assert messages_of(app, "server.dev_server", "live", server_software="gunicorn/23.0") == []

    def test_skipped_from_the_cli(self, make_app: MakeApp) -> None:
        """From the CLI nothing serves the app: skipped, not passed."""
        assert outcome_of(make_app(), "server.dev_server").status.value == "skipped"


class TestRoot:
    def test_fires_as_root(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """A server process with uid 0 is an error."""
        monkeypatch.setattr("flask_prodready.checks.server.os.geteuid", lambda: 0)
        [(level, message)] = messages_of(make_app(), "server.root", "live")
        assert level == "error"
        assert message.endswith("runs as root: a code-execution bug owns the whole host.")

    def test_quiet_as_a_user(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unprivileged uid passes."""
        monkeypatch.setattr("flask_prodready.checks.server.os.geteuid", lambda: 1000)
        assert messages_of(make_app(), "server.root", "live") == []


class TestGunicornChecks:
    def test_bad_file_fires_bind_workers_timeout(self, make_app: MakeApp, tmp_path: Path) -> None:
        """bind 0.0.0.0, 1 worker and timeout 0 in a gunicorn file are each reported."""
        settings = gunicorn_file(tmp_path, "bind = '0.0.0.0:8000'\nworkers = 1\ntimeout = 0\n")
        app = make_app()
        cpus = available_cpus()
        assert messages_of(app, "server.bind_public", gunicorn=settings) == [
            (
                "warning",
                "gunicorn binds to all interfaces (0.0.0.0:8000, from gunicorn.conf.py): clients "
                "can bypass the proxy and its TLS, limits and headers.",
            )
        ]
        assert messages_of(app, "server.workers", gunicorn=settings) == [
            (
                "warning",
                "gunicorn runs 1 worker (from gunicorn.conf.py): one slow or crashed request "
                f"stalls the whole app; {cpus} CPUs on this machine suggest {2 * cpus + 1}.",
            )
        ]
        assert messages_of(app, "server.timeout", gunicorn=settings) == [
            (
                "warning",
                "gunicorn's timeout is 0 (from gunicorn.conf.py): a stuck request holds its "
                "worker forever.",
            )
        ]

    def test_good_file_is_quiet(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Loopback bind, a fitting worker count, timeout 30, max_requests with jitter pass."""
        workers = 2 * available_cpus() + 1
        settings = gunicorn_file(
            tmp_path,
            f"bind = '127.0.0.1:8000'\nworkers = {workers}\ntimeout = 30\n"
            "max_requests = 1000\nmax_requests_jitter = 100\n",
        )
        app = make_app()
        for check_id in (
            "server.bind_public",
            "server.workers",
            "server.timeout",
            "server.max_requests_jitter",
        ):
            assert messages_of(app, check_id, gunicorn=settings) == [], check_id

    def test_far_too_many_workers_and_long_timeout(self, make_app: MakeApp, tmp_path: Path) -> None:
        """Far more workers than CPUs, and a timeout over 120 s, are reported."""
        workers = 2 * (2 * available_cpus() + 1) + 1
        settings = gunicorn_file(tmp_path, f"workers = {workers}\ntimeout = 300\n")
        app = make_app()
        [(_, workers_message)] = messages_of(app, "server.workers", gunicorn=settings)
        assert workers_message.startswith(f"gunicorn runs {workers} workers")
        [(_, timeout_message)] = messages_of(app, "server.timeout", gunicorn=settings)
        assert "timeout is 300 s" in timeout_message

    def test_max_requests_without_jitter(self, make_app: MakeApp, tmp_path: Path) -> None:
        """max_requests without jitter is info."""
        settings = gunicorn_file(tmp_path, "max_requests = 500\n")
        assert messages_of(make_app(), "server.max_requests_jitter", gunicorn=settings) == [
            (
                "info",
                "gunicorn restarts workers every 500 requests without jitter (from "
                "gunicorn.conf.py): they tend to restart together.",
            )
        ]

    @pytest.mark.parametrize("bind", ["[::]:8000", ":8000", "0.0.0.0", "tcp://0.0.0.0:8000"])
    def test_every_all_interfaces_form(self, make_app: MakeApp, tmp_path: Path, bind: str) -> None:
        """Every way of saying 'all interfaces' is public."""
        settings = gunicorn_file(tmp_path, f"bind = {bind!r}\n")
        assert len(messages_of(make_app(), "server.bind_public", gunicorn=settings)) == 1

    def test_unix_socket_is_quiet(self, make_app: MakeApp, tmp_path: Path) -> None:
        """A unix socket behind the proxy passes."""
        settings = gunicorn_file(tmp_path, "bind = 'unix:/run/app.sock'\n")
        assert messages_of(make_app(), "server.bind_public", gunicorn=settings) == []

    def test_web_concurrency_counts_as_gunicorn_does(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """WEB_CONCURRENCY sets the worker count when the file does not."""
        monkeypatch.setenv("WEB_CONCURRENCY", "4")
        path = tmp_path / "empty.conf.py"
        path.write_text("timeout = 30\n")
        # gunicorn reads WEB_CONCURRENCY when its config module is first imported; the
        # loader must see the variable as gunicorn would at start-up.
        import subprocess
        import sys

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from flask_prodready.engine.server import load_gunicorn_config as l;"
                f"print(l({str(path)!r}).workers)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert done.stdout.strip() == "4"

    def test_skips_without_settings(self, make_app: MakeApp) -> None:
        """Without --gunicorn-config the CLI skips, saying how to judge."""
        outcome = outcome_of(make_app(), "server.workers")
        assert (outcome.status.value, outcome.reason) == (
            "skipped",
            "pass --gunicorn-config FILE to judge gunicorn's settings from the command line",
        )

    def test_bad_gunicorn_file_is_one_clear_error(self, tmp_path: Path) -> None:
        """A gunicorn file with a bad value raises ValueError naming it, with no output."""
        with pytest.raises(ValueError, match="Invalid value for workers: lots"):
            gunicorn_file(tmp_path, "workers = 'lots'\n")
