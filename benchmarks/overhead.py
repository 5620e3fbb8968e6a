"""What ProdReady costs per request, measured under real gunicorn with wrk.

Two apps of the same shape are served side by side, each by its own gunicorn (two sync
workers) on a free 127.0.0.1 port: a plain Flask app, and the same app with
``ProdReady(app)`` installed. wrk drives four variants, interleaved round by round:

* ``plain /hello``      an ordinary route returning a small HTML page (the baseline)
* ``prodready /hello``  the same route behind ProdReady's middleware (observation on)
* ``plain /ok``         a bare route returning "ok": the fastest answer a Flask app gives
* ``prodready /healthz`` ProdReady's liveness answer, given in front of Flask

and the report compares medians: ``prodready /hello`` against ``plain /hello`` (the
per-request overhead of observation) and ``/healthz`` against the bare ``/ok``, by
throughput and p99 latency, and for information by the servers' CPU time per request.

Run from the repository root::

    .venv/bin/python benchmarks/overhead.py            # 5 rounds of 10 s per variant
    .venv/bin/python benchmarks/overhead.py --quick    # 3 rounds of 3 s
    .venv/bin/python benchmarks/overhead.py --json result.json

Client and servers share the machine's cores: compare the ratios of one run, never the
absolute numbers of two runs. The exit status is 0 when the run completed (whatever the
ratios), 2 when it could not measure, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
WORKERS = 2
WRK_THREADS = 2
WRK_CONNECTIONS = 16
QUICK_ROUNDS, QUICK_DURATION = 3, 3
DEFAULT_ROUNDS, DEFAULT_DURATION = 5, 10
#: Longest warm-up per variant, in seconds (never longer than one measurement).
WARMUP_SECONDS = 2
#: Seconds a server gets to answer its first request.
START_TIMEOUT = 30.0
#: Start attempts per server (a free port can be taken between choosing and binding).
START_ATTEMPTS = 3
#: Seconds a server gets to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT = 10.0
#: Seconds wrk may run beyond its own duration before it is killed.
WRK_GRACE = 30.0
#: gunicorn's own bound on a graceful stop (its default is 30 s).
GRACEFUL_TIMEOUT = 5

HELLO_TARGET = 0.97
HEALTHZ_TARGET = 0.95
HEALTHZ_P99_LIMIT = 1.10

APPS_MODULE = '''\
"""The two apps under test: one Flask app, built without and with ProdReady.

Written by benchmarks/overhead.py into a temporary folder; both apps have the same
routes, config and response headers, so the only difference is ProdReady.
"""

from __future__ import annotations

import os

from flask import Flask, Response

PAGE = (
    "<!doctype html>\\n"
    '<html lang="en"><head><meta charset="utf-8"><title>Hello</title></head>\\n'
    "<body><h1>Hello</h1><p>A small page, served to measure overhead.</p>"
    "<p>Run NONCE</p></body></html>\\n"
).replace("NONCE", os.environ["BENCH_NONCE"])


def build(with_prodready: bool) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["BENCH_SECRET_KEY"]

    @app.get("/hello")
    def hello() -> Response:
        response = Response(PAGE, mimetype="text/html")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    if with_prodready:
        from flask_prodready import ProdReady

        app.config["PRODREADY_TOKEN"] = os.environ["BENCH_PRODREADY_TOKEN"]
        ProdReady(app)
    return app
'''

PLAIN_MODULE = '''\
"""The plain Flask app (see bench_apps)."""

from bench_apps import build

app = build(with_prodready=False)
'''

PRODREADY_MODULE = '''\
"""The same app with ProdReady installed (see bench_apps)."""

from bench_apps import build

app = build(with_prodready=True)
'''


class BenchError(Exception):
    """The benchmark could not measure (a server did not start, wrk failed, ...)."""


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    server: str  # "plain" or "prodready"
    path: str


VARIANTS = (
    Variant("plain-hello", "plain /hello", "plain", "/hello"),
    Variant("prodready-hello", "prodready /hello", "prodready", "/hello"),
    Variant("plain-ok", "plain /ok (bare)", "plain", "/ok"),
    Variant("prodready-healthz", "prodready /healthz", "prodready", "/healthz"),
)


@dataclass(frozen=True)
class Comparison:
    key: str
    label: str
    variant: str
    baseline: str
    metric: str  # "rps" (higher is better), "p99" or "cpu" (lower is better)
    target: float | None  # rps: ratio >= target; p99: ratio <= target; None: shown only


COMPARISONS = (
    Comparison(
        "hello-rps",
        "prodready /hello vs plain /hello, req/s",
        "prodready-hello",
        "plain-hello",
        "rps",
        HELLO_TARGET,
    ),
    Comparison(
        "hello-p99",
        "prodready /hello vs plain /hello, p99",
        "prodready-hello",
        "plain-hello",
        "p99",
        None,
    ),
    Comparison(
        "hello-cpu",
        "prodready /hello vs plain /hello, CPU/req",
        "prodready-hello",
        "plain-hello",
        "cpu",
        None,
    ),
    Comparison(
        "healthz-rps",
        "/healthz vs bare /ok, req/s",
        "prodready-healthz",
        "plain-ok",
        "rps",
        HEALTHZ_TARGET,
    ),
    Comparison(
        "healthz-p99",
        "/healthz vs bare /ok, p99",
        "prodready-healthz",
        "plain-ok",
        "p99",
        HEALTHZ_P99_LIMIT,
    ),
    Comparison(
        "healthz-cpu",
        "/healthz vs bare /ok, CPU/req",
        "prodready-healthz",
        "plain-ok",
        "cpu",
        None,
    ),
)


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    """One wrk run, as parsed from its text output (latencies in milliseconds)."""

    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    seconds: float
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0
    output: str = ""
    #: CPU time the server (master and workers) spent per request during the run, in
    #: microseconds; None where /proc is missing or a worker was replaced mid-run.
    cpu_us_per_request: float | None = None


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_RPS = re.compile(r"^Requests/sec:\s+([0-9.]+)\s*$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in ([0-9.]+)(us|ms|s|m|h),", re.MULTILINE)
_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, the latency distribution, totals and errors of ``wrk --latency``."""
    rps = _RPS.search(output)
    percentiles = {m[1]: float(m[2]) * _UNIT_MS[m[3]] for m in _PERCENTILE.finditer(output)}
    total = _TOTAL.search(output)
    if rps is None or total is None or set(percentiles) != {"50", "75", "90", "99"}:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors: dict[str, int] = {}
    socket_errors = _SOCKET.search(output)
    if socket_errors is not None:
        names = ("connect", "read", "write", "timeout")
        errors = {n: int(v) for n, v in zip(names, socket_errors.groups(), strict=True)}
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        rps=float(rps[1]),
        p50_ms=percentiles["50"],
        p75_ms=percentiles["75"],
        p90_ms=percentiles["90"],
        p99_ms=percentiles["99"],
        requests=int(total[1]),
        seconds=float(total[2]) * _UNIT_MS[total[3]] / 1000.0,
        socket_errors=errors,
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else 0,
        output=output,
    )


def wrk_command(wrk: str, url: str, duration: int) -> list[str]:
    return [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{duration}s",
        "--latency",
        url,
    ]


def run_wrk(wrk: str, url: str, duration: int) -> WrkResult:
    command = wrk_command(wrk, url, duration)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + WRK_GRACE,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:g} s: {url}") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode} on {url}:\n{done.stderr}")
    result = parse_wrk(done.stdout)
    if result.non_2xx_3xx:
        raise BenchError(f"{url} answered {result.non_2xx_3xx} non-2xx/3xx responses under wrk")
    if result.requests == 0:
        raise BenchError(f"wrk completed no request on {url}")
    return result


def wrk_version(wrk: str) -> str:
    # `wrk -v` prints its version and usage, and exits non-zero.
    try:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith("wrk "):
            return line.split(" Copyright", 1)[0].strip()
    return "unknown"


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, body
    finally:
        connection.close()


@dataclass
class Server:
    """One gunicorn master started by this script, in its own process group."""

    name: str
    module: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent id, CPU seconds in user and system mode) of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def server_cpu(server: Server) -> tuple[float, frozenset[int]] | None:
    """CPU seconds used so far by a gunicorn master and its workers, and the workers' ids."""
    master = _proc_stat(server.pid)
    if master is None:
        return None
    total = master[1]
    workers = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] == server.pid:
                total += stat[1]
                workers.add(int(entry.name))
    return total, frozenset(workers)


def run_measured(wrk: str, server: Server, path: str, duration: int) -> WrkResult:
    """One wrk run, with the server's CPU time per request."""
    before = server_cpu(server)
    result = run_wrk(wrk, server.url(path), duration)
    after = server_cpu(server)
    if before is not None and after is not None and before[1] == after[1]:
        result.cpu_us_per_request = (after[0] - before[0]) / result.requests * 1e6
    return result


def gunicorn_command(module: str, port: int, folder: Path, log: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--no-control-socket",
        "-w",
        str(WORKERS),
        "-k",
        "sync",
        "-b",
        f"{HOST}:{port}",
        "--chdir",
        str(folder),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
        f"{module}:app",
    ]


def start_server(name: str, module: str, folder: Path, env: dict[str, str]) -> Server:
    """Start gunicorn and wait (bounded) until it answers; retry on a taken port."""
    last_error = ""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        log = folder / f"{name}-{attempt}.log"
        process = subprocess.Popen(
            gunicorn_command(module, port, folder, log),
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C reaches us, and we stop it
        )
        server = Server(name, module, port, log, process)
        _started.append(server)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"gunicorn exited with {process.returncode}:\n{server.log_tail()}"
                break
            try:
                status, _, _ = http_get(port, "/ok", timeout=2.0)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return server
            last_error = f"GET /ok answered {status}"
            time.sleep(0.1)
        else:
            last_error = f"no answer within {START_TIMEOUT:g} s:\n{server.log_tail()}"
        stop_server(server)
    raise BenchError(f"could not start the {name} app: {last_error}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_server(server: Server) -> None:
    """SIGTERM the master, SIGKILL its group after STOP_TIMEOUT; never raises."""
    process = server.process
    pgid = process.pid  # start_new_session: the master leads its own group
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
    # Workers that outlived their master (they stop by themselves, but not at once).
    deadline = time.monotonic() + STOP_TIMEOUT
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if server in _started:
        _started.remove(server)


#: Every server started and not yet stopped, for the final clean-up.
_started: list[Server] = []


def stop_all() -> None:
    for server in list(_started):
        stop_server(server)


@contextlib.contextmanager
def servers_running(folder: Path, env: dict[str, str]) -> Iterator[dict[str, Server]]:
    """Both apps under gunicorn, stopped on the way out whatever happened."""
    try:
        plain = start_server("plain", "plain_app", folder, env)
        prodready = start_server("prodready", "prodready_app", folder, env)
        yield {"plain": plain, "prodready": prodready}
    finally:
        # A second Ctrl-C must not cut the clean-up short; it is bounded anyway.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)


def check_servers(servers: dict[str, Server], nonce: str) -> None:
    """Each port serves the app it should, and both apps answer /hello alike."""
    plain, prodready = servers["plain"], servers["prodready"]
    pages = {}
    for server in (plain, prodready):
        status, headers, body = http_get(server.port, "/hello")
        if status != 200 or nonce.encode() not in body:
            raise BenchError(f"{server.name} /hello answered {status}, not this run's page")
        if not headers.get("content-type", "").startswith("text/html"):
            raise BenchError(f"{server.name} /hello is not text/html")
        pages[server.name] = body
        status, _, body = http_get(server.port, "/ok")
        if status != 200 or body != b"ok":
            raise BenchError(f"{server.name} /ok answered {status} {body[:40]!r}")
    if pages["plain"] != pages["prodready"]:
        raise BenchError("the two apps answer /hello differently")
    status, headers, body = http_get(prodready.port, "/healthz")
    if status != 200 or not headers.get("content-type", "").startswith("application/health+json"):
        raise BenchError(f"prodready /healthz answered {status} {body[:60]!r}")
    status, _, _ = http_get(plain.port, "/healthz")
    if status != 404:
        raise BenchError(f"plain /healthz answered {status}: is ProdReady installed there?")


# --------------------------------------------------------------------------- report


@dataclass
class Summary:
    key: str
    label: str
    url: str
    rps_median: float
    rps_min: float
    rps_max: float
    p99_ms_median: float
    p99_ms_min: float
    p99_ms_max: float
    p50_ms_median: float
    cpu_us_median: float | None


@dataclass
class Ratio:
    key: str
    label: str
    metric: str
    value: float  # ratio of the medians
    per_round: list[float]  # paired ratios, round by round
    per_round_median: float
    target: float | None
    passed: bool | None  # the ratio of the medians against the target
    rounds_disagreeing: int  # rounds whose own ratio gives the other verdict


def summarise(variant: Variant, url: str, samples: Sequence[WrkResult]) -> Summary:
    rps = [s.rps for s in samples]
    p99 = [s.p99_ms for s in samples]
    return Summary(
        key=variant.key,
        label=variant.label,
        url=url,
        rps_median=statistics.median(rps),
        rps_min=min(rps),
        rps_max=max(rps),
        p99_ms_median=statistics.median(p99),
        p99_ms_min=min(p99),
        p99_ms_max=max(p99),
        p50_ms_median=statistics.median(s.p50_ms for s in samples),
        cpu_us_median=statistics.median(cpu) if (cpu := _cpu_values(samples)) else None,
    )


def _cpu_values(samples: Sequence[WrkResult]) -> list[float]:
    return [s.cpu_us_per_request for s in samples if s.cpu_us_per_request is not None]


def _metric(result: WrkResult | Summary, metric: str) -> float:
    if isinstance(result, Summary):
        values = {"rps": result.rps_median, "p99": result.p99_ms_median}
        cpu = result.cpu_us_median
    else:
        values = {"rps": result.rps, "p99": result.p99_ms}
        cpu = result.cpu_us_per_request
    return values[metric] if metric in values else (float("nan") if cpu is None else cpu)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else float("nan")


def _meets(ratio: float, metric: str, target: float) -> bool:
    """Throughput ratios must reach the target; p99 ratios must stay under it."""
    return ratio >= target if metric == "rps" else ratio <= target


def compare(
    summaries: dict[str, Summary], raw: dict[str, list[WrkResult]], comparison: Comparison
) -> Ratio:
    value = _ratio(
        _metric(summaries[comparison.variant], comparison.metric),
        _metric(summaries[comparison.baseline], comparison.metric),
    )
    per_round = [
        _ratio(_metric(a, comparison.metric), _metric(b, comparison.metric))
        for a, b in zip(raw[comparison.variant], raw[comparison.baseline], strict=True)
    ]
    passed: bool | None = None
    disagreeing = 0
    if comparison.target is not None:
        passed = _meets(value, comparison.metric, comparison.target)
        disagreeing = sum(
            1 for x in per_round if _meets(x, comparison.metric, comparison.target) != passed
        )
    return Ratio(
        key=comparison.key,
        label=comparison.label,
        metric=comparison.metric,
        value=value,
        per_round=per_round,
        per_round_median=statistics.median(per_round),
        target=comparison.target,
        passed=passed,
        rounds_disagreeing=disagreeing,
    )


REPOSITORY = Path(__file__).resolve().parent.parent


def code_version() -> str:
    """The commit of the code under test, with "+changes" when files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}+changes" if changed else head


def machine_info() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "nproc": usable if usable is not None else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "gunicorn": version("gunicorn"),
        "flask": version("flask"),
        "werkzeug": version("werkzeug"),
        "flask_prodready": version("flask-prodready"),
        "code": code_version(),
        "loadavg_start": list(os.getloadavg()),
    }


def format_table(summaries: Sequence[Summary], raw: dict[str, list[WrkResult]]) -> str:
    header = (
        f"{'variant':<20} {'req/s median':>12} {'req/s min..max':>17} "
        f"{'p99 ms median':>13} {'p99 ms min..max':>16} {'p50 ms':>7} {'CPU us/req':>10}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.label:<20} {s.rps_median:>12.1f} "
            f"{f'{s.rps_min:.0f}..{s.rps_max:.0f}':>17} "
            f"{s.p99_ms_median:>13.2f} "
            f"{f'{s.p99_ms_min:.2f}..{s.p99_ms_max:.2f}':>16} "
            f"{s.p50_ms_median:>7.2f} "
            f"{'n/a' if s.cpu_us_median is None else f'{s.cpu_us_median:.0f}':>10}"
        )
    lines.append("")
    lines.append("req/s per round (in run order):")
    for s in summaries:
        rounds = "  ".join(f"{r.rps:8.1f}" for r in raw[s.key])
        lines.append(f"  {s.label:<20} {rounds}")
    return "\n".join(lines)


def format_cpu_cost(summaries: dict[str, Summary]) -> str:
    """The observation's cost in server CPU per request: less noisy than throughput."""
    plain = summaries["plain-hello"].cpu_us_median
    observed = summaries["prodready-hello"].cpu_us_median
    if plain is None or observed is None or plain <= 0:
        return "server CPU per /hello request: not measured (no /proc, or a worker restarted)"
    extra = observed - plain
    return (
        f"server CPU per /hello request (master and workers, median): plain {plain:.0f} us, "
        f"with ProdReady {observed:.0f} us, difference {extra:+.0f} us ({extra / plain:+.1%})"
    )


def format_ratios(ratios: Sequence[Ratio]) -> str:
    lines = []
    for r in ratios:
        if r.target is None:
            target, verdict = "(no target)", "info"
        elif r.metric == "rps":
            target, verdict = f"target >= {r.target:.2f}", "PASS" if r.passed else "MISS"
        else:
            target, verdict = f"target <= {r.target:.2f}", "PASS" if r.passed else "MISS"
        if r.rounds_disagreeing:
            verdict += f" (noisy: {r.rounds_disagreeing}/{len(r.per_round)} rounds disagree)"
        rounds = " ".join(f"{x:.3f}" for x in r.per_round)
        lines.append(f"  {r.label:<42} {r.value:6.3f}  {target:<15} {verdict}")
        lines.append(f"  {'':<42} per round: {rounds} (median {r.per_round_median:.3f})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/overhead.py",
        description="Throughput and p99 latency of a Flask app with and without ProdReady, "
        "under gunicorn, measured with wrk on 127.0.0.1.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ROUNDS} rounds of {QUICK_DURATION} s "
        f"(default: {DEFAULT_ROUNDS} rounds of {DEFAULT_DURATION} s)",
    )
    parser.add_argument("--duration", type=int, metavar="S", help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds over the four variants")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write raw numbers and summary")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION if args.quick else DEFAULT_DURATION
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    if not 1 <= args.rounds <= 100:
        parser.error("--rounds must be between 1 and 100")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally, servers included


def measure(args: argparse.Namespace, wrk: str, folder: Path) -> dict[str, Any]:
    nonce = secrets.token_hex(8)
    (folder / "bench_apps.py").write_text(APPS_MODULE)
    (folder / "plain_app.py").write_text(PLAIN_MODULE)
    (folder / "prodready_app.py").write_text(PRODREADY_MODULE)
    env = dict(os.environ)
    env.pop("PRODREADY_TOKEN", None)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p),
        PYTHONDONTWRITEBYTECODE="1",
        BENCH_NONCE=nonce,
        BENCH_SECRET_KEY=secrets.token_hex(32),
        BENCH_PRODREADY_TOKEN=secrets.token_urlsafe(32),
    )

    raw: dict[str, list[WrkResult]] = {v.key: [] for v in VARIANTS}
    urls: dict[str, str] = {}
    with servers_running(folder, env) as servers:
        check_servers(servers, nonce)
        for variant in VARIANTS:
            urls[variant.key] = servers[variant.server].url(variant.path)
        ports = ", ".join(f"{s.name} {HOST}:{s.port} (pid {s.pid})" for s in servers.values())
        print(f"servers : {ports}", flush=True)

        warmup = min(WARMUP_SECONDS, args.duration)
        print(f"warm-up : {warmup} s per variant", flush=True)
        for variant in VARIANTS:
            run_wrk(wrk, urls[variant.key], warmup)

        for round_number in range(1, args.rounds + 1):
            cells = []
            for variant in VARIANTS:
                server = servers[variant.server]
                result = run_measured(wrk, server, variant.path, args.duration)
                raw[variant.key].append(result)
                cells.append(f"{variant.label} {result.rps:.0f} req/s p99 {result.p99_ms:.2f} ms")
            print(f"round {round_number}/{args.rounds}: " + " | ".join(cells), flush=True)

        # Every request of the run went to the right place: the servers are still there.
        for server in servers.values():
            if server.process.poll() is not None:
                raise BenchError(f"the {server.name} server died during the run")

    summaries = {v.key: summarise(v, urls[v.key], raw[v.key]) for v in VARIANTS}
    ratios = [compare(summaries, raw, c) for c in COMPARISONS]
    return {"raw": raw, "summaries": summaries, "ratios": ratios}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2

    command_line = shlex.join([sys.executable, *sys.argv])
    machine = machine_info()
    machine["wrk"] = wrk_version(wrk)
    total = len(VARIANTS) * (args.rounds * args.duration + min(WARMUP_SECONDS, args.duration))
    print("flask-prodready overhead benchmark")
    print(f"command : {command_line}")
    print(
        f"machine : nproc {machine['nproc']}, {machine['python']}, gunicorn {machine['gunicorn']}, "
        f"{machine['wrk']}, flask {machine['flask']}, werkzeug {machine['werkzeug']}, "
        f"flask-prodready {machine['flask_prodready']}"
    )
    print(f"          {machine['platform']}, load average {machine['loadavg_start'][0]:.2f}")
    print(f"code    : {machine['code']} ({REPOSITORY})")
    print(
        f"setup   : gunicorn -w {WORKERS} sync workers per app; "
        f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s --latency; "
        f"{args.rounds} rounds, order {' > '.join(v.label for v in VARIANTS)}; about {total} s",
        flush=True,
    )

    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="prodready-bench-") as tmp:
            result = measure(args, wrk, Path(tmp))
    except (BenchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; every server started was stopped", file=sys.stderr)
        return 130
    machine["loadavg_end"] = list(os.getloadavg())

    summaries: dict[str, Summary] = result["summaries"]
    ratios: list[Ratio] = result["ratios"]
    raw: dict[str, list[WrkResult]] = result["raw"]
    print()
    print(format_table(list(summaries.values()), raw))
    print()
    print("ratios (of the medians; per round: paired runs of the same round)")
    print(format_ratios(ratios))
    print()
    print(format_cpu_cost(summaries))
    print()
    missed = [r.label for r in ratios if r.passed is False]
    verdict = "all targets met" if not missed else f"{len(missed)} target(s) missed"
    noisy = [r for r in ratios if r.rounds_disagreeing]
    if noisy:
        verdict += (
            f" ({len(noisy)} verdict(s) not borne out by every round: too noisy to be sure, "
            "rerun with more rounds on a quieter machine)"
        )
    elapsed = time.monotonic() - started
    print(
        f"result  : {verdict}; took {elapsed:.0f} s; load average at the end "
        f"{machine['loadavg_end'][0]:.2f}"
    )

    if args.json is not None:
        document = {
            "command": command_line,
            "machine": machine,
            "settings": {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "warmup_s": min(WARMUP_SECONDS, args.duration),
                "workers": WORKERS,
                "wrk_threads": WRK_THREADS,
                "wrk_connections": WRK_CONNECTIONS,
                "order": [v.key for v in VARIANTS],
            },
            "raw": {key: [asdict(r) for r in results] for key, results in raw.items()},
            "summary": {key: asdict(s) for key, s in summaries.items()},
            "ratios": [asdict(r) for r in ratios],
            "all_targets_met": not missed,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"json    : {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
