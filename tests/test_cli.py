"""`flask readiness` run as users run it: a real `flask --app ...` subprocess (SPEC §6)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .stacks import needs_click_82
from .support import TOKEN, result_of

#: Every id of SPEC §7: ids are public API, so the catalogue must list exactly these.
SPEC_IDS = {
    "config.debug", "config.testing", "config.secret_key_missing", "config.secret_key_weak",
    "config.secret_key_in_source", "config.secret_key_fallbacks", "config.environment",
    "config.max_content_length", "config.preferred_url_scheme", "config.trusted_hosts",
    "config.weak_secret", "cookies.session_secure", "cookies.session_httponly",
    "cookies.session_samesite",
    "cookies.remember_secure", "cookies.observed_insecure", "headers.hsts", "headers.csp",
    "headers.nosniff", "headers.framing", "headers.referrer_policy", "proxy.missing_proxyfix",
    "proxy.no_forwarded_proto", "proxy.scheme_mismatch", "proxy.too_many_hops",
    "server.dev_server", "server.root", "server.bind_public", "server.workers", "server.timeout",
    "server.max_requests_jitter", "server.worker_class", "database.unreachable", "database.sqlite",
    "database.pool_budget", "database.pre_ping", "database.connect_timeout",
    "database.superuser", "database.migrations", "static.served_by_app", "static.upload_folder",
    "monitoring.error_tracking", "monitoring.sentry_pii", "monitoring.sentry_environment",
    "monitoring.logging", "system.disk", "system.memory", "system.fd_limit",
    "dependencies.vulnerable", "backups.stale", "tls.certificate_expiry", "tls.http_redirect",
    "prodready.unknown_silence", "prodready.silence_expired", "prodready.check_crashed",
    "prodready.check_timeout",
    "supervision.unsupervised", "supervision.restart_policy", "supervision.boot",
    "supervision.reload", "supervision.env_file",
    "system.exposed_services", "server.code_writable", "database.credentials_in_source",
    "dependencies.environment",
    "monitoring.errors_logged", "monitoring.server_errors", "monitoring.healthz_unpolled",
    "monitoring.log_rotation",
    "nginx.upstream", "nginx.forwarded_headers", "nginx.static", "nginx.body_size",
    "nginx.server_name", "nginx.invalid",
}  # fmt: skip

BAD_APP = """
from flask import Flask
from flask_prodready import ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(DEBUG=True, SECRET_KEY="dev", SESSION_COOKIE_HTTPONLY=False)
    ProdReady(app)
    return app
"""

GOOD_APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["APP_SECRET_KEY"],
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        PREFERRED_URL_SCHEME="https",
        TRUSTED_HOSTS=["app.example.com"],
    )
    ProdReady(app)
    return app
"""


def run_flask(
    project: Path,
    module: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `flask --app MODULE readiness ARGS` in ``cwd`` (default: ``project``) like a user
    would, the app importable from ``project``; the outer run's FLASK_*, PRODREADY_* and
    GITHUB_* variables left out."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "PRODREADY_", "GITHUB_")) and k != "SECRET_KEY"
    }
    environ.update(env or {})
    environ["PYTHONPATH"] = str(project)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", module, "readiness", *args],
        cwd=project if cwd is None else cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (folder / "badapp.py").write_text(textwrap.dedent(BAD_APP))
    (folder / "goodapp.py").write_text(textwrap.dedent(GOOD_APP))
    return folder


def test_bad_app_json_exits_1_without_the_key(project: Path) -> None:
    """A bad app: --format json exits 1, status fail, names the findings, never the key."""
    done = run_flask(project, "badapp", "--format", "json")
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "fail"
    ids = {f["id"] for f in body["findings"]}
    assert {
        "config.debug",
        "config.secret_key_weak",
        "cookies.session_secure",
        "cookies.session_httponly",
        "config.max_content_length",
    } <= ids
    assert body["worker"]["server"] is None
    assert body["mode"] == "cli"
    # The key's value appears nowhere; only the public id server.dev_server spells "dev".
    assert "dev" not in (done.stdout + done.stderr).replace("server.dev_server", "")


def test_bad_app_text_names_the_ids(project: Path) -> None:
    """The text format names each finding's id, grouped under its area."""
    done = run_flask(project, "badapp")
    assert done.returncode == 1
    for check_id in (
        "config.debug",
        "config.secret_key_weak",
        "cookies.session_secure",
        "cookies.session_httponly",
        "config.max_content_length",
    ):
        assert check_id in done.stdout
    assert done.stdout.index("\nconfig\n") < done.stdout.index("config.debug")
    assert "\x1b[" not in done.stdout  # no colour codes when not a terminal
    assert "FAIL" in done.stdout.splitlines()[0]


def test_list_shows_the_whole_catalogue(project: Path) -> None:
    """--list prints every id of SPEC §7 with level and tags, marking the ones not built yet."""
    done = run_flask(project, "badapp", "--list")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert listed == SPEC_IDS
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("server.dev_server "))
    assert "critical" in line
    assert "live only" in line
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("tls.http_redirect "))
    assert line.endswith("Plain http:// redirects to https://  [remote only]")
    engine = next(ln for ln in done.stdout.splitlines() if ln.startswith("prodready.check_crash"))
    assert "[reported by the runner]" in engine
    rows = json.loads(run_flask(project, "badapp", "--list", "--format", "json").stdout)
    assert {row["id"] for row in rows} == SPEC_IDS
    kinds = {row["id"]: row["kind"] for row in rows}
    assert kinds["tls.http_redirect"] == "implemented"
    assert set(kinds.values()) == {"implemented", "engine"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "nope"], "Error: unknown tag 'nope'"),
        (["--exclude", "config.nope"], "Error: unknown check id 'config.nope'"),
        (["--format", "xml"], "Error: Invalid value for '--format': 'xml' is not one of"),
        (
            ["--fail-level", "fatal"],
            "Error: Invalid value for '--fail-level': 'fatal' is not one of",
        ),
        pytest.param(
            ["--no-such-option"],
            "Error: No such option '--no-such-option'",
            marks=needs_click_82,
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(project: Path, args: list[str], message: str) -> None:
    """Unknown tag, id, format, level or option: exit 2, one line on stderr, no traceback."""
    done = run_flask(project, "badapp", *args)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_good_app_passes_config_and_cookies(project: Path) -> None:
    """A well-configured app passes `--tag config --tag cookies` with exit 0."""
    key = secrets.token_urlsafe(48)
    done = run_flask(
        project,
        "goodapp",
        "--tag",
        "config",
        "--tag",
        "cookies",
        "--format",
        "json",
        env={"APP_SECRET_KEY": key},
    )
    assert done.returncode == 0, done.stdout
    body = json.loads(done.stdout)
    assert body["status"] == "pass"
    assert body["findings"] == []
    assert result_of(body, "config.secret_key_in_source") == "pass"
    assert key not in done.stdout


def test_fail_level_moves_the_gate(project: Path) -> None:
    """--fail-level critical lets errors through; --fail-level warning stops on warnings."""
    key = secrets.token_urlsafe(48)
    env = {"APP_SECRET_KEY": key}
    assert (
        run_flask(
            project, "badapp", "--fail-level", "critical", "--exclude", "config.debug"
        ).returncode
        == 0
    )
    assert run_flask(project, "badapp", "--fail-level", "critical").returncode == 1
    assert run_flask(project, "goodapp", "--tag", "config", env=env).returncode == 0
    # info (trusted hosts) only appears at --fail-level info on an app without TRUSTED_HOSTS
    (project / "infoapp.py").write_text(
        textwrap.dedent(GOOD_APP).replace('TRUSTED_HOSTS=["app.example.com"],', "")
    )
    assert run_flask(project, "infoapp", "--tag", "config", env=env).returncode == 0
    assert (
        run_flask(project, "infoapp", "--tag", "config", "--fail-level", "info", env=env).returncode
        == 1
    )


def test_key_written_in_source_is_reported_not_printed(project: Path) -> None:
    """A 30+ character key written literally in the app's source is reported, never shown."""
    key = "hardcoded-" + secrets.token_hex(20)
    (project / "leaky.py").write_text(
        textwrap.dedent(GOOD_APP).replace('os.environ["APP_SECRET_KEY"]', repr(key))
    )
    done = run_flask(project, "leaky", "--format", "json")
    body = json.loads(done.stdout)
    finding = next(f for f in body["findings"] if f["id"] == "config.secret_key_in_source")
    assert finding["level"] == "error"
    assert finding["observed"] == {"file": "leaky.py", "method": "no git: .py files only"}
    assert "leaky.py" in finding["message"]
    assert key not in done.stdout + done.stderr
    assert done.returncode == 1
    text = run_flask(project, "leaky")
    assert "config.secret_key_in_source" in text.stdout
    assert key not in text.stdout


def test_silenced_and_token_never_printed(project: Path) -> None:
    """PRODREADY_TOKEN from the environment never appears in the CLI output."""
    done = run_flask(project, "badapp", "--format", "json", env={"PRODREADY_TOKEN": TOKEN})
    assert TOKEN not in done.stdout + done.stderr
    assert done.returncode == 1


def test_bad_config_value_fails_start_up(project: Path) -> None:
    """PRODREADY_CHECK_TIMEOUT = "soon" stops the app from loading, naming the key."""
    (project / "soonapp.py").write_text(
        textwrap.dedent(BAD_APP).replace(
            "SESSION_COOKIE_HTTPONLY=False)",
            'SESSION_COOKIE_HTTPONLY=False, PRODREADY_CHECK_TIMEOUT="soon")',
        )
    )
    done = run_flask(project, "soonapp")
    assert done.returncode == 2
    assert done.stderr == (
        "Error: the app failed to load: ValueError: PRODREADY_CHECK_TIMEOUT must be a number "
        "of seconds > 0, got 'soon'\n"
    )


def test_app_without_prodready_is_a_usage_error(project: Path) -> None:
    """On an app without ProdReady, `flask readiness` says so in one line and exits 2."""
    (project / "plain.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    done = run_flask(project, "plain")
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ProdReady is not installed on the app 'plain'")
    assert len(done.stderr.splitlines()) == 1


def test_format_is_case_insensitive(project: Path) -> None:
    """--format JSON is --format json."""
    done = run_flask(project, "badapp", "--format", "JSON")
    assert json.loads(done.stdout)["status"] == "fail"


def test_a_stray_argument_is_not_echoed(project: Path) -> None:
    """A positional argument (perhaps a token typed by mistake) is refused without echo."""
    done = run_flask(project, "badapp", "s3cr3t-token-typed-here")
    assert done.returncode == 2
    assert "s3cr3t-token-typed-here" not in done.stderr + done.stdout
    assert done.stderr.startswith("Error: unexpected argument (not shown)")


HANGING_APP = """
import threading
from flask import Flask
from flask_prodready import ProdReady

prodready = ProdReady()
forever = threading.Event()

@prodready.check("myapp.hangs", title="Waits on a server that never answers", blocking=True)
def hangs(ctx):
    forever.wait()

def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x" * 40, PRODREADY_CHECK_TIMEOUT=1.0)
    prodready.init_app(app)
    return app
"""


def test_a_hanging_blocking_check_does_not_keep_the_command_from_exiting(
    project: Path,
) -> None:
    """A blocking check that hangs for ever: flask readiness reports check_timeout and exits
    within the check timeout plus 2 s (its thread is a daemon); it was the only check, so
    nothing was judged: status unknown, exit 2 with the reason."""
    (project / "hangapp.py").write_text(textwrap.dedent(HANGING_APP))
    started = time.monotonic()
    assert run_flask(project, "hangapp", "--list").returncode == 0
    startup = time.monotonic() - started  # the interpreter's start and the app's load
    started = time.monotonic()
    done = run_flask(project, "hangapp", "--format", "json", "--tag", "myapp")
    elapsed = time.monotonic() - started
    body = json.loads(done.stdout)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "Error: nothing could be judged: myapp.hangs: timed out\n"
    assert body["status"] == "unknown"
    assert [f["id"] for f in body["findings"]] == ["prodready.check_timeout"]
    assert elapsed - startup < 1.0 + 2.0, (elapsed, startup)


def test_each_command_lists_only_its_own_options(project: Path) -> None:
    """flask readiness offers the app's options and remote mode's; prodready only remote
    mode's (no --gunicorn-config, --nginx-config, --systemd-unit, --audit or --list)."""
    local = run_flask(project, "badapp", "--help").stdout
    remote = subprocess.run(
        [str(Path(sys.executable).parent / "prodready"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    shared = ["--format", "--fail-level", "--tag", "--exclude", "--url", "--token-env"]
    shared += ["--cafile", "--timeout", "--http-port"]
    own = ["--gunicorn-config", "--nginx-config", "--systemd-unit", "--audit", "--list"]
    for option in [*shared, *own]:
        assert option in local, option
    for option in shared:
        assert option in remote, option
    for option in own:
        assert option not in remote, option


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("live", {"server.root", "server.dev_server", "static.served_by_app"}),
        ("cli", {"dependencies.vulnerable"}),
        ("remote", {"tls.certificate_expiry", "tls.http_redirect"}),
    ],
)
def test_list_by_mode_tag(project: Path, tag: str, expected: set[str]) -> None:
    """--tag live --list lists the checks that can only judge in the running server (and
    only those); cli and remote likewise."""
    done = run_flask(project, "badapp", "--tag", tag, "--list", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert expected <= {row["id"] for row in rows}
    assert all(row["modes"] == [tag] for row in rows), rows
