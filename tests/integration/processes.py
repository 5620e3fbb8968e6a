"""Real processes for integration tests: gunicorn, nginx and `flask run` on loopback.

Each is started in a temporary folder on a free 127.0.0.1 port, waited for with a
bounded loop, and stopped by its PID (SIGTERM, then SIGKILL after a timeout). Its bind
addresses, and nginx's whole configuration, pass :mod:`tests.loopback` before it starts.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..loopback import require_gunicorn_arguments, require_loopback_host, require_nginx_config

HOST = "127.0.0.1"
#: A second loopback address: requests from it prove forwarded addresses are used.
CLIENT_ADDRESS = "127.0.0.2"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Variables of the outer environment that would change an app under test.
DROPPED_VARIABLES = (
    "FLASK_APP",
    "FLASK_DEBUG",
    "FLASK_CONFIG",
    "PRODREADY_TOKEN",
    "SECRET_KEY",
    "WEB_CONCURRENCY",
    "GUNICORN_CMD_ARGS",
)


@dataclass(frozen=True)
class Answer:
    """One HTTP response, read completely."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port(host: str = HOST) -> int:
    """A TCP port of the loopback address ``host`` (IPv4 or IPv6) nobody listens on now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((require_loopback_host(host, "free_port"), 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> Answer:
    """One request to 127.0.0.1:``port``, optionally sent from another loopback address."""
    if source is not None:
        require_loopback_host(source, "fetch's source address")
    connection = http.client.HTTPConnection(
        HOST, port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        connection.request(method, path, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait (bounded) until something accepts on ``port``; fail with the log's tail."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {HOST}:{port} in {START_TIMEOUT} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop ``process`` by its PID: ``sig``, then SIGKILL if it outlives the timeout."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def environment(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The outer environment minus app-changing variables, with ``folder`` importable."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), str(PROJECT_ROOT)]))
    env.update(extra or {})
    return env


@contextmanager
def gunicorn(
    folder: Path,
    target: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    logs: Path | None = None,
    port: int | None = None,
) -> Iterator[int]:
    """gunicorn serving ``target`` (``module:app``) from ``folder``; yields its port.

    Its log goes to ``logs`` (default: ``folder``). ``port`` (default: a free one) lets a
    restarted server answer where the old one did.
    """
    port = free_port() if port is None else port
    arguments = ["--no-control-socket", "--chdir", str(folder), "-b", f"{HOST}:{port}",
                 *args, target]  # fmt: skip
    # ``args`` may add binds of their own, and the environment GUNICORN_CMD_ARGS.
    require_gunicorn_arguments(arguments, environment(folder, env))
    command = ["-m", "gunicorn", *arguments]
    with _serving(folder, command, env, (logs or folder) / f"gunicorn-{port}.log", port):
        yield port


@contextmanager
def flask_run(folder: Path, module: str, env: Mapping[str, str] | None = None) -> Iterator[int]:
    """Werkzeug's development server (`flask run`) serving ``module``; yields its port."""
    port = free_port()
    require_loopback_host(HOST, "flask run --host")
    command = ["-m", "flask", "--app", module, "run", "--host", HOST, "--port", str(port),
               "--no-reload"]  # fmt: skip
    with _serving(folder, command, env, folder / f"flask-run-{port}.log", port):
        yield port


@contextmanager
def _serving(
    folder: Path, command: list[str], env: Mapping[str, str] | None, log: Path, port: int
) -> Iterator[None]:
    """Run ``python COMMAND`` in ``folder``, wait for ``port``, stop it by PID at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=folder,
            env=environment(folder, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        stop(process)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"""
#: A server block proxying to the app; ``{listen}`` is ``HOST:PORT`` or ``HOST:PORT ssl``.
PROXY_SERVER = """
    server {{
        listen {listen};
{tls}
{locations}
        location / {{
            proxy_pass http://{host}:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
{extra}
        }}
    }}
"""
#: A location serving a folder from disk, as the deploy kit's site serves /static/.
STATIC_LOCATION = """
        location {url} {{
            alias {folder}/;
            # A real nginx.conf includes mime.types; this one names what static folders hold.
            types {{
                text/css css;
                text/javascript js;
                image/png png;
                image/svg+xml svg;
            }}
            expires 7d;
            add_header X-Content-Type-Options "nosniff" always;
            access_log off;
        }}
"""
#: A plain-HTTP server block that sends every request to the https:// port.
REDIRECT_SERVER = """
    server {{
        listen {host}:{port};
        return 301 https://$host:{https_port}$request_uri;
    }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx; .ci/run does it)")
    return found


@contextmanager
def nginx(
    folder: Path,
    upstream: int,
    extra_directives: Sequence[str] = (),
    *,
    static: tuple[str, Path] | None = None,
) -> Iterator[int]:
    """nginx on a free port proxying to 127.0.0.1:``upstream``; yields its port.

    It always sends X-Forwarded-For; ``extra_directives`` add lines to the location
    (for example ``proxy_set_header X-Forwarded-Proto https;`` as TLS termination would).
    ``static`` is (URL prefix, folder): nginx serves those files itself, as a production
    site does (``deploy/nginx-example-app.conf``), and they never reach the app. nginx's
    workers run as ``nobody`` when it starts as root: the folder must be world-readable.
    """
    port = free_port()
    locations = "" if static is None else STATIC_LOCATION.format(url=static[0], folder=static[1])
    server = _proxy_server(f"{HOST}:{port}", upstream, extra_directives, locations=locations)
    with _run_nginx(folder, f"nginx-{port}", server, [port]):
        yield port


def _proxy_server(
    listen: str,
    upstream: int,
    extra_directives: Sequence[str] = (),
    tls: Sequence[str] = (),
    *,
    locations: str = "",
) -> str:
    return PROXY_SERVER.format(
        listen=listen,
        host=HOST,
        upstream=upstream,
        tls="\n".join(f"        {line}" for line in tls),
        locations=locations,
        extra="\n".join(f"            {line}" for line in extra_directives),
    )


@contextmanager
def _run_nginx(folder: Path, name: str, servers: str, ports: Sequence[int]) -> Iterator[None]:
    """nginx with ``servers`` in its own folder, until every one of ``ports`` accepts."""
    work = folder / name
    work.mkdir()
    work.chmod(0o755)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work, servers=servers))
    require_nginx_config(conf)
    log = work / "error.log"
    with (work / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(work), "-c", str(conf), "-e", str(log)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for port in ports:
            wait_for_port(port, process, log)
        yield
    finally:
        stop(process, signal.SIGQUIT)


def self_signed_certificate(folder: Path, days: int) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost valid for ``days`` days, and its key."""
    certificate, key = folder / f"cert-{days}d.pem", folder / f"key-{days}d.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days)),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate, key


@dataclass(frozen=True)
class TlsPorts:
    """Where a TLS-terminating nginx listens: https, and plain http when it serves one."""

    https: int
    http: int | None


@contextmanager
def nginx_tls(
    folder: Path,
    upstream: int,
    certificate: Path,
    key: Path,
    *,
    plain_http: str | None = None,
) -> Iterator[TlsPorts]:
    """nginx terminating TLS with ``certificate`` on a free port, proxying to
    127.0.0.1:``upstream`` with ``X-Forwarded-Proto https``.

    ``plain_http`` adds a plain-HTTP server on another free port: ``"redirect"`` answers
    every request with a 301 to the https:// port, ``"proxy"`` serves the app there too.
    """
    https, http = free_port(), None
    tls = [f"ssl_certificate {certificate};", f"ssl_certificate_key {key};"]
    forwarded = ["proxy_set_header X-Forwarded-Proto $scheme;"]
    servers = _proxy_server(f"{HOST}:{https} ssl", upstream, forwarded, tls)
    if plain_http is not None:
        http = free_port()
        while http == https:
            http = free_port()
        if plain_http == "redirect":
            servers += REDIRECT_SERVER.format(host=HOST, port=http, https_port=https)
        elif plain_http == "proxy":
            servers += _proxy_server(f"{HOST}:{http}", upstream, forwarded)
        else:
            raise ValueError(f"plain_http must be 'redirect' or 'proxy', not {plain_http!r}")
    ports = [https] if http is None else [https, http]
    with _run_nginx(folder, f"nginx-{https}", servers, ports):
        yield TlsPorts(https, http)
