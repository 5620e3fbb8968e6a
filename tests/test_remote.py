"""Remote mode (SPEC §6): `prodready --url` and `flask readiness --url` run as users run
them, against a stub server on loopback that answers what each test needs; and the §5
body read back into a report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.cli import FORMATS
from flask_prodready.engine.context import CheckContext
from flask_prodready.engine.findings import Report
from flask_prodready.engine.state import get_state
from flask_prodready.remote.reader import report_from_dict

from .integration.processes import free_port
from .stacks import needs_click_82
from .stub_server import Canned, StubServer
from .support import TOKEN, check_of, result_of

BIN = Path(sys.executable).parent
HEALTH_JSON = {"Content-Type": "application/health+json"}
JSON = {"Content-Type": "application/json"}
HTTP_SKIP = "the URL is http://, not https://: no certificate and no https:// site to judge"


def run(
    command: str, *args: str, token: str | None = TOKEN, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``prodready ARGS`` (or ``flask readiness ARGS``) like a user, without app code."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PRODREADY_"))}
    if token is not None:
        environ["PRODREADY_TOKEN"] = token
    environ.update(env or {})
    argv = [str(BIN / "prodready")] if command == "prodready" else [str(BIN / "flask"), "readiness"]
    done = subprocess.run(
        [*argv, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    if token is not None:
        assert token not in done.stdout + done.stderr
    return done


def prodready(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run("prodready", *args, **kwargs)


def live_report(app: Flask, **kwargs: Any) -> Report:
    """A report of ``app`` as the server would build it for ``/_readiness``."""
    return get_state(app).build_report(
        app, mode="live", server_software="gunicorn/23.0.0", **kwargs
    )


def body_of(report: Report) -> bytes:
    return json.dumps(report.to_dict()).encode()


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that exited 2 without output."""
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


class TestReportFromDict:
    def test_round_trip(self, make_app: Callable[..., Flask]) -> None:
        """A report's §5 body read back gives the same body: findings, checks, summary."""
        app = make_app(DEBUG=True, SECRET_KEY="dev", PRODREADY_SILENCED={"config.debug": "ok"})
        report = live_report(app)
        assert report_from_dict(json.loads(body_of(report))).to_dict() == report.to_dict()

    def test_engine_findings_go_back_to_their_check(self, make_app: Callable[..., Flask]) -> None:
        """A crash finding returns to the outcome of the check that crashed."""
        ext = ProdReady()

        @ext.check("demo.crash", title="Crashes")
        def crash(ctx: CheckContext) -> None:
            raise RuntimeError("boom")

        report = live_report(make_app(ext), tags=["demo"])
        read = report_from_dict(json.loads(body_of(report)))
        outcome = read.outcomes["demo.crash"]
        assert (outcome.status.value, outcome.reason) == ("error", "raised RuntimeError")
        assert [f.id for f in outcome.findings] == ["prodready.check_crashed"]
        assert read.summary() == report.summary()

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ([], "the body is not a JSON object"),
            ({"status": "pass"}, "the report has no 'findings'"),
            (
                {"findings": [{"id": "a.b", "level": "fatal", "message": "m"}]},
                "finding 'a.b': unknown level 'fatal': expected one of critical, error, "
                "warning, info",
            ),
            (
                {"findings": [], "checks": {"a.b": {"status": "warn"}}, "worker": {}},
                "'worker' has no 'pid'",
            ),
            (
                {
                    "findings": [],
                    "checks": {"a.b": {"status": "warn"}},
                    "worker": {"pid": 1, "hostname": "h", "server": None},
                    "generated_at": "2026-11-27T10:00:00Z",
                },
                "checks['a.b']: unknown status 'warn'",
            ),
        ],
    )
    def test_not_a_report(self, body: Any, message: str) -> None:
        """Anything that is not a §5 body raises ValueError naming what is wrong."""
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            report_from_dict(body)
        assert str(caught.value) == message


class TestFetch:
    def test_sends_the_token_and_the_selection(self, make_app: Callable[..., Flask]) -> None:
        """A base URL gets /_readiness; --tag/--exclude become tag=/exclude=; the JSON is the
        server's body with mode remote, exit 1 on its errors."""
        report = live_report(make_app(DEBUG=True), tags=["config"], exclude=["config.testing"])
        answer = Canned(503, body_of(report), HEALTH_JSON)
        with StubServer(answer) as server:
            done = prodready(
                *("--url", f"http://127.0.0.1:{server.port}", "--format", "json"),
                *("--tag", "config", "--exclude", "config.testing"),
            )
        assert done.returncode == 1, done.stderr
        [seen] = server.requests
        assert seen.path == "/_readiness?tag=config&exclude=config.testing"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["Accept"] == "application/health+json, application/json;q=0.9"
        assert json.loads(done.stdout) == {**report.to_dict(), "mode": "remote"}

    def test_adds_the_tls_checks(self, make_app: Callable[..., Flask]) -> None:
        """Without --tag the tls checks run here; on an http:// URL both skip, saying why."""
        report = live_report(make_app())
        assert report.outcomes["tls.http_redirect"].reason == (
            "can only judge from a remote client, not here"
        )
        with StubServer(Canned(200, body_of(report), HEALTH_JSON)) as server:
            done = prodready(
                "--url", f"http://127.0.0.1:{server.port}/_readiness", "--format", "json"
            )
        body = json.loads(done.stdout)
        for check_id in ("tls.certificate_expiry", "tls.http_redirect"):
            assert (result_of(body, check_id), check_of(body, check_id)["reason"]) == (
                "skipped",
                HTTP_SKIP,
            )
        assert done.returncode == 0, done.stderr

    def test_text_and_fail_level(self, make_app: Callable[..., Flask]) -> None:
        """Text for people; the exit code follows --fail-level, as for flask readiness."""
        report = live_report(make_app(MAX_CONTENT_LENGTH=None), tags=["config"])
        assert report.status.value == "warn"
        with StubServer(Canned(200, body_of(report), HEALTH_JSON)) as server:
            url = f"http://127.0.0.1:{server.port}/_readiness"
            text = prodready("--url", url, "--tag", "config")
            gate = prodready("--url", url, "--tag", "config", "--fail-level", "warning")
        assert text.returncode == 0
        head = text.stdout.splitlines()[0]
        assert head.startswith(" WARN   flask-prodready · mode remote · pid ")
        assert "config.max_content_length" in text.stdout
        assert gate.returncode == 1

    @pytest.mark.parametrize("output_format", FORMATS)
    def test_every_format_of_flask_readiness(
        self, make_app: Callable[..., Flask], output_format: str
    ) -> None:
        """Every --format flask readiness knows works remotely too, with the same exit code."""
        report = live_report(make_app(DEBUG=True), tags=["config"])
        with StubServer(Canned(503, body_of(report), HEALTH_JSON)) as server:
            url = f"http://127.0.0.1:{server.port}/_readiness"
            done = prodready("--url", url, "--tag", "config", "--format", output_format.upper())
        assert done.returncode == 1, done.stderr
        assert "config.debug" in done.stdout

    def test_flask_readiness_url_needs_no_app(
        self, make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`flask readiness --url` in a folder without any app prints what prodready prints."""
        monkeypatch.chdir(tmp_path)
        report = live_report(make_app(DEBUG=True), tags=["config"])
        with StubServer(Canned(503, body_of(report), HEALTH_JSON)) as server:
            args = ("--url", f"http://127.0.0.1:{server.port}/", "--tag", "config")
            flask = run("flask", *args, "--format", "json")
            script = prodready(*args, "--format", "json")
        assert flask.returncode == script.returncode == 1
        assert json.loads(flask.stdout) == json.loads(script.stdout)

    def test_token_from_another_variable(self, make_app: Callable[..., Flask]) -> None:
        """--token-env NAME reads the token from NAME; PRODREADY_TOKEN is not needed."""
        report = live_report(make_app(), tags=["cookies"])
        with StubServer(Canned(200, body_of(report), HEALTH_JSON)) as server:
            done = prodready(
                *("--url", f"http://127.0.0.1:{server.port}/_readiness", "--tag", "cookies"),
                *("--token-env", "STAGING_READINESS_TOKEN"),
                token=None,
                env={"STAGING_READINESS_TOKEN": TOKEN},
            )
        assert done.returncode == 0, done.stderr
        assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in done.stdout + done.stderr


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class TestAnswersThatAreNotAReport:
    @pytest.mark.parametrize(
        ("answer", "said"),
        [
            (
                Canned(
                    401, _error("a valid 'Authorization: Bearer <token>' header is required"), JSON
                ),
                "answered 401: the token in PRODREADY_TOKEN was refused (set PRODREADY_TOKEN or "
                "--token-env NAME to the server's token)",
            ),
            (
                Canned(404, _error("not found"), JSON),
                "answered 404: no readiness report there (is PRODREADY_TOKEN set on the "
                "server, and is the path its PRODREADY_READINESS_PATH?)",
            ),
            (Canned(400, _error("unknown tag 'nope'"), JSON), "answered 400: unknown tag 'nope'"),
            (
                Canned(503, _error("the report could not be built; see the server log"), JSON),
                "answered 503: the report could not be built; see the server log",
            ),
            (
                Canned(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
                "answered 502 Bad Gateway with text/html, not a readiness report",
            ),
            (
                Canned(200, b"<p>welcome</p>", {"Content-Type": "text/html; charset=utf-8"}),
                "answered 200 OK with text/html, not a readiness report",
            ),
            (
                Canned(200, b'{"status": "pass"}', HEALTH_JSON),
                "answered 200 with JSON that is not a readiness report: the report has no "
                "'findings'",
            ),
            (
                Canned(301, headers={"Location": "https://127.0.0.1:8443/_readiness"}),
                "answered 301, a redirect to https://127.0.0.1:8443/_readiness: not followed, "
                "so the token goes nowhere else; use the final URL",
            ),
        ],
        ids=["401", "404", "400", "503", "502", "html", "json", "redirect"],
    )
    def test_one_line_and_exit_2(self, answer: Canned, said: str) -> None:
        """Each answer that is not a report: exit 2, one line naming the URL and what it
        answered, no traceback, no token; a redirect is not followed."""
        with StubServer(answer) as server:
            done = prodready("--url", f"http://127.0.0.1:{server.port}/_readiness")
        assert one_line(done) == f"Error: http://127.0.0.1:{server.port}/_readiness {said}"
        assert len(server.requests) == 1

    def test_closed_port(self) -> None:
        """Nothing listening: exit 2 and one line."""
        port = free_port()
        done = prodready("--url", f"http://127.0.0.1:{port}/_readiness")
        assert one_line(done) == f"Error: could not connect to 127.0.0.1:{port}: connection refused"

    def test_slow_answer_times_out(self, make_app: Callable[..., Flask]) -> None:
        """An answer slower than --timeout: exit 2 and one line naming the timeout."""
        with StubServer(Canned(200, b"{}", HEALTH_JSON, delay=5)) as server:
            done = prodready("--url", f"http://127.0.0.1:{server.port}/", "--timeout", "0.5")
        assert one_line(done) == (
            f"Error: http://127.0.0.1:{server.port}/_readiness did not answer within 0.5 s "
            "(--timeout)"
        )

    def test_plain_http_port_asked_for_https(self) -> None:
        """https:// to a plain-HTTP server: the TLS error in one line, with a hint."""
        with StubServer(Canned(200)) as server:
            done = prodready("--url", f"https://127.0.0.1:{server.port}/")
        assert one_line(done) == (
            f"Error: TLS handshake with 127.0.0.1:{server.port} failed: WRONG_VERSION_NUMBER "
            "(is it a plain http:// server?)"
        )


class TestUsage:
    @pytest.mark.parametrize(
        ("args", "env", "said"),
        [
            (
                [],
                {},
                "Error: --url is required: the URL of a live instance's report, like "
                "https://host/_readiness",
            ),
            (
                ["--url", "http://127.0.0.1:9/"],
                {"PRODREADY_TOKEN": ""},
                "Error: no token: PRODREADY_TOKEN is not set or empty; set it to the server's "
                "PRODREADY_TOKEN (or name another variable with --token-env NAME)",
            ),
            (
                ["--url", "http://127.0.0.1:9/", "--token-env", "MY_TOKEN"],
                {},
                "Error: no token: MY_TOKEN is not set or empty; set it to the server's "
                "PRODREADY_TOKEN",
            ),
            (
                ["--url", "http://127.0.0.1:9/", "--token-env", TOKEN],
                {},
                "Error: no token: the variable named by --token-env is not set or empty; set "
                "it to the server's PRODREADY_TOKEN",
            ),
            (
                ["--url", f"http://127.0.0.1:9/_readiness?token={TOKEN}"],
                {},
                "Error: --url must not have a query string or fragment: narrow the report with "
                "--tag and --exclude (the token comes from the environment)",
            ),
            (
                ["--url", f"https://ops:{TOKEN}@127.0.0.1:9/"],
                {},
                "Error: --url must not carry a user or password (user:password@host): the "
                "token comes from the environment (PRODREADY_TOKEN or --token-env NAME)",
            ),
            (
                ["--url", "ftp://127.0.0.1/"],
                {},
                "Error: --url must be a full http:// or https:// URL, like https://host/_readiness",
            ),
            (
                ["--url", "127.0.0.1:8000"],
                {},
                "Error: --url must be a full http:// or https:// URL, like https://host/_readiness",
            ),
            (
                ["--url", "http://127.0.0.1:9/", "--timeout", "0"],
                {},
                "Error: --timeout must be a number of seconds > 0 and at most 120",
            ),
            (
                ["--url", "http://127.0.0.1:9/", "--timeout", "nan"],
                {},
                "Error: --timeout must be a number of seconds > 0 and at most 120",
            ),
            (
                ["--url", "http://127.0.0.1:9/", "--format", "xml"],
                {},
                "Error: Invalid value for '--format': 'xml' is not one of "
                + ", ".join(repr(name) for name in FORMATS)
                + ".",
            ),
            pytest.param(
                ["--url", "http://127.0.0.1:9/", "--gunicorn-config", "g.py"],
                {},
                "Error: No such option '--gunicorn-config'.",
                marks=needs_click_82,
            ),
        ],
    )
    def test_usage_errors(self, args: list[str], env: dict[str, str], said: str) -> None:
        """Bad options: exit 2, one line, never the token (even pasted where it does not go)."""
        assert one_line(prodready(*args, env=env)) == said

    @pytest.mark.parametrize(
        ("args", "said"),
        [
            (["--url", "http://127.0.0.1:9/", "--audit"], "--audit is about the local app"),
            (["--url", "http://127.0.0.1:9/", "--list"], "--list is about the local app"),
            (["--timeout", "3"], "--timeout only applies with --url URL (remote mode)"),
            (["--token-env", "MY_TOKEN"], "--token-env only applies with --url URL"),
        ],
    )
    def test_flask_readiness_remote_options(
        self, args: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """flask readiness refuses local-only options with --url, and remote ones without it,
        before looking for an app."""
        monkeypatch.chdir(tmp_path)
        assert one_line(run("flask", *args)).startswith(f"Error: {said}")
