"""Application time per request, without the network: direct WSGI calls, interleaved.

wrk measures what a client sees, which on a shared two-core machine moves by ten percent
or more between two runs of the very same server (see the noise floor of the throughput
scenario). A few microseconds of overhead drown in that. Here the apps of
:mod:`benchmarks.apps` are called as WSGI applications in one fresh Python process (no
server, no socket, no client competing for the cores), round after round, every other
round in the reverse order, and each round's variants are compared with each other:
what ProdReady adds to Flask's own work for one request, to the microsecond.

Shown next to the wrk targets, never instead of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

from .apps import AppFolder
from .common import BenchError
from .stats import median, ratio

#: Seconds the measuring process may take.
PROCESS_TIMEOUT = 300

# Runs in a fresh interpreter with the apps' environment; prints one JSON object.
SCRIPT = r"""
import json, sys, time
from werkzeug.test import EnvironBuilder
from plain_app import app as plain
from prodready_app import app as prodready

rounds, calls, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
auth = {"Authorization": f"Bearer {token}"}
variants = {
    "plain-hello": (plain, "/hello", {}),
    "prodready-hello": (prodready, "/hello", {}),
    "plain-ok": (plain, "/ok", {}),
    "prodready-readiness": (prodready, "/_readiness", auth),
    "prodready-healthz": (prodready, "/healthz", {}),
}
environs = {
    key: (app, EnvironBuilder(path=path, headers=headers, base_url="http://127.0.0.1:8000").get_environ())
    for key, (app, path, headers) in variants.items()
}

def start_response(status, headers, exc_info=None):
    return None

def call(app, environ):
    body = app(dict(environ), start_response)
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()

def per_request_us(app, environ, n):
    begun = time.perf_counter()
    for _ in range(n):
        call(app, environ)
    return (time.perf_counter() - begun) / n * 1e6

for app, environ in environs.values():  # warm: imports, the cached report, the probe
    per_request_us(app, environ, 200)
samples = {key: [] for key in environs}
order = list(environs)
for number in range(rounds):
    for key in (order if number % 2 == 0 else order[::-1]):
        samples[key].append(per_request_us(*environs[key], calls))
print(json.dumps(samples))
"""

#: (key, label, variant, baseline): time ratios shown as throughput ratios (baseline
#: time / variant time), so that they read like the wrk ratios.
COMPARISONS = (
    ("hello", "prodready /hello vs plain /hello", "prodready-hello", "plain-hello"),
    ("readiness", "/_readiness (cached) vs bare /ok", "prodready-readiness", "plain-ok"),
    ("healthz", "/healthz vs bare /ok", "prodready-healthz", "plain-ok"),
)


@dataclass
class InProcessResult:
    rounds: int
    calls: int
    samples_us: dict[str, list[float]] = field(default_factory=dict)

    def median_us(self, key: str) -> float:
        return median(self.samples_us[key])

    def paired(self, variant: str, baseline: str) -> list[float]:
        """Baseline time / variant time, round by round (above 1: the variant is faster)."""
        return [
            ratio(base, own)
            for own, base in zip(self.samples_us[variant], self.samples_us[baseline], strict=True)
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "calls": self.calls,
            "samples_us": self.samples_us,
            "medians_us": {key: self.median_us(key) for key in self.samples_us},
            "ratios": {
                key: median(self.paired(variant, baseline))
                for key, _, variant, baseline in COMPARISONS
            },
        }


def measure(apps: AppFolder, rounds: int, calls: int) -> InProcessResult:
    """Run the measuring process and collect its samples."""
    print(f"inproc  : {rounds} rounds of {calls} WSGI calls per variant, one process", flush=True)
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(rounds), str(calls), apps.token],
        cwd=apps.folder,
        env=apps.env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"the in-process measurement failed: {tail[0]}")
    try:
        samples: dict[str, list[float]] = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError("the in-process measurement printed no result") from exc
    return InProcessResult(rounds=rounds, calls=calls, samples_us=samples)


def format_result(result: InProcessResult) -> str:
    lines = [f"  {'variant':<22} {'us/request median':>18} {'min..max':>16}"]
    for key, values in result.samples_us.items():
        lines.append(
            f"  {key:<22} {result.median_us(key):>18.1f} {min(values):>7.1f}..{max(values):<7.1f}"
        )
    lines.append("  as throughput ratios (baseline time / variant time), median of the rounds:")
    for _, label, variant, baseline in COMPARISONS:
        paired = result.paired(variant, baseline)
        extra = result.median_us(variant) - result.median_us(baseline)
        lines.append(
            f"    {label:<36} {median(paired):.3f}  ({extra:+.1f} us per request; rounds "
            f"{min(paired):.3f}..{max(paired):.3f})"
        )
    return "\n".join(lines)
