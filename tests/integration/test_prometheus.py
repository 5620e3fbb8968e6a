"""The shipped Prometheus files (deploy/prometheus/) against a real Prometheus scraping real
gunicorn servers, all on loopback.

promtool checks the shipped rules and a copy of the shipped scrape config that points at
this test's servers and token (and scrapes every second, over plain HTTP); the rules file
is used as shipped, ``for:`` durations included, so a ``pending`` alert proves that its
rule matched. Prometheus runs in a temporary folder of its own and is stopped by its PID.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..loopback import require_loopback_host
from .processes import HOST, PROJECT_ROOT, fetch, free_port, gunicorn, stop, wait_for_port
from .test_fingerprint_live import idle_connection

pytestmark = pytest.mark.integration

SHIPPED = PROJECT_ROOT / "deploy" / "prometheus"
TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Bound on each wait for Prometheus to see something (it scrapes and evaluates every second).
WAIT = 45.0
#: How long one worker is held while Prometheus scrapes the other.
HOLD = 3.0
JOB = "flask-prodready"

#: The same app for every server; only APP_DEBUG differs between the configurations.
APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    DEBUG=os.environ.get("APP_DEBUG") == "1",
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SESSION_COOKIE_SECURE=True,
    MAX_CONTENT_LENGTH=1024 * 1024,
    PRODREADY_CACHE_SECONDS=120,
    PRODREADY_SILENCED={
        "server.root": "the test suite may run as root",
        "supervision.unsupervised": "the test suite starts its servers itself",
    },
)
ProdReady(app)
"""


def prometheus_binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install prometheus; .ci/run does it)")
    return found


def config_copy(folder: Path, targets: list[str]) -> Path:
    """A copy of the shipped prometheus.yml for this test: its targets, its token file,
    plain HTTP, every second; the shipped rules file, by its path. Everything else of the
    scrape job stays as shipped."""
    shipped = yaml.safe_load((SHIPPED / "prometheus.yml").read_text())
    for target in targets:
        require_loopback_host(target.rpartition(":")[0], "Prometheus scrape target")
    token_file = folder / "prodready-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    [job] = shipped["scrape_configs"]
    assert (job["job_name"], job["metrics_path"], job["params"]) == (
        JOB,
        "/_readiness",
        {"format": ["openmetrics"]},
    )
    job["authorization"]["credentials_file"] = str(token_file)
    job["scheme"] = "http"
    job["static_configs"] = [{"targets": targets}]
    shipped["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    shipped["rule_files"] = [str(SHIPPED / "rules.yml")]
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(shipped))
    return config


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *args], capture_output=True, text=True, timeout=60
    )


@contextmanager
def prometheus(folder: Path, config: Path) -> Iterator[Callable[[str, dict[str, str]], Any]]:
    """Prometheus with ``config`` on a free loopback port, its data in ``folder``; yields a
    function that GETs one path of its HTTP API and returns the JSON ``data``."""
    port = free_port()
    listen = f"{HOST}:{port}"
    require_loopback_host(listen.rpartition(":")[0], "prometheus --web.listen-address")
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={listen}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def api(path: str, query: dict[str, str] | None = None) -> Any:
        answer = fetch(port, f"{path}?{urllib.parse.urlencode(query or {})}")
        assert answer.status == 200, answer.body[:500]
        body = json.loads(answer.body)
        assert body["status"] == "success", body
        return body["data"]

    try:
        wait_for_port(port, process, log)
        until(lambda: fetch(port, "/-/ready").status == 200, "Prometheus is ready", log)
        yield api
    finally:
        stop(process)


def until(condition: Callable[[], Any], what: str, log: Path | None = None) -> Any:
    """Poll ``condition`` (bounded by WAIT) until it gives something true; return that."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.25)
    tail = "" if log is None else "\n" + log.read_text(errors="replace")[-2000:]
    raise AssertionError(f"not seen within {WAIT} s: {what}{tail}")


def alerts(api: Callable[..., Any], name: str, **labels: str) -> list[dict[str, Any]]:
    """The active (pending or firing) alerts called ``name`` whose labels include ``labels``."""
    return [
        alert
        for alert in api("/api/v1/alerts")["alerts"]
        if alert["labels"]["alertname"] == name
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def query(api: Callable[..., Any], expression: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api("/api/v1/query", {"query": expression})["result"]
    return result


def test_shipped_rules_and_config_pass_promtool(tmp_path: Path) -> None:
    """promtool accepts the shipped rules, and the shipped config pointed at real targets
    and a real token file (it refuses the shipped one only for the token file it names)."""
    rules = promtool("check", "rules", str(SHIPPED / "rules.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout
    config = promtool("check", "config", str(config_copy(tmp_path, [f"{HOST}:8000"])))
    assert config.returncode == 0, config.stdout + config.stderr
    shipped = promtool("check", "config", str(SHIPPED / "prometheus.yml"))
    assert "/etc/prometheus/prodready-token" in shipped.stdout + shipped.stderr


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    """One input series of a promtool rule test, of the job and a replica's first worker."""
    labels = {"job": JOB, "instance": "web-1:443", "hostname": "web-1", "pid": "10", **labels}
    return {
        "series": metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}",
        "values": values,
    }


#: A sample every other minute: what one of two workers gives when scrapes alternate.
EVEN, ODD = "1 stale " * 10, "stale 1 " * 10
#: Every minute for twenty minutes.
ALWAYS = "1x20"


def test_rules_over_simulated_time(tmp_path: Path) -> None:
    """promtool's rule tests, on the shipped expressions, durations and labels: each alert
    fires after its `for:`; a check failing while scrapes alternate between two workers
    (each sample naming its pid) still fires; two workers of one replica and two replicas
    sharing a fingerprint raise no drift, replicas with two fingerprints do; an expired
    silence is its own alert, not also a check alert."""
    rules = yaml.safe_load((SHIPPED / "rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        rule.pop("annotations")  # checked by promtool check rules; promtool test wants them all
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    check = {"status": "fail", "check": "config.debug"}
    expired = {"status": "fail", "check": "prodready.silence_expired"}
    web1 = {"job": JOB, "instance": "web-1:443", "hostname": "web-1"}

    def expect(name: str, at: str, *alerts: dict[str, str]) -> dict[str, Any]:
        return {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [{"exp_labels": labels} for labels in alerts],
        }

    same = {"fingerprint": "aaaa"}
    tests = [
        {
            "interval": "1m",
            "input_series": [
                series("prodready_check_status", EVEN, **check),
                series("prodready_check_status", ODD, pid="11", **check),
                series("prodready_check_status", ALWAYS, **expired),
                series("prodready_status", ALWAYS, status="fail"),
                series("up", "0x20", pid=""),
                series("prodready_config_info", EVEN, **same),
                series("prodready_config_info", ODD, pid="11", **same),
                series("prodready_config_info", ALWAYS, instance="web-2:443", **same),
            ],
            "alert_rule_test": [
                expect("ProdReadyCheckFailing", "9m"),
                expect("ProdReadyCheckFailing", "11m", {**web1, **check, "severity": "warning"}),
                expect(
                    "ProdReadySilenceExpired", "11m", {**web1, **expired, "severity": "warning"}
                ),
                expect("ProdReadyReportFailing", "4m"),
                expect(
                    "ProdReadyReportFailing",
                    "6m",
                    {**web1, "status": "fail", "severity": "critical"},
                ),
                expect("ProdReadyReportUnreachable", "6m", {**web1, "severity": "warning"}),
                expect("ProdReadyConfigDrift", "19m"),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("prodready_config_info", ALWAYS, **same),
                series("prodready_config_info", ALWAYS, instance="web-2:443", fingerprint="bbbb"),
            ],
            "alert_rule_test": [
                expect("ProdReadyConfigDrift", "14m"),
                expect("ProdReadyConfigDrift", "16m", {"job": JOB, "severity": "warning"}),
            ],
        },
    ]
    unit = tmp_path / "rules_test.yml"
    unit.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "tests": tests}))
    done = promtool("test", "rules", str(unit))
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_alerts_on_real_replicas(tmp_path: Path) -> None:
    """Prometheus scrapes two gunicorn servers (one with two workers, one in debug mode):
    the check alert is pending for config.debug on the debug server only, the two
    configurations raise the drift alert while the two workers of one server share a
    fingerprint; a stopped server raises the unreachable alert; restarted fixed, its check
    alert and the drift alert resolve."""
    (tmp_path / "fleetapp.py").write_text(textwrap.dedent(APP))
    key = secrets.token_urlsafe(48)
    good = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": key}
    debug = {**good, "APP_DEBUG": "1"}
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        steady = stack.enter_context(gunicorn(tmp_path, "fleetapp:app", ["-w", "2"], good, logs))
        replaced = ExitStack()
        stack.callback(replaced.close)
        odd = replaced.enter_context(gunicorn(tmp_path, "fleetapp:app", ["-w", "1"], debug, logs))
        steady_target, odd_target = f"{HOST}:{steady}", f"{HOST}:{odd}"
        for port in (steady, steady, odd):  # the first report of a worker is the slow one
            assert fetch(port, "/_readiness?format=openmetrics", headers=AUTH).status == 200

        config = config_copy(tmp_path, [steady_target, odd_target])
        checked = promtool("check", "config", str(config))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        api = stack.enter_context(prometheus(tmp_path, config))

        # The check alert matches on the debug server only (pending: `for: 10m` as shipped).
        debug_alert = until(
            lambda: alerts(api, "ProdReadyCheckFailing", check="config.debug"),
            "ProdReadyCheckFailing for config.debug",
        )
        assert [(a["labels"]["instance"], a["state"]) for a in debug_alert] == [
            (odd_target, "pending")
        ]
        assert alerts(api, "ProdReadyReportFailing", instance=odd_target)
        until(lambda: alerts(api, "ProdReadyConfigDrift", job=JOB), "ProdReadyConfigDrift")

        # Every target's OpenMetrics, info metric included, parses in Prometheus.
        targets = api("/api/v1/targets")["activeTargets"]
        health = {t["labels"]["instance"]: (t["health"], t["lastError"]) for t in targets}
        assert health == {steady_target: ("up", ""), odd_target: ("up", "")}

        # Both workers of the steady server are scraped; they report one fingerprint.
        # A sync worker holding a connection that sends nothing answers no scrape: hold one
        # worker, then (the second connection going to the worker that answered) the other.
        first_held = idle_connection(steady)
        with closing(first_held):
            time.sleep(HOLD)
            second_held = idle_connection(steady)
        with closing(second_held):
            time.sleep(HOLD)
        seen = f'last_over_time(prodready_config_info{{instance="{steady_target}"}}[5m])'
        until(lambda: query(api, f"count(count by (pid) ({seen})) == 2"), "both workers")
        [one] = query(api, f"count by (fingerprint) ({seen})")
        assert one["value"][1] == "2"
        fingerprints = query(api, "count by (fingerprint) (prodready_config_info)")
        assert len(fingerprints) == 2  # the steady server's and the debug server's

        # Stopped, the debug server raises the unreachable alert; restarted fixed on the
        # same port, its alerts and the drift resolve.
        replaced.close()
        until(
            lambda: alerts(api, "ProdReadyReportUnreachable", instance=odd_target),
            "ProdReadyReportUnreachable",
        )
        fixed = stack.enter_context(
            gunicorn(tmp_path, "fleetapp:app", ["-w", "1"], good, logs, port=odd)
        )
        assert fetch(fixed, "/_readiness?format=openmetrics", headers=AUTH).status == 200
        until(
            lambda: (
                not alerts(api, "ProdReadyCheckFailing", check="config.debug")
                and not alerts(api, "ProdReadyReportUnreachable")
                and not alerts(api, "ProdReadyConfigDrift")
            ),
            "the debug, unreachable and drift alerts resolved",
        )
        [shared] = query(api, "count by (fingerprint) (prodready_config_info)")
        assert shared["value"][1] == "2"  # one scraped worker of each server
