"""``python -m example_app.demo``: the example app under gunicorn, with its readiness report.

It does what a production deploy would (``flask db upgrade``, then gunicorn with the deploy
kit's ``deploy/gunicorn.conf.py`` when the checkout has it, two workers,
``FLASK_CONFIG=production``) on a free port of 127.0.0.1, with a fresh random
``SECRET_KEY`` and ``PRODREADY_TOKEN`` and a temporary folder for the instance and its
SQLite file, so it touches nothing of yours and needs no setup. There is no nginx in
front: the report honestly says SQLite, and whatever the host lacks; and, since the
demo itself starts gunicorn, that nothing supervises it (``supervision.unsupervised``:
in production a supervisor does, such as ``deploy/example-app.service``). Once
``/healthz`` answers it prints the URLs, what
``/healthz`` and ``/_readiness`` say, a ``curl`` line to copy, and the output of
``flask --app example_app readiness``; then it serves until Ctrl-C or SIGTERM and stops
gunicorn cleanly.

``--once`` stops right after printing (for tests and CI); ``--port N`` picks the port.
Exit status: 0 after a clean stop, 1 when gunicorn does not come up (its log's tail is
printed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from . import LIVENESS_PATH

#: The folder that holds the ``example_app`` package: the working directory of the
#: processes the demo starts, so ``example_app`` imports wherever the demo is run from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WORKERS = 2
#: How long gunicorn may take to answer ``/healthz`` before the demo gives up.
STARTUP_TIMEOUT = 15.0
#: How long gunicorn may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 30.0
#: How long ``flask readiness`` may run.
CLI_TIMEOUT = 60.0
#: Seconds one HTTP request of the demo may take.
REQUEST_TIMEOUT = 5.0
#: Seconds one ``/healthz`` poll may take while gunicorn starts.
POLL_TIMEOUT = 1.0
#: Lines of gunicorn's log shown when it fails to start.
LOG_TAIL_LINES = 20
#: Variables of the caller's environment the demo replaces or drops, so that its app is
#: exactly the production configuration described above.
CONTROLLED_VARIABLES = (
    "DATABASE_URL",
    "FLASK_DEBUG",
    "FLASK_APP",
    "TRUSTED_HOSTS",
    "PROXY_HOPS",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "GUNICORN_BIND",
    "GUNICORN_CMD_ARGS",
    "WEB_CONCURRENCY",
)
#: The deploy kit's gunicorn settings, used when the checkout has them.
GUNICORN_CONFIG = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
#: urllib without proxies: the demo's requests go to its own gunicorn on loopback, never
#: to an ``http_proxy`` of the environment, which would carry them (and the token) away.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def loopback(host: str) -> str:
    """``host`` when it is a loopback address (127.0.0.0/8, ::1 or ``localhost``);
    ValueError naming it otherwise.

    The demo serves an app with a fresh token and its readiness report: on any other
    address the network could reach them.
    """
    try:
        if host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"{host!r} is not a loopback address: the demo binds only to loopback")


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((loopback(host), 0))
        port: int = sock.getsockname()[1]
        return port


def demo_environment(
    base: Mapping[str, str], *, secret_key: str, token: str, instance_path: str
) -> dict[str, str]:
    """The environment of gunicorn and ``flask readiness``: ``base`` set to production.

    ``PYTHONPATH`` starts with the project folder so ``example_app`` imports in the
    children whatever the caller's working directory is.
    """
    env = {k: v for k, v in base.items() if k not in CONTROLLED_VARIABLES}
    python_path = [str(PROJECT_ROOT), *filter(None, [base.get("PYTHONPATH")])]
    env.update(
        FLASK_CONFIG="production",
        SECRET_KEY=secret_key,
        PRODREADY_TOKEN=token,
        EXAMPLE_INSTANCE_PATH=instance_path,
        PYTHONPATH=os.pathsep.join(python_path),
        # Unbuffered, so gunicorn's log is in the file when it is shown after a failure.
        PYTHONUNBUFFERED="1",
    )
    return env


def gunicorn_command(port: int, config: Path | None = None) -> list[str]:
    """The gunicorn command line: the venv's gunicorn with the settings file ``config``
    if given, two workers, loopback only (the options win over the file).

    ``--no-control-socket``: gunicorn 27 otherwise opens a control socket under
    ``~/.gunicorn/``, which a throwaway demo has no business leaving behind.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *(["-c", str(config)] if config is not None else []),
        "--no-control-socket",
        "-w",
        str(WORKERS),
        "-b",
        f"{loopback(HOST)}:{port}",
        "example_app.wsgi:app",
    ]


def fetch(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
) -> tuple[int, str]:
    """GET ``url``: the status code and body text, error statuses (401, 503) included."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with OPENER.open(request, timeout=timeout) as response:
            status: int = response.status
            return status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8", "replace")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the file at ``path`` (empty when it cannot be read)."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def wait_until_healthy(
    server: subprocess.Popen[bytes], url: str, stop: threading.Event, timeout: float
) -> bool:
    """Poll ``url`` until it answers 200; ``False`` when gunicorn exits, ``stop`` is set
    or ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if server.poll() is not None:
            return False
        try:
            status, _ = fetch(url, timeout=POLL_TIMEOUT)
        except (OSError, ValueError, http.client.HTTPException):
            status = 0
        if status == 200:
            return True
        stop.wait(0.1)
    return False


def stop_server(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM to gunicorn (a graceful shutdown), then wait; SIGKILL if it hangs.

    Returns gunicorn's exit status.
    """
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            return server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
    return server.wait()


def report_lines(base_url: str, token: str) -> list[str]:
    """What ``/livez``, ``/healthz`` and ``/_readiness`` say, as lines to print."""
    livez_url = f"{base_url}{LIVENESS_PATH}"
    healthz_url = f"{base_url}/healthz"
    readiness_url = f"{base_url}/_readiness"
    livez_status, livez_body = fetch(livez_url)
    status, body = fetch(healthz_url)
    lines = [
        "URLs",
        f"  liveness   {livez_url}   (a worker answers; never touches the database)",
        f"  health     {healthz_url}   (readiness: production adds database.unreachable)",
        f"  report     {readiness_url}   (needs the bearer token)",
        f"  the app    {base_url}/",
        "",
        f"GET {LIVENESS_PATH} -> {livez_status} {livez_body.strip()}",
        f"GET /healthz -> {status} {body.strip()}",
    ]
    status, body = fetch(readiness_url, {"Authorization": f"Bearer {token}"})
    try:
        report: dict[str, Any] = json.loads(body)
        summary = ", ".join(f"{k} {v}" for k, v in report["summary"].items())
        worker = report.get("worker", {})
        lines += [
            f"GET /_readiness -> {status}, status {report['status']!r}",
            f"  summary: {summary}",
            f"  answered by pid {worker.get('pid')} ({worker.get('server')})",
        ]
        for finding in report.get("findings", []):
            lines.append(f"  {finding['level'].upper():<9} {finding['id']}: {finding['message']}")
    except (ValueError, KeyError, TypeError, AttributeError):
        lines.append(f"GET /_readiness -> {status}, not a readiness report: {body[:200]!r}")
    lines += [
        "",
        "Try it yourself (a throwaway token for this demo only):",
        f"  export PRODREADY_TOKEN={shlex.quote(token)}",
        f'  curl -s -H "Authorization: Bearer $PRODREADY_TOKEN" {readiness_url}',
        f"  curl -s -i {healthz_url}",
    ]
    return lines


def _flask(arguments: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str] | None:
    """``python -m flask ARGUMENTS`` in the project folder, output captured; ``None`` when
    it did not finish within CLI_TIMEOUT."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "flask", *arguments],
            cwd=PROJECT_ROOT,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def cli_report(env: Mapping[str, str], gunicorn_config: Path | None) -> tuple[str, list[str]]:
    """Run ``flask --app example_app readiness`` in ``env`` (judging ``gunicorn_config``
    when given); the command line shown and the lines to print (its output and what its
    exit status means).
    """
    arguments = ["--app", "example_app", "readiness"]
    if gunicorn_config is not None:
        arguments += ["--gunicorn-config", str(gunicorn_config)]
    shown = shlex.join(["flask", *arguments])
    result = _flask(arguments, env)
    if result is None:
        return shown, [f"(did not finish within {CLI_TIMEOUT:.0f} s)"]
    lines = (result.stdout + result.stderr).rstrip().splitlines()
    meaning = {0: "ready", 1: "findings at or above --fail-level error"}.get(
        result.returncode, "usage error or crash"
    )
    return shown, [*lines, f"(exit status {result.returncode}: {meaning})"]


def upgrade_database(env: Mapping[str, str]) -> tuple[bool, list[str]]:
    """Run ``flask --app example_app db upgrade`` in ``env``, as a deploy does before it
    starts the new code (production creates no table itself); whether it worked, and
    its output when it did not.
    """
    result = _flask(["--app", "example_app", "db", "upgrade"], env)
    if result is None:
        return False, [f"(did not finish within {CLI_TIMEOUT:.0f} s)"]
    if result.returncode == 0:
        return True, []
    output = (result.stdout + result.stderr).rstrip().splitlines()
    return False, [*output[-LOG_TAIL_LINES:], f"(exit status {result.returncode})"]


def _print(lines: Sequence[str], out: TextIO) -> None:
    out.write("\n".join(lines) + "\n")
    out.flush()


def run(once: bool, port: int | None, out: TextIO = sys.stdout) -> int:
    """Start gunicorn, show the reports, serve until told to stop; the exit status."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tempfile.TemporaryDirectory(prefix="prodready-demo-") as folder:
            return _run_in(Path(folder), once, port or free_port(), stop, out)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_in(folder: Path, once: bool, port: int, stop: threading.Event, out: TextIO) -> int:
    token = secrets.token_urlsafe(32)
    env = demo_environment(
        os.environ,
        secret_key=secrets.token_urlsafe(48),
        token=token,
        instance_path=str(folder / "instance"),
    )
    base_url = f"http://{HOST}:{port}"
    log_path = folder / "gunicorn.log"
    _print(["$ flask --app example_app db upgrade   (FLASK_CONFIG=production, SQLite)"], out)
    upgraded, lines = upgrade_database(env)
    if not upgraded:
        print("demo: the database migrations failed", file=sys.stderr)
        print("\n".join(lines), file=sys.stderr)
        return 1
    _print(["  the database is at the migrations head", ""], out)
    # Relative to the working directory (the project), so the line shown reads as typed.
    config = GUNICORN_CONFIG.relative_to(PROJECT_ROOT) if GUNICORN_CONFIG.is_file() else None
    command = gunicorn_command(port, config)
    _print([f"Starting: {shlex.join(['gunicorn', *command[3:]])}  (FLASK_CONFIG=production)"], out)
    with log_path.open("wb") as log:
        # A session of its own: Ctrl-C in the terminal reaches the demo only, which then
        # stops gunicorn with SIGTERM, the signal meant for a graceful shutdown.
        server = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if not wait_until_healthy(server, f"{base_url}/healthz", stop, STARTUP_TIMEOUT):
            if stop.is_set():
                return 0
            code = server.poll()
            why = (
                f"exited with status {code}"
                if code is not None
                else f"did not answer {base_url}/healthz within {STARTUP_TIMEOUT:.0f} s"
            )
            print(f"demo: gunicorn {why}", file=sys.stderr)
            tail = log_tail(log_path)
            if tail:
                print(tail, file=sys.stderr)
            return 1
        _print([f"gunicorn is up (master pid {server.pid}, {WORKERS} workers)", ""], out)
        _print(report_lines(base_url, token), out)
        shown, lines = cli_report(env, config)
        _print(["", f"$ {shown}", *lines, ""], out)
        if once:
            return 0
        _print([f"Serving on {base_url}/ - press Ctrl-C to stop."], out)
        while not stop.wait(0.5):
            if server.poll() is not None:
                print(
                    f"demo: gunicorn exited unexpectedly with status {server.returncode}",
                    file=sys.stderr,
                )
                tail = log_tail(log_path)
                if tail:
                    print(tail, file=sys.stderr)
                return 1
        return 0
    except (OSError, http.client.HTTPException) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    finally:
        if server.poll() is None:
            stop_server(server)
            _print(["stopped"], out)
        else:
            server.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(
        prog="python -m example_app.demo",
        description="Run the example app under gunicorn on 127.0.0.1 and show its "
        "readiness report.",
    )
    parser.add_argument(
        "--once", action="store_true", help="print the reports, then stop (for tests and CI)"
    )
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return run(once=args.once, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
