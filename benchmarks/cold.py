"""A cold report against its slowest single check: do the checks run in parallel?

The database app (Flask-SQLAlchemy on the run's PostgreSQL, ProdReady with
``PRODREADY_CACHE_SECONDS = 0``) is served by one gunicorn sync worker. Every round sends,
one after the other on new connections (every other round in the reverse order):

* the full report (``GET /_readiness``: every built-in check, cold);
* an empty report (every check excluded): what a request costs without any check;
* each check alone (``?exclude=`` every other id), for every check that runs here.

Each is timed from the client (request sent to body read) and summarised by its median
over the rounds. Were the checks run one after the other, the full report would take
about the sum of the single ones; run in parallel, about the slowest one.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .apps import AppFolder
from .common import HOST, BenchError
from .servers import Server
from .stats import LOWER, Target, median, ratio

COLD_TARGET = 1.5
#: gunicorn's request-line limit for this server (its maximum): a check alone is asked
#: for with an ``exclude=`` per other id.
REQUEST_LINE_LIMIT = 8190
#: Reasons of checks skipped before they start (no thread, nothing to time).
NOT_RUN = ("not built yet", "can only judge from")
WARMUP_REPORTS = 3


@dataclass
class CheckTiming:
    check_id: str
    status: str
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.samples_ms)


@dataclass
class ColdResult:
    rounds: int
    report_status: int = 0
    full_ms: list[float] = field(default_factory=list)
    empty_ms: list[float] = field(default_factory=list)
    checks: dict[str, CheckTiming] = field(default_factory=dict)
    not_run: list[str] = field(default_factory=list)

    @property
    def full_median_ms(self) -> float:
        return median(self.full_ms)

    @property
    def empty_median_ms(self) -> float:
        return median(self.empty_ms)

    @property
    def ranked(self) -> list[CheckTiming]:
        return sorted(self.checks.values(), key=lambda c: c.median_ms, reverse=True)

    @property
    def slowest(self) -> CheckTiming:
        return self.ranked[0]

    @property
    def per_round(self) -> list[float]:
        """Full report / slowest check, paired within each round."""
        return [
            ratio(full, alone)
            for full, alone in zip(self.full_ms, self.slowest.samples_ms, strict=True)
        ]

    @property
    def value(self) -> float:
        """The headline: the median of the paired per-round ratios."""
        return median(self.per_round)

    @property
    def of_medians(self) -> float:
        return ratio(self.full_median_ms, self.slowest.median_ms)

    def targets(self) -> list[Target]:
        return [
            Target.of(
                "cold-vs-slowest",
                "cold report vs its slowest single check, time",
                self.value,
                COLD_TARGET,
                LOWER,
                "x",
                self.per_round,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "report_status": self.report_status,
            "full_ms": self.full_ms,
            "full_median_ms": self.full_median_ms,
            "empty_ms": self.empty_ms,
            "empty_median_ms": self.empty_median_ms,
            "checks": {
                c.check_id: {
                    "status": c.status,
                    "samples_ms": c.samples_ms,
                    "median_ms": c.median_ms,
                }
                for c in self.ranked
            },
            "not_run": self.not_run,
            "slowest": self.slowest.check_id,
            "ratio": self.value,
            "ratio_of_medians": self.of_medians,
            "per_round": self.per_round,
            "sum_of_single_medians_ms": sum(c.median_ms for c in self.checks.values()),
        }


def _get(server: Server, path: str, apps: AppFolder) -> tuple[float, int, dict[str, Any]]:
    """(milliseconds, status, report) of one authorised GET on a new connection."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=60.0)
    try:
        begun = time.perf_counter()
        connection.request("GET", path, headers=apps.auth)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - begun) * 1000.0
    finally:
        connection.close()
    if response.status not in (200, 503):
        raise BenchError(f"GET {path[:80]} answered {response.status}: {body[:200]!r}")
    report: dict[str, Any] = json.loads(body)
    return elapsed, response.status, report


def _path(exclude: list[str]) -> str:
    query = "&".join(f"exclude={check_id}" for check_id in exclude)
    path = f"/_readiness?{query}" if query else "/_readiness"
    if len(f"GET {path} HTTP/1.1") > REQUEST_LINE_LIMIT:
        raise BenchError("too many check ids for one request line")
    return path


def measure(server: Server, apps: AppFolder, rounds: int) -> ColdResult:
    result = ColdResult(rounds=rounds)
    for _ in range(WARMUP_REPORTS):
        _, result.report_status, report = _get(server, "/_readiness", apps)
    if report.get("cached") is not False:
        raise BenchError("the cold report came from a cache")
    # Each check's one run (the body's checks hold a list of one object per check).
    outcomes: dict[str, dict[str, Any]] = {cid: runs[0] for cid, runs in report["checks"].items()}
    timed_out = [cid for cid, o in outcomes.items() if o.get("reason") == "timed out"]
    if timed_out:
        raise BenchError(f"checks timed out in the cold report: {', '.join(timed_out)}")
    every = sorted(outcomes)
    result.not_run = [
        cid for cid in every if str(outcomes[cid].get("reason", "")).startswith(NOT_RUN)
    ]
    runnable = [cid for cid in every if cid not in result.not_run]
    paths = {cid: _path([x for x in every if x != cid]) for cid in runnable}
    empty = _path(every)
    for cid in runnable:
        result.checks[cid] = CheckTiming(cid, outcomes[cid]["result"])
        _, _, alone = _get(server, paths[cid], apps)  # warm: the first run imports
        if sorted(alone["checks"]) != [cid]:
            raise BenchError(f"{cid} alone ran {sorted(alone['checks'])}")
    if _get(server, empty, apps)[2]["checks"]:
        raise BenchError("the empty report ran checks")

    print(
        f"cold    : {len(runnable)} checks run live ({len(result.not_run)} skipped before "
        f"starting); {rounds} rounds of 1 full + 1 empty + {len(runnable)} single reports",
        flush=True,
    )
    for number in range(1, rounds + 1):
        # Every other round runs backwards, so that nothing always comes first.
        singles = runnable if number % 2 else list(reversed(runnable))
        if number % 2 == 0:
            for cid in singles:
                result.checks[cid].samples_ms.append(_get(server, paths[cid], apps)[0])
        result.empty_ms.append(_get(server, empty, apps)[0])
        elapsed, status, report = _get(server, "/_readiness", apps)
        if status != result.report_status or report.get("cached"):
            raise BenchError("the cold report changed its status, or came from a cache")
        result.full_ms.append(elapsed)
        if number % 2:
            for cid in singles:
                result.checks[cid].samples_ms.append(_get(server, paths[cid], apps)[0])
        slowest = max(result.checks.values(), key=lambda c: c.samples_ms[-1])
        print(
            f"round {number}/{rounds}: full {elapsed:.1f} ms, empty {result.empty_ms[-1]:.1f} ms, "
            f"slowest alone {slowest.check_id} {slowest.samples_ms[-1]:.1f} ms",
            flush=True,
        )
    if not server.alive():
        raise BenchError("the database app died during the run")
    return result


def format_result(result: ColdResult, top: int = 8) -> str:
    full, total = result.full_ms, sum(c.median_ms for c in result.checks.values())
    lines = [
        f"  full report (cold, {len(result.checks)} checks)  median {result.full_median_ms:8.1f} ms"
        f"   min..max {min(full):.1f}..{max(full):.1f}",
        f"  empty report (the request alone)  median {result.empty_median_ms:8.1f} ms",
        f"  sum of the single-check medians          {total:8.1f} ms   (each with its request)",
        f"  slowest checks alone (median ms, {result.rounds} rounds):",
    ]
    for c in result.ranked[:top]:
        samples = f"{min(c.samples_ms):.1f}..{max(c.samples_ms):.1f}"
        lines.append(f"    {c.check_id:<34} {c.median_ms:8.1f}   min..max {samples:<13} {c.status}")
    rounds = " ".join(f"{x:.2f}" for x in result.per_round)
    lines.append(
        f"  full / slowest ({result.slowest.check_id}), median of the rounds' ratios: "
        f"{result.value:.3f} (ratio of medians {result.of_medians:.3f})"
    )
    lines.append(f"  per round: {rounds}")
    return "\n".join(lines)
