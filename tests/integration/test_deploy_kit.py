"""The deploy kit (``deploy/``) and the example app deployed the way it describes.

- The kit's files are accepted by their own tools: ``nginx -t`` for the site,
  ``gunicorn --check-config`` for the settings, ``systemd-analyze verify`` for the unit;
  the Kubernetes manifest parses, with the probes the docs name.
- A production deploy on loopback: PostgreSQL with the least-privilege role and a
  database of its own, ``flask db upgrade``, gunicorn started with
  ``deploy/gunicorn.conf.py``, and nginx in front sending ``X-Forwarded-Proto https`` (as
  TLS termination does) and serving ``/static/`` itself, as the kit's site does. After
  some traffic, the readiness report, from several workers, holds no finding but those
  that depend on the machine the tests run on (:data:`HOST_DEPENDENT`).
- Development: ``flask readiness`` fails, with ``config.debug`` and ``database.sqlite``.

When the tests run as root (CI containers do), so do gunicorn's workers, and
``server.root`` is reported: the one error accepted, because it is about how the tests
run, not about the kit, whose systemd unit and Kubernetes manifest run the app as a user
of its own. (Dropping the workers to ``nobody`` with gunicorn's ``--user`` is no way out
on machines where the Python in use lives in root's home, unreadable to other users.)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from example_app import LIVENESS_PATH
from example_app.config import MAX_UPLOAD_BYTES, ProductionConfig
from flask_prodready.engine.server import available_cpus
from tests.loopback import Directive, nginx_directives, require_nginx_config
from tests.postgres import PostgresServer
from tests.support import result_of, results_of

from .processes import (
    PROJECT_ROOT,
    Answer,
    environment,
    fetch,
    free_port,
    gunicorn,
    nginx,
    nginx_binary,
)

DEPLOY = PROJECT_ROOT / "deploy"
GUNICORN_CONFIG = DEPLOY / "gunicorn.conf.py"
NGINX_SITE = DEPLOY / "nginx-example-app.conf"
SYSTEMD_UNIT = DEPLOY / "example-app.service"
KUBERNETES = DEPLOY / "kubernetes.yaml"
STATIC_FOLDER = PROJECT_ROOT / "example_app" / "static"
#: The path flask-prodready answers /healthz on (PRODREADY_HEALTHZ_PATH's default).
HEALTHZ_PATH = "/healthz"
COMMAND_TIMEOUT = 60.0
#: Workers of the gunicorn under test: several, so that several answer the reports.
WORKERS = 3
#: Requests sent through nginx before the reports are asked for, and at once.
PAGE_REQUESTS = 30
CONCURRENCY = 6
#: Rounds of concurrent report requests, at most, to hear from two workers or more.
REPORT_ROUNDS = 5

#: Findings that a well-run deploy still shows here, because they depend on the machine
#: the tests run on, not on the deploy. Anything else in the report is a false alarm of
#: the kit or a real gap in it. (backups.stale is skipped: no PRODREADY_BACKUP_PATH.)
HOST_DEPENDENT = {
    "monitoring.error_tracking": "the test gives no SENTRY_DSN: no tracker to report to",
    "system.disk": "the free space of the test machine's disks",
    "system.memory": "the available memory of the test machine",
}
#: The one error a report may hold: the workers run as root when the tests do.
RUNS_AS_ROOT = os.geteuid() == 0
if RUNS_AS_ROOT:
    HOST_DEPENDENT["server.root"] = "the tests run as root, and so do the workers they start"
#: The workers run as the user who runs the tests, root or the owner of the checkout
#: under test: either can write its code (the kit's unit runs a user that cannot).
HOST_DEPENDENT["server.code_writable"] = "the workers run as root or the checkout's owner"
#: The test starts gunicorn itself; the kit's unit (deploy/example-app.service) is what
#: supervises it in production, and `flask readiness --systemd-unit` judges that unit.
HOST_DEPENDENT["supervision.unsupervised"] = "the test starts gunicorn, not the kit's unit"
#: Error-level findings of the host, not of the kit.
HOST_ERRORS = (
    ["server.root", "supervision.unsupervised"] if RUNS_AS_ROOT else ["supervision.unsupervised"]
)
#: Checks that judge the deploy whatever traffic a worker has seen: each must pass in
#: every report.
ALWAYS_PASS = (
    "config.debug",
    "config.secret_key_weak",
    "config.secret_key_in_source",
    "config.environment",
    "cookies.session_secure",
    "headers.hsts",
    "headers.csp",
    "headers.nosniff",
    "headers.framing",
    "headers.referrer_policy",
    "server.dev_server",
    "server.bind_public",
    "server.workers",
    "server.timeout",
    "server.max_requests_jitter",
    "database.unreachable",
    "database.pool_budget",
    "database.pre_ping",
    "database.connect_timeout",
    "database.superuser",
    "database.migrations",
    "monitoring.logging",
    "system.fd_limit",
)
#: Checks that judge the traffic a worker served (skipped before it served any): never
#: failed, and passed in at least one report.
TRAFFIC_CHECKS = (
    "proxy.missing_proxyfix",
    "proxy.no_forwarded_proto",
    "proxy.scheme_mismatch",
    "proxy.too_many_hops",
    "cookies.observed_insecure",
    "static.served_by_app",
)
#: Every variable the example app or the kit reads: blank means unset to both, so the
#: outer environment cannot change what is tested.
APP_VARIABLES = (
    "FLASK_CONFIG",
    "SECRET_KEY",
    "DATABASE_URL",
    "PRODREADY_TOKEN",
    "TRUSTED_HOSTS",
    "PROXY_HOPS",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "EXAMPLE_INSTANCE_PATH",
    "GUNICORN_BIND",
    "FORWARDED_ALLOW_IPS",
)


def app_environment(**values: str) -> dict[str, str]:
    """The environment of the example app's processes: every variable it reads blank,
    then ``values``, over the outer environment minus what changes an app."""
    return environment(PROJECT_ROOT, {**dict.fromkeys(APP_VARIABLES, ""), **values})


def run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` in the project folder, bounded, its output captured."""
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def flask(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``flask --app example_app ARGS``, as an operator types it."""
    return run([sys.executable, "-m", "flask", "--app", "example_app", *args], env)


def strong_secret() -> str:
    """A random secret made at run time: one written in this file would be in the source."""
    return secrets.token_hex(32)


def ipv6_loopback() -> str:
    """``::1`` where this machine can bind it, else a second IPv4 loopback address."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return "127.0.0.2"
    return "::1"


def listens_on_loopback(site: Path) -> tuple[str, list[Directive], list[str]]:
    """The text of ``site`` with each ``listen`` moved to a free loopback port, its flags
    kept (IPv6 ones to ``::1``, or 127.0.0.2 on a machine without it); the site's
    ``listen`` directives, and the addresses that replace them, in order.

    ``nginx -t`` binds every address it is given: the site's own ``listen 80`` and
    ``listen [::]:443`` would open ports 80 and 443 on every interface for a moment.
    """
    lines = site.read_text().splitlines(keepends=True)
    listens = [d for _, d, _ in nginx_directives(site) if d.name == "listen"]
    addresses: list[str] = []
    for directive in listens:
        host = ipv6_loopback() if directive.args[0].startswith("[") else "127.0.0.1"
        port = free_port(host)
        while any(address.endswith(f":{port}") for address in addresses):
            port = free_port(host)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        written = r"\s+".join(map(re.escape, ("listen", *directive.args)))
        found = re.fullmatch(rf"(\s*){written}\s*;(\s*)", lines[directive.line - 1])
        assert found, f"cannot rewrite {directive}: not alone on its line"
        flags = "".join(f" {flag}" for flag in directive.args[1:])
        lines[directive.line - 1] = f"{found[1]}listen {address}{flags};{found[2]}"
        addresses.append(address)
    return "".join(lines), listens, addresses


# --- the kit's files -----------------------------------------------------------------------


def test_kit_holds_gunicorn_nginx_systemd_and_kubernetes_files() -> None:
    """deploy/ holds the four files the deployment guide names."""
    for path in (GUNICORN_CONFIG, NGINX_SITE, SYSTEMD_UNIT, KUBERNETES):
        assert path.is_file(), path


def test_nginx_site_agrees_with_the_app() -> None:
    """The site forwards Host, X-Forwarded-For and X-Forwarded-Proto $scheme (what
    ProxyFix(x_for=1, x_proto=1) expects), limits bodies like MAX_CONTENT_LENGTH, serves
    the app's static folder itself and redirects plain HTTP to HTTPS."""
    site = NGINX_SITE.read_text()

    assert "proxy_set_header Host $host;" in site
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    assert f"client_max_body_size {MAX_UPLOAD_BYTES // (1024 * 1024)}m;" in site
    assert re.search(r"location /static/ \{\s*alias /srv/example-app/example_app/static/;", site)
    assert "return 301 https://$host$request_uri;" in site
    assert re.search(r"listen 443 ssl", site)
    assert ProductionConfig.PROXY_HOPS == 1


@pytest.mark.integration
def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    """``nginx -t`` accepts the site file included in an nginx.conf, with a self-signed
    certificate in place of the Let's Encrypt paths, the logs in a temporary folder and
    every ``listen`` moved, flags kept, to a free loopback port."""
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(certificate)),
        ],
        os.environ,
    )
    assert made.returncode == 0, made.stderr
    site, shipped, addresses = listens_on_loopback(NGINX_SITE)
    replacements = [
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {certificate};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"access_log\s+/\S+;", f"access_log {tmp_path}/access.log;"),
        (r"error_log\s+/\S+;", f"error_log {tmp_path}/site-error.log;"),
    ]
    for pattern, replacement in replacements:
        site, count = re.subn(pattern, replacement, site)
        assert count == 1, f"the site no longer has exactly one {pattern!r}"
    (tmp_path / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    access_log {tmp_path}/access.log;\n"
        f"{temp_paths}\n"
        f"    include {tmp_path}/site.conf;\n"
        "}\n"
    )
    # Every listen line moved (the guard refuses any left on another address), in order,
    # with its flags (ssl, http2 ...).
    moved = require_nginx_config(tmp_path / "nginx.conf")
    assert len(shipped) == len(moved) > 0
    assert [d.args[0] for d in moved] == addresses
    assert [d.args[1:] for d in moved] == [d.args[1:] for d in shipped]

    checked = run(
        [
            nginx_binary(),
            "-t",
            *("-p", str(tmp_path)),
            *("-c", str(tmp_path / "nginx.conf")),
            *("-e", str(tmp_path / "error.log")),
        ],
        os.environ,
    )

    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.mark.integration
def test_gunicorn_accepts_the_config_and_readiness_passes_it(tmp_path: Path) -> None:
    """``gunicorn --check-config`` loads the settings and the app; ``flask readiness
    --gunicorn-config`` judges them: loopback bind, 2 x CPUs + 1 workers, a timeout and
    max_requests with jitter, all four gunicorn checks passing."""
    env = app_environment(
        FLASK_CONFIG="production",
        SECRET_KEY=strong_secret(),
        EXAMPLE_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    checked = run(
        [
            *(sys.executable, "-m", "gunicorn", "--check-config"),
            *("-c", str(GUNICORN_CONFIG), "example_app.wsgi:app"),
        ],
        env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    printed = run(
        [
            *(sys.executable, "-m", "gunicorn", "--print-config"),
            *("-c", str(GUNICORN_CONFIG), "example_app.wsgi:app"),
        ],
        env,
    )
    settings = {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in printed.stdout.splitlines())
    }
    assert settings["bind"] == "['127.0.0.1:8000']"
    # CPUs counted as server.workers counts them: affinity, then the cgroup quota.
    assert settings["workers"] == str(2 * available_cpus() + 1)
    assert settings["timeout"] == "30"
    assert settings["max_requests"] == "1000"
    assert settings["max_requests_jitter"] == "100"
    assert settings["accesslog"] == "-"
    assert settings["control_socket_disable"] == "True"

    judged = flask(
        "readiness", "--format", "json", "--tag", "gunicorn",
        "--gunicorn-config", str(GUNICORN_CONFIG), env=env,
    )  # fmt: skip
    report = json.loads(judged.stdout)
    assert judged.returncode == 0, judged.stdout + judged.stderr
    assert results_of(report) == {
        "server.bind_public": "pass",
        "server.workers": "pass",
        "server.timeout": "pass",
        "server.max_requests_jitter": "pass",
        "server.worker_class": "pass",
    }


def test_kubernetes_manifest_has_the_documented_probes_secret_and_limits() -> None:
    """The manifest parses; its Deployment runs gunicorn with the kit's settings on
    0.0.0.0, as a non-root user, with requests and limits, readiness on /healthz (which
    checks the database in production), liveness on /livez (which does not), and its
    secrets from the Secret."""
    documents = [doc for doc in yaml.safe_load_all(KUBERNETES.read_text()) if doc]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)

    (secret,) = by_kind["Secret"]
    assert {"SECRET_KEY", "PRODREADY_TOKEN", "DATABASE_URL"} <= set(secret["stringData"])
    (deployment,) = by_kind["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == [
        "gunicorn",
        "-c",
        "deploy/gunicorn.conf.py",
        "example_app.wsgi:app",
    ]
    env = {item["name"]: item for item in container["env"]}
    assert env["FLASK_CONFIG"]["value"] == "production"
    assert env["GUNICORN_BIND"]["value"] == "0.0.0.0:8000"
    for name in ("SECRET_KEY", "PRODREADY_TOKEN", "DATABASE_URL"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "example-app", "key": name}
    assert container["readinessProbe"]["httpGet"]["path"] == HEALTHZ_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    assert container["startupProbe"]["httpGet"]["path"] == LIVENESS_PATH
    assert "database.unreachable" in ProductionConfig.PRODREADY_HEALTHZ_CHECKS
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    (port,) = container["ports"]
    assert port["containerPort"] == 8000


@pytest.mark.integration
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit without a warning (the gunicorn of the
    unit's placeholder path replaced by this virtualenv's), and the unit runs gunicorn
    with the kit's settings as a non-root user, reloads with SIGHUP and restarts on
    failure."""
    text = SYSTEMD_UNIT.read_text()
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    assert settings["User"] not in (["root"], ["0"])
    assert settings["EnvironmentFile"] == ["/etc/example-app/env"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["NoNewPrivileges"] == ["yes"]
    (exec_start,) = settings["ExecStart"]
    gunicorn_path, *arguments = exec_start.split()
    assert arguments[:2] == ["-c", "/srv/example-app/deploy/gunicorn.conf.py"]

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax cannot be verified")
    venv_gunicorn = Path(sys.executable).parent / "gunicorn"
    assert venv_gunicorn.exists()
    unit = tmp_path / SYSTEMD_UNIT.name
    unit.write_text(text.replace(gunicorn_path, str(venv_gunicorn)))

    verified = run([analyze, "verify", str(unit)], os.environ)

    assert verified.returncode == 0, verified.stdout + verified.stderr
    about_unit = [line for line in verified.stderr.splitlines() if unit.name in line]
    assert about_unit == []


# --- a production deploy on loopback -----------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The running deploy: nginx's and gunicorn's ports, and the secrets it was given."""

    nginx: int
    gunicorn: int
    token: str
    secrets: tuple[str, ...]


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The example app deployed as the kit says, on a database of its own."""
    logs = tmp_path_factory.mktemp("deploy-kit")
    database = postgres.create_database()
    token, secret_key = strong_secret(), strong_secret()
    env = app_environment(
        FLASK_CONFIG="production",
        SECRET_KEY=secret_key,
        PRODREADY_TOKEN=token,
        # The bare scheme a hosting platform hands out; the app picks psycopg 3.
        DATABASE_URL=postgres.url(postgres.owner, database, driver="postgresql"),
        EXAMPLE_INSTANCE_PATH=str(logs / "instance"),
    )
    try:
        upgraded = flask("db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        options = ["-c", str(GUNICORN_CONFIG), "--workers", str(WORKERS)]
        with (
            gunicorn(PROJECT_ROOT, "example_app.wsgi:app", options, env, logs=logs) as upstream,
            nginx(
                logs,
                upstream,
                ["proxy_set_header X-Forwarded-Proto https;"],
                static=("/static/", STATIC_FOLDER),
            ) as port,
        ):
            yield Deployment(
                nginx=port,
                gunicorn=upstream,
                token=token,
                secrets=(secret_key, token, postgres.owner.password),
            )
    finally:
        postgres.drop_database(database)


def through_nginx(deployment: Deployment, path: str, token: str | None = None) -> Answer:
    """GET ``path`` through nginx, with the bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return fetch(deployment.nginx, path, headers=headers)


def browse(deployment: Deployment) -> None:
    """Traffic through nginx as visitors make it: pages, their stylesheet, a missing page;
    several at once, so that several workers serve some."""
    paths = ["/"] * PAGE_REQUESTS + ["/static/style.css"] * 10 + ["/no-such-page"] * 3
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda path: through_nginx(deployment, path), paths))
    statuses = {path: answer.status for path, answer in zip(paths, answers, strict=True)}
    assert statuses == {"/": 200, "/static/style.css": 200, "/no-such-page": 404}


def reports(deployment: Deployment) -> list[tuple[Answer, dict[str, Any]]]:
    """Readiness reports fetched through nginx, several at once, until two workers or
    more have answered (a bounded number of rounds)."""
    collected: list[tuple[Answer, dict[str, Any]]] = []
    for _ in range(REPORT_ROUNDS):
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = list(
                pool.map(
                    lambda _: through_nginx(deployment, "/_readiness", deployment.token),
                    range(CONCURRENCY),
                )
            )
        collected += [(answer, answer.json()) for answer in answers]
        if len({report["worker"]["pid"] for _, report in collected}) >= 2:
            break
    return collected


@pytest.mark.integration
def test_report_through_nginx_holds_only_host_dependent_findings(
    deployment: Deployment,
) -> None:
    """After traffic through nginx, every report (several workers) holds no finding but
    the host-dependent ones, so no critical or error finding but those of the host
    (server.root when the tests run as root, supervision.unsupervised since the test
    starts gunicorn) and answers 503 for them; the traffic checks judged (proxy, cookies,
    static) and passed; no secret is in any body."""
    browse(deployment)

    collected = reports(deployment)

    workers = {report["worker"]["pid"] for _, report in collected}
    assert len(workers) >= 2, "only one gunicorn worker answered the reports"
    for answer, report in collected:
        assert report["worker"]["server"].startswith("gunicorn/")
        findings = [f for f in report["findings"] if not f["silenced"]]
        errors = [f["id"] for f in findings if f["level"] in ("critical", "error")]
        assert errors == HOST_ERRORS
        assert {f["id"] for f in findings} <= set(HOST_DEPENDENT), findings
        assert (answer.status, report["status"]) == (503, "fail")
        for check in ALWAYS_PASS:
            assert result_of(report, check) == "pass", (check, report["checks"])
        for check in TRAFFIC_CHECKS:
            assert result_of(report, check) in ("pass", "skipped"), check
        body = answer.body.decode()
        for secret in deployment.secrets:
            assert secret not in body
    for check in TRAFFIC_CHECKS:
        judged = [result_of(report, check) for _, report in collected]
        assert "pass" in judged, (check, judged)


@pytest.mark.integration
def test_pages_carry_security_headers_and_a_secure_cookie(deployment: Deployment) -> None:
    """Through nginx, the home page carries HSTS, a CSP with frame-ancestors, nosniff and
    a Referrer-Policy, and a Secure, HttpOnly session cookie."""
    answer = through_nginx(deployment, "/")

    assert answer.status == 200
    assert int(answer.headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= (
        180 * 24 * 3600
    )
    assert "frame-ancestors" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"]
    (cookie,) = answer.headers.get_all("Set-Cookie") or []
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly"} <= flags


@pytest.mark.integration
def test_static_files_come_from_nginx_with_caching(deployment: Deployment) -> None:
    """/static/style.css is served by nginx with a week's caching and nosniff, and the
    app serves nothing from its static folder (``static.served_by_app`` stays passed)."""
    answer = through_nginx(deployment, "/static/style.css")

    assert answer.status == 200
    assert answer.headers.get_content_type() == "text/css"
    assert answer.headers["Cache-Control"] == "max-age=604800"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.body == (STATIC_FOLDER / "style.css").read_bytes()


@pytest.mark.integration
def test_probes_answer_in_front_of_flask(deployment: Deployment) -> None:
    """As a Kubernetes probe sends them (the pod's IP as Host, straight to gunicorn),
    /livez answers ``ok`` and /healthz ``pass`` after checking the database, though
    TRUSTED_HOSTS does not list that Host. (Neither counts as traffic: sending them
    around nginx changes no proxy check.)"""
    host = {"Host": "10.1.2.3:8000"}

    livez = fetch(deployment.gunicorn, LIVENESS_PATH, headers=host)
    healthz = fetch(deployment.gunicorn, HEALTHZ_PATH, headers=host)

    assert (livez.status, livez.body) == (200, b"ok\n")
    assert (healthz.status, healthz.json()) == (200, {"status": "pass"})


# --- development ------------------------------------------------------------------------


@pytest.mark.integration
def test_development_readiness_fails_on_debug_and_sqlite(tmp_path: Path) -> None:
    """With FLASK_CONFIG=development, ``flask readiness`` exits 1 and reports at least
    ``config.debug`` (critical) and ``database.sqlite``."""
    env = app_environment(
        FLASK_CONFIG="development", EXAMPLE_INSTANCE_PATH=str(tmp_path / "instance")
    )

    result = flask("readiness", "--format", "json", env=env)

    assert result.returncode == 1, result.stdout + result.stderr
    findings = {f["id"]: f["level"] for f in json.loads(result.stdout)["findings"]}
    assert findings["config.debug"] == "critical"
    assert findings["database.sqlite"] == "warning"
