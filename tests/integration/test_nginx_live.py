"""nginx.* against the real nginx: ``nginx -t`` agrees with the parse on the deploy kit's
site and its variants (moved to loopback ports), and a report served by gunicorn behind
a running nginx judges gunicorn's live bind against that nginx's configuration."""

from __future__ import annotations

import re
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.checks.test_nginx import KIT_VARIANTS, kit_variant
from tests.support import results_of

from .processes import (
    HOST,
    PROJECT_ROOT,
    _run_nginx,
    fetch,
    free_port,
    gunicorn,
    nginx_binary,
    self_signed_certificate,
)
from .test_deploy_kit import listens_on_loopback

pytestmark = pytest.mark.integration

DEPLOY_SITE = PROJECT_ROOT / "deploy" / "nginx-example-app.conf"
#: Variants of the kit's site that only disagree with the app: nginx itself accepts them.
VALID_VARIANTS = sorted(set(KIT_VARIANTS) - {"nginx.invalid"})


def nginx_test(folder: Path, site_text: str) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``site_text`` included in an nginx.conf of ``folder``: every
    ``listen`` moved to a free loopback port, a self-signed certificate in place of the
    Let's Encrypt paths, logs and temporary files in ``folder``."""
    original = folder / "original.conf"
    original.write_text(site_text)
    site, _, _ = listens_on_loopback(original)
    certificate, key = self_signed_certificate(folder, 1)
    for pattern, replacement in [
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {certificate};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"access_log\s+/\S+;", f"access_log {folder}/access.log;"),
        (r"error_log\s+/\S+;", f"error_log {folder}/site-error.log;"),
    ]:
        site = re.sub(pattern, replacement, site)
    (folder / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {folder}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {folder}/access.log;\n{temp_paths}\n"
        f"    include {folder}/site.conf;\n}}\n"
    )
    return subprocess.run(
        [nginx_binary(), "-t", "-p", str(folder), "-c", str(conf), "-e", f"{folder}/error.log"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("check_id", VALID_VARIANTS)
def test_nginx_accepts_the_variants_judged_valid(tmp_path: Path, check_id: str) -> None:
    """The variants that only disagree with the app are valid nginx: ``nginx -t`` passes."""
    checked = nginx_test(tmp_path, kit_variant(check_id))
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_nginx_refuses_the_variant_judged_invalid(tmp_path: Path) -> None:
    """The variant nginx.invalid reports is refused by ``nginx -t`` too, for the same
    directive."""
    checked = nginx_test(tmp_path, kit_variant("nginx.invalid"))
    assert checked.returncode != 0
    assert 'invalid number of arguments in "proxy_redirect" directive' in checked.stderr


APP = """
import os
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    PRODREADY_TOKEN=os.environ["APP_TOKEN"],
    PRODREADY_NGINX_CONFIG=os.environ["PRODREADY_NGINX_CONFIG"],
    PRODREADY_CACHE_SECONDS=0,
    MAX_CONTENT_LENGTH=1024 * 1024,
    TRUSTED_HOSTS=["localhost", "127.0.0.1"],
)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
ProdReady(app)
"""

#: The site in front of the app: named, all three headers, nginx's default 1m bodies.
SERVER = """
    server {{
        listen {host}:{port};
        server_name localhost 127.0.0.1;
        location / {{
            proxy_pass http://{host}:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"""


def test_live_report_judges_the_running_bind(tmp_path: Path) -> None:
    """Behind a running nginx, /_readiness?tag=nginx judges gunicorn's live bind against
    that nginx's configuration: every check passes; pointed at a copy proxying to another
    port, nginx.upstream fails and the others are skipped."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    judged = tmp_path / "judged.conf"
    token = secrets.token_hex(16)
    env = {
        "APP_SECRET_KEY": secrets.token_hex(32),
        "APP_TOKEN": token,
        "PRODREADY_NGINX_CONFIG": str(judged),
    }
    auth = {"Authorization": f"Bearer {token}"}
    with gunicorn(tmp_path, "app:app", ["--workers", "2"], env) as upstream:
        port = free_port()
        server = SERVER.format(host=HOST, port=port, upstream=upstream)
        with _run_nginx(tmp_path, f"nginx-{port}", server, [port]):
            running = tmp_path / f"nginx-{port}" / "nginx.conf"
            judged.write_text(running.read_text())

            answer = fetch(port, "/_readiness?tag=nginx", headers=auth)

            report = answer.json()
            assert report["findings"] == [], report["findings"]
            assert results_of(report) == dict.fromkeys(KIT_VARIANTS, "pass")
            assert answer.status == 200

            other = free_port()
            while other == upstream:
                other = free_port()
            text = running.read_text()
            assert text.count(f"{HOST}:{upstream};") == 1
            judged.write_text(text.replace(f"{HOST}:{upstream};", f"{HOST}:{other};"))

            answer = fetch(port, "/_readiness?tag=nginx", headers=auth)

            report = answer.json()
            assert [f["id"] for f in report["findings"]] == ["nginx.upstream"]
            (finding,) = report["findings"]
            assert f"served on {HOST}:{upstream} (from the running gunicorn)" in finding["message"]
            assert f"to {HOST}:{other}" in finding["message"]
            skipped = {k for k, v in results_of(report).items() if v == "skipped"}
            assert skipped == set(KIT_VARIANTS) - {"nginx.upstream", "nginx.invalid"}
            assert answer.status == 503
