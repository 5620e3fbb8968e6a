"""wrk: one bounded run, and its text output parsed."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from .common import BenchError

WRK_THREADS = 2
WRK_CONNECTIONS = 16
#: Seconds wrk may run beyond its own duration before it is killed.
WRK_GRACE = 30.0


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


def wrk_command(
    wrk: str, url: str, duration: int, headers: Mapping[str, str] | None = None
) -> list[str]:
    command = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    return [*command, url]


def run_wrk(
    wrk: str,
    url: str,
    duration: int,
    headers: Mapping[str, str] | None = None,
    *,
    non_2xx_allowed: bool = False,
) -> WrkResult:
    """One wrk run of ``duration`` seconds, killed if it overruns by WRK_GRACE.

    Non-2xx/3xx answers fail the run unless ``non_2xx_allowed`` (a readiness report of an
    app that is not ready answers 503 by design; its status is checked before and after).
    """
    command = wrk_command(wrk, url, duration, headers)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + WRK_GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:g} s: {url}") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode} on {url}:\n{done.stderr}")
    result = parse_wrk(done.stdout)
    if result.non_2xx_3xx and not non_2xx_allowed:
        raise BenchError(f"{url} answered {result.non_2xx_3xx} non-2xx/3xx responses under wrk")
    if result.requests == 0:
        raise BenchError(f"wrk completed no request on {url}")
    return result


def wrk_version(wrk: str) -> str:
    # `wrk -v` prints its version and usage, and exits non-zero.
    try:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith("wrk "):
            return line.split(" Copyright", 1)[0].strip()
    return "unknown"
