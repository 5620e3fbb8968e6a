"""Install, deploy and question one real application, as its operator would.

For an :class:`~tests.ecosystem.apps.App`:

1. its virtualenv, made from PyPI with the application's pinned dependencies
   (``tests/ecosystem/constraints/<app>.txt``) and cached under ``.ecosystem/`` by a
   digest of what went into it, so a second run installs nothing;
2. flask-prodready, built from this checkout once per run and installed over the cached
   one, so every run judges the current code;
3. a deployment in a new temporary folder: the application's settings written the way
   its documentation says, its own set-up commands, a small ``prodready_wsgi.py`` that
   imports the application and calls ``ProdReady(app)``, gunicorn on a unix socket (or
   a free 127.0.0.1 port) and nginx terminating TLS on a free 127.0.0.1 port in front of
   it (both configured from the application's documentation; both pass
   :mod:`tests.loopback` first);
4. ordinary traffic through nginx, then ``/_readiness`` with the token, then
   ``flask readiness --format json`` against the same settings.

Every process is started here, bounded in time and stopped by its PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..integration.processes import (
    free_port,
    nginx_binary,
    self_signed_certificate,
    wait_for_port,
)
from ..loopback import require_gunicorn_arguments, require_loopback_host, require_nginx_config
from .apps import App, Request

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Where the applications' virtualenvs and the last run's reports are kept.
CACHE = PROJECT_ROOT / ".ecosystem"
CONSTRAINTS = Path(__file__).resolve().parent / "constraints"
#: Bounds, in seconds.
INSTALL_TIMEOUT = 1200.0
BUILD_TIMEOUT = 300.0
SETUP_TIMEOUT = 180.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 60.0
CLI_TIMEOUT = 300.0
#: How long a run waits for another run of the same application to finish with its cache.
LOCK_TIMEOUT = 1800.0
#: How long the report waits after the visit, for every worker's evidence to be written.
EVIDENCE_FLUSH = 2.5
#: The environment of the application's processes: nothing of the outer one but these.
KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


class DeployError(RuntimeError):
    """The application could not be installed, set up, started or questioned."""


@dataclass(frozen=True)
class Verdict:
    """What a report says of one check: its status and the levels of its findings."""

    status: str
    levels: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.status} [{', '.join(self.levels)}]" if self.levels else self.status


@dataclass
class Report:
    """One readiness report, read as verdicts by check id; ``problem`` when none came."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    problem: str | None = None
    raw: Any = None


@dataclass
class Outcome:
    """Everything one run of an application gave."""

    app: str
    live: Report
    cli: Report
    timings: dict[str, float]
    traffic: list[tuple[str, int]]
    #: Where the deployment's logs were kept.
    logs: Path


def verdicts_of(report: Mapping[str, Any]) -> dict[str, Verdict]:
    """Each check's status and the sorted levels of its findings (silenced or not).

    A finding whose id is no check of the report (``prodready.check_crashed``) counts as
    a check of its own that failed.
    """
    levels: dict[str, set[str]] = {}
    for finding in report.get("findings", []):
        levels.setdefault(finding["id"], set()).add(finding["level"])
    verdicts = {
        check: Verdict(entry[0]["result"], tuple(sorted(levels.get(check, ()))))
        for check, entry in report.get("checks", {}).items()
    }
    for check, found in levels.items():
        verdicts.setdefault(check, Verdict("fail", tuple(sorted(found))))
    return verdicts


# --- virtualenvs -----------------------------------------------------------------------


def _base_python() -> str:
    """The interpreter the test venv was made from: the applications get their own venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def venv_key(app: App) -> str:
    """A digest of everything the application's virtualenv is made of."""
    constraints = (CONSTRAINTS / f"{app.name}.txt").read_text()
    parts = [sys.version, *app.requirements, constraints]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _run(
    command: list[str], *, timeout: float, log: Path, cwd: Path | None = None, env: Any = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` bounded by ``timeout``, appending its output to ``log``."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise DeployError(f"{' '.join(command)} took more than {timeout:.0f} s") from expired
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    return done


def _pip(venv: Path, *arguments: str, log: Path, timeout: float, what: str) -> None:
    """``pip install ARGUMENTS`` in ``venv``, with the outer environment's index settings
    (but no PYTHONPATH); a failure raises with pip's last words."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *arguments]
    done = _run(command, timeout=timeout, log=log, env=env)
    if done.returncode != 0:
        raise DeployError(f"installing {what} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def ensure_venv(app: App, log: Path) -> tuple[Path, bool]:
    """The application's virtualenv, made now unless a complete one is cached.

    Returns the venv and whether it was made now.
    """
    folder = CACHE / f"{app.name}-{venv_key(app)}"
    venv = folder / "venv"
    stamp = folder / "installed"
    if stamp.exists():
        return venv, False
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    done = _run([_base_python(), "-m", "venv", str(venv)], timeout=120, log=log)
    if done.returncode != 0:
        raise DeployError(f"venv for {app.name} failed:\n{done.stdout}{done.stderr}")
    constraints = str(CONSTRAINTS / f"{app.name}.txt")
    _pip(venv, "--constraint", constraints, *app.requirements, log=log,
         timeout=INSTALL_TIMEOUT, what=app.name)  # fmt: skip
    stamp.write_text(" ".join(app.requirements) + "\n")
    return venv, True


def build_prodready_wheel(folder: Path, log: Path) -> Path:
    """flask-prodready as a wheel built from this checkout, as ``pip install .`` builds it."""
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder)]
    done = _run([*command, str(PROJECT_ROOT)], timeout=BUILD_TIMEOUT, log=log)
    wheels = sorted(folder.glob("flask_prodready-*.whl"))
    if done.returncode != 0 or not wheels:
        raise DeployError(f"building flask-prodready failed:\n{done.stdout}{done.stderr}")
    return wheels[-1]


def install_prodready(app: App, venv: Path, wheel: Path, log: Path) -> None:
    """Put this checkout's flask-prodready into ``venv`` as ``pip install`` would: the
    wheel over any earlier one, then whatever it needs that the venv lacks, within the
    application's pins (a conflict with them fails here, as it would for a user)."""
    what = "flask-prodready"
    _pip(venv, "--no-deps", "--force-reinstall", str(wheel), log=log, timeout=BUILD_TIMEOUT,
         what=what)  # fmt: skip
    # With the nginx extra: the nginx.* checks judge the deployment's own nginx config.
    _pip(venv, "--constraint", str(CONSTRAINTS / f"{app.name}.txt"), f"{wheel}[nginx]",
         log=log, timeout=BUILD_TIMEOUT, what=what)  # fmt: skip


# --- the deployment --------------------------------------------------------------------


def render(text: str, context: Mapping[str, str]) -> str:
    """``text`` with every ``{{ name }}`` replaced by ``context[name]``."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: context[m.group(1)], text)


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise DeployError(f"no site-packages in {venv}")
    return found[-1]


def app_environment(app: App, context: Mapping[str, str]) -> dict[str, str]:
    """The environment of every process of the deployment: the application's settings,
    the token, and nothing that the outer process or the test venv would add."""
    env = {k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ}
    env["HOME"] = context["home"]
    env["LANG"] = env.get("LANG", "C.UTF-8")
    env["PYTHONPATH"] = context["deploy"]
    env["PRODREADY_TOKEN"] = context["token"]
    env["PRODREADY_NGINX_CONFIG"] = str(Path(context["nginx"]) / "nginx.conf")
    env.update({name: render(value, context) for name, value in app.environment.items()})
    return env


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait (bounded) until something accepts on the unix socket ``path``."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeployError(f"exited with {process.returncode}:\n{_tail(log)}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(str(path)) == 0:
                return
        time.sleep(0.1)
    raise DeployError(f"nothing listened on {path} in {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """The integration tests' bounded wait, failing as a deployment error."""
    try:
        wait_for_port(port, process, log)
    except RuntimeError as exc:
        raise DeployError(str(exc)) from None


def _tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    """Stop ``process`` by its PID: ``sig``, then SIGKILL after the timeout."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextlib.contextmanager
def _gunicorn(app: App, venv: Path, context: Mapping[str, str]) -> Iterator[None]:
    """gunicorn serving the application on ``context['upstream']``."""
    arguments = [
        "--no-control-socket",
        "--bind",
        context["upstream"],
        *(render(argument, context) for argument in app.gunicorn),
        "prodready_wsgi:application",
    ]
    env = app_environment(app, context)
    require_gunicorn_arguments(arguments, env)
    log = Path(context["logs"]) / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "gunicorn", *arguments],
            cwd=context["deploy"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if app.bind == "unix":
            _wait_for_socket(Path(context["socket"]), process, log)
        else:
            _wait_for_port(int(context["upstream"].rpartition(":")[2]), process, log)
        yield
    finally:
        _stop(process, signal.SIGTERM)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {{ nginx }}/nginx.pid;
error_log {{ nginx }}/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path {{ nginx }}/client_body;
    proxy_temp_path {{ nginx }}/proxy;
    fastcgi_temp_path {{ nginx }}/fastcgi;
    uwsgi_temp_path {{ nginx }}/uwsgi;
    scgi_temp_path {{ nginx }}/scgi;
    # What /etc/nginx/mime.types says of the files the applications' static folders hold.
    types {
        text/html html;
        text/css css;
        text/javascript js;
        image/png png;
        image/svg+xml svg;
        image/x-icon ico;
        font/woff2 woff2;
    }
{{ upstreams }}
    server {
        listen {{ host }}:{{ port }} ssl;
        ssl_certificate {{ certificate }};
        ssl_certificate_key {{ key }};
{{ locations }}
    }
}
"""


@contextlib.contextmanager
def _nginx(app: App, context: dict[str, str]) -> Iterator[int]:
    """nginx terminating TLS on a free loopback port in front of gunicorn; yields the port."""
    work = Path(context["nginx"])
    work.mkdir()
    certificate, key = self_signed_certificate(work, days=90)
    port = free_port()
    config = render(
        NGINX_CONF,
        {
            **context,
            "host": require_loopback_host(HOST, "nginx listen"),
            "port": str(port),
            "certificate": str(certificate),
            "key": str(key),
            "upstreams": render(app.nginx_upstreams, context),
            "locations": render(app.nginx_locations, context),
        },
    )
    conf = work / "nginx.conf"
    conf.write_text(config)
    require_nginx_config(conf)
    log = work / "error.log"
    with (work / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(work), "-c", str(conf), "-e", str(log)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        yield port
    finally:
        _stop(process, signal.SIGQUIT)


class Client:
    """A visitor's browser, reduced: HTTPS through nginx, cookies kept, redirects followed."""

    def __init__(self, port: int) -> None:
        self.base = f"https://{HOST}:{port}"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # nginx's self-signed test certificate
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never a proxy from the environment
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.cookies),
        )

    def visit(self, request: Request, context: dict[str, str]) -> int:
        """Send ``request`` with its ``{{ values }}`` filled in from ``context``; keep what
        it asks to keep from the answer in ``context``. Returns the status."""
        filled = Request(
            render(request.path, context),
            method=request.method,
            headers={k: render(v, context) for k, v in request.headers.items()},
            form=None
            if request.form is None
            else {k: render(v, context) for k, v in request.form.items()},
        )
        status, _, body = self.send(filled)
        for name, path in request.keep.items():
            value: Any = json.loads(body) if status == 200 else {}
            for key in path.split("."):
                value = value.get(key, {}) if isinstance(value, dict) else {}
            if not isinstance(value, str):
                raise DeployError(f"{request.path} answered {status} without {path}")
            context[name] = value
        return status

    def send(self, request: Request) -> tuple[int, str, bytes]:
        """(status, content type, body) of ``request``; redirects are followed."""
        data = None
        headers = dict(request.headers)
        if request.form is not None:
            data = urllib.parse.urlencode(request.form).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        outgoing = urllib.request.Request(
            self.base + request.path, data=data, headers=headers, method=request.method
        )
        try:
            with self.opener.open(outgoing, timeout=REQUEST_TIMEOUT) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers.get("Content-Type", ""), error.read()

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)


def fetch_live_report(client: Client, token: str) -> Report:
    """``/_readiness`` with the token, as a release script asks for it."""
    status, content_type, body = client.send(
        Request(
            "/_readiness",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    )
    if status not in (200, 503) or not content_type.startswith("application/health+json"):
        excerpt = body[:200].decode("utf-8", "replace")
        return Report(problem=f"answered {status} {content_type!r}, not the report: {excerpt}")
    raw = json.loads(body)
    return Report(verdicts_of(raw), raw=raw)


def run_cli(app: App, venv: Path, context: Mapping[str, str]) -> Report:
    """``flask --app prodready_wsgi readiness --format json`` with the deployment's settings."""
    command = [
        str(venv / "bin" / "python"),
        "-m",
        "flask",
        "--app",
        "prodready_wsgi",
        "readiness",
        "--format",
        "json",
        *(render(argument, context) for argument in app.cli_arguments),
    ]
    log = Path(context["logs"]) / "cli.log"
    done = _run(
        command,
        timeout=CLI_TIMEOUT,
        log=log,
        cwd=Path(context["deploy"]),
        env=app_environment(app, context),
    )
    if done.returncode not in (0, 1):
        return Report(problem=f"flask readiness exited {done.returncode}: {done.stderr[-500:]}")
    raw = _json_report(done.stdout) or _json_report(done.stderr)
    if raw is None:
        return Report(problem=f"flask readiness printed no JSON report: {done.stdout[:300]}")
    return Report(verdicts_of(raw), raw=raw)


def _json_report(text: str) -> dict[str, Any] | None:
    """The report in ``text``, which may hold the app's own output around it (a wsgi
    script may send stdout to stderr, as privacyIDEA's does)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^\{", text, re.M):
        with contextlib.suppress(ValueError):
            found, _ = decoder.raw_decode(text, match.start())
            if isinstance(found, dict) and "checks" in found:
                return found
    return None


def _prepare(app: App, venv: Path, folder: Path) -> dict[str, str]:
    """Write the application's files and run its set-up commands; the template context."""
    context = {
        "deploy": str(folder / "deploy"),
        "state": str(folder / "state"),
        "home": str(folder / "home"),
        "logs": str(folder / "logs"),
        "nginx": str(folder / "nginx"),
        "socket": str(folder / "gunicorn.sock"),
        "venv": str(venv),
        "site_packages": str(site_packages(venv)),
        "python": str(venv / "bin" / "python"),
        "token": secrets.token_urlsafe(32),
        "password": "Pw-" + secrets.token_urlsafe(16),
        "secret_key": secrets.token_hex(32),
        # nginx's upstream: gunicorn's unix socket, or a free loopback port.
        "upstream": f"unix:{folder / 'gunicorn.sock'}"
        if app.bind == "unix"
        else f"{require_loopback_host(HOST, 'gunicorn bind')}:{free_port()}",
        "pepper": secrets.token_hex(16),
    }
    for name in ("deploy", "state", "home", "logs"):
        Path(context[name]).mkdir(mode=0o755)
    for relative, text in app.files.items():
        (Path(context["deploy"]) / relative).write_text(render(text, context))
    for source, target in app.copies.items():
        shutil.copytree(render(source, context), Path(context["deploy"]) / target)
    log = Path(context["logs"]) / "setup.log"
    for step in app.setup:
        command = [render(word, context) for word in step]
        done = _run(
            command,
            timeout=SETUP_TIMEOUT,
            log=log,
            cwd=Path(context["deploy"]),
            env=app_environment(app, context),
        )
        if done.returncode != 0:
            raise DeployError(f"set-up step {command} failed:\n{_tail(log)}")
    return context


def _readable_by_nginx(folder: Path) -> None:
    """nginx's workers run as ``nobody`` under root: they must reach the socket and the
    static files, so the deployment is world-readable (as /srv would be)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o555 if path.is_dir() else mode | 0o444)


@contextlib.contextmanager
def _cache_lock(app: App) -> Iterator[None]:
    """Hold the application's cache for this run: another run (a second ``make test`` in
    the same checkout) waits, bounded, rather than reinstalling flask-prodready into the
    virtualenv its gunicorn is running from."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{app.name}.lock").open("w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DeployError(
                        f"another run held {lock.name} for {LOCK_TIMEOUT:.0f} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def deploy_and_report(app: App, wheel: Path, log: Path) -> Outcome:
    """Install (or reuse), deploy, visit and question ``app``; everything is stopped and
    the deployment removed after, its logs kept under ``.ecosystem/last-run/<app>-logs``.
    """
    with _cache_lock(app):
        return _deploy_and_report(app, wheel, log)


def _deploy_and_report(app: App, wheel: Path, log: Path) -> Outcome:
    timings: dict[str, float] = {}
    started = time.monotonic()
    venv, made = ensure_venv(app, log)
    timings["install"] = time.monotonic() - started if made else 0.0
    mark = time.monotonic()
    install_prodready(app, venv, wheel, log)
    timings["install_prodready"] = time.monotonic() - mark

    folder = Path(tempfile.mkdtemp(prefix=f"eco-{app.name}-"))
    folder.chmod(0o755)
    logs = CACHE / "last-run" / f"{app.name}-logs"
    try:
        mark = time.monotonic()
        context = _prepare(app, venv, folder)
        _readable_by_nginx(folder)
        timings["setup"] = time.monotonic() - mark
        mark = time.monotonic()
        traffic: list[tuple[str, int]] = []
        with _gunicorn(app, venv, context), _nginx(app, context) as port:
            timings["start"] = time.monotonic() - mark
            mark = time.monotonic()
            client = Client(port)
            for request in app.traffic:
                status = client.visit(request, context)
                traffic.append((f"{request.method} {request.path}", status))
            timings["traffic"] = time.monotonic() - mark
            # Each worker writes its evidence for its siblings at most once a second
            # (docs/live.md): wait for the last of the visit to be written.
            time.sleep(EVIDENCE_FLUSH)
            mark = time.monotonic()
            live = fetch_live_report(client, context["token"])
            timings["live_report"] = time.monotonic() - mark
        mark = time.monotonic()
        cli = run_cli(app, venv, context)
        timings["cli_report"] = time.monotonic() - mark
        return Outcome(app.name, live, cli, timings, traffic, logs)
    finally:
        timings["total"] = time.monotonic() - started
        _keep_logs(folder, logs)
        shutil.rmtree(folder, ignore_errors=True)


def _keep_logs(folder: Path, logs: Path) -> None:
    """Copy the deployment's logs (set-up, gunicorn, nginx, the application's own log
    files) to ``logs``, replacing the last run's, before the deployment is removed."""
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    for path in folder.rglob("*.log"):
        with contextlib.suppress(OSError):
            shutil.copy(path, logs / "-".join(path.relative_to(folder).parts))
