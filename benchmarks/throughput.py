"""Throughput and p99 under wrk: the variants, run interleaved round by round.

Three gunicorn apps of one shape (see :mod:`benchmarks.apps`) are served side by side,
two sync workers each, and wrk drives eight variants round by round (every other round
in the reverse order, so that no variant always comes first):

* ``plain /hello`` and ``prodready /hello``: an ordinary route without and with ProdReady;
* ``plain /ok``: a bare route returning "ok", the cheapest answer a Flask app gives;
* ``prodready /healthz``: ProdReady's liveness answer, given in front of Flask;
* ``prodready /_readiness``: the full report, served from ProdReady's cache (warmed
  first; the token goes in with ``wrk -H``);
* ``flask-healthz /healthz/live`` and ``py-healthcheck /healthcheck``: the liveness
  endpoints of two other extensions, each with no check configured;
* ``plain /ok (again)``: the bare route a second time in each round. Compared with the
  first, it shows how far two measurements of the very same thing differ on this machine
  in this run: the noise floor every other ratio should be read against.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .apps import AppFolder
from .common import BenchError, http_get
from .servers import Server, server_cpu
from .stats import HIGHER, LOWER, Target, median, meets, ratio
from .wrk import WrkResult, run_wrk

#: Longest warm-up per variant, in seconds (never longer than one measurement).
WARMUP_SECONDS = 2

HELLO_TARGET = 0.97
HEALTHZ_TARGET = 0.95
HEALTHZ_P99_LIMIT = 1.10
READINESS_CACHED_TARGET = 0.85
PEER_TARGET = 1.0


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    server: str  # "plain", "prodready" or "peers"
    path: str
    authorised: bool = False  # sends the bearer token
    non_2xx_allowed: bool = False


VARIANTS = (
    Variant("plain-hello", "plain /hello", "plain", "/hello"),
    Variant("prodready-hello", "prodready /hello", "prodready", "/hello"),
    Variant("plain-ok", "plain /ok (bare)", "plain", "/ok"),
    Variant("prodready-healthz", "prodready /healthz", "prodready", "/healthz"),
    # A report of an app that is not production-ready answers 503, by design.
    Variant(
        "prodready-readiness",
        "prodready /_readiness",
        "prodready",
        "/_readiness",
        authorised=True,
        non_2xx_allowed=True,
    ),
    Variant("flask-healthz", "flask-healthz /live", "peers", "/healthz/live"),
    Variant("py-healthcheck", "py-healthcheck", "peers", "/healthcheck"),
    Variant("plain-ok-again", "plain /ok (again)", "plain", "/ok"),
)


@dataclass(frozen=True)
class Comparison:
    key: str
    label: str
    variant: str
    baseline: str
    metric: str  # "rps" (higher is better), "p99" or "cpu" (lower is better)
    target: float | None  # None: shown only


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
        "healthz-cpu", "/healthz vs bare /ok, CPU/req", "prodready-healthz", "plain-ok", "cpu", None
    ),
    Comparison(
        "readiness-rps",
        "/_readiness (cached) vs bare /ok, req/s",
        "prodready-readiness",
        "plain-ok",
        "rps",
        READINESS_CACHED_TARGET,
    ),
    Comparison(
        "readiness-p99",
        "/_readiness (cached) vs bare /ok, p99",
        "prodready-readiness",
        "plain-ok",
        "p99",
        None,
    ),
    Comparison(
        "peer-flask-healthz-rps",
        "/healthz vs flask-healthz, req/s",
        "prodready-healthz",
        "flask-healthz",
        "rps",
        PEER_TARGET,
    ),
    Comparison(
        "peer-flask-healthz-p99",
        "/healthz vs flask-healthz, p99",
        "prodready-healthz",
        "flask-healthz",
        "p99",
        None,
    ),
    Comparison(
        "peer-py-healthcheck-rps",
        "/healthz vs py-healthcheck, req/s",
        "prodready-healthz",
        "py-healthcheck",
        "rps",
        None,
    ),
    Comparison(
        "peer-py-healthcheck-p99",
        "/healthz vs py-healthcheck, p99",
        "prodready-healthz",
        "py-healthcheck",
        "p99",
        None,
    ),
    Comparison(
        "flask-healthz-vs-ok-rps",
        "flask-healthz vs bare /ok, req/s",
        "flask-healthz",
        "plain-ok",
        "rps",
        None,
    ),
    Comparison(
        "noise-floor-rps",
        "plain /ok (again) vs plain /ok: the noise floor, req/s",
        "plain-ok-again",
        "plain-ok",
        "rps",
        None,
    ),
    Comparison(
        "py-healthcheck-vs-ok-rps",
        "py-healthcheck vs bare /ok, req/s",
        "py-healthcheck",
        "plain-ok",
        "rps",
        None,
    ),
)


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
    #: The headline: the median of the paired ratios (the two runs of one round are
    #: seconds apart, so drift of the machine between rounds cancels out).
    value: float
    per_round: list[float]  # paired ratios, round by round
    of_medians: float  # the ratio of the two variants' medians, for information
    target: float | None
    passed: bool | None  # the ratio of the medians against the target
    rounds_disagreeing: int  # rounds whose own ratio gives the other verdict


@dataclass
class ThroughputResult:
    raw: dict[str, list[WrkResult]] = field(default_factory=dict)
    summaries: dict[str, Summary] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    readiness_status: int = 0

    def targets(self) -> list[Target]:
        found = []
        for r in self.ratios:
            if r.target is not None:
                direction = HIGHER if r.metric == "rps" else LOWER
                found.append(
                    Target.of(r.key, r.label, r.value, r.target, direction, "x", r.per_round)
                )
        return found


def summarise(variant: Variant, url: str, samples: Sequence[WrkResult]) -> Summary:
    rps = [s.rps for s in samples]
    p99 = [s.p99_ms for s in samples]
    cpu = [s.cpu_us_per_request for s in samples if s.cpu_us_per_request is not None]
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
        cpu_us_median=statistics.median(cpu) if cpu else None,
    )


def _metric(result: WrkResult | Summary, metric: str) -> float:
    if isinstance(result, Summary):
        values = {"rps": result.rps_median, "p99": result.p99_ms_median}
        cpu = result.cpu_us_median
    else:
        values = {"rps": result.rps, "p99": result.p99_ms}
        cpu = result.cpu_us_per_request
    return values[metric] if metric in values else (float("nan") if cpu is None else cpu)


def compare(
    summaries: Mapping[str, Summary], raw: Mapping[str, list[WrkResult]], comparison: Comparison
) -> Ratio:
    of_medians = ratio(
        _metric(summaries[comparison.variant], comparison.metric),
        _metric(summaries[comparison.baseline], comparison.metric),
    )
    per_round = [
        ratio(_metric(a, comparison.metric), _metric(b, comparison.metric))
        for a, b in zip(raw[comparison.variant], raw[comparison.baseline], strict=True)
    ]
    value = median(per_round)
    passed: bool | None = None
    disagreeing = 0
    if comparison.target is not None:
        direction = HIGHER if comparison.metric == "rps" else LOWER
        passed = meets(value, direction, comparison.target)
        disagreeing = sum(1 for x in per_round if meets(x, direction, comparison.target) != passed)
    return Ratio(
        key=comparison.key,
        label=comparison.label,
        metric=comparison.metric,
        value=value,
        per_round=per_round,
        of_medians=of_medians,
        target=comparison.target,
        passed=passed,
        rounds_disagreeing=disagreeing,
    )


# --------------------------------------------------------------------------- checks


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def check_servers(servers: Mapping[str, Server], apps: AppFolder) -> int:
    """Each port serves the app it should; returns the status /_readiness answers."""
    pages = {}
    for server in servers.values():
        status, headers, body = http_get(server.port, "/hello")
        _expect(status == 200 and apps.nonce.encode() in body, f"{server.name} /hello: {status}")
        _expect(headers.get("content-type", "").startswith("text/html"), f"{server.name} /hello")
        pages[server.name] = body
        status, _, body = http_get(server.port, "/ok")
        _expect(status == 200 and body == b"ok", f"{server.name} /ok answered {status}")
    _expect(len(set(pages.values())) == 1, "the apps answer /hello differently")
    prodready, plain, peers = (
        servers["prodready"].port,
        servers["plain"].port,
        servers["peers"].port,
    )
    status, headers, body = http_get(prodready, "/healthz")
    _expect(
        status == 200 and headers.get("content-type", "").startswith("application/health+json"),
        f"prodready /healthz answered {status} {body[:60]!r}",
    )
    _expect(http_get(plain, "/healthz")[0] == 404, "plain /healthz: is ProdReady installed there?")
    status, _, body = http_get(peers, "/healthz/live")
    _expect(status == 200 and b"OK" in body, f"flask-healthz answered {status} {body[:60]!r}")
    status, _, body = http_get(peers, "/healthcheck")
    _expect(
        status == 200 and json.loads(body).get("status") == "success",
        f"py-healthcheck answered {status} {body[:60]!r}",
    )
    _expect(http_get(prodready, "/_readiness")[0] == 401, "/_readiness without the token")
    return readiness_status(servers["prodready"], apps)


def readiness_status(server: Server, apps: AppFolder, *, cached: bool = False) -> int:
    """The status of an authorised /_readiness (a JSON report); with ``cached``, every
    worker must answer it from its cache (a few requests reach both)."""
    statuses = set()
    for _ in range(8 if cached else 1):
        status, headers, body = http_get(server.port, "/_readiness", apps.auth, timeout=30.0)
        _expect(status in (200, 503), f"/_readiness answered {status} {body[:80]!r}")
        _expect("json" in headers.get("content-type", ""), "/_readiness is not JSON")
        report = json.loads(body)
        if cached:
            _expect(report.get("cached") is True, "/_readiness was not served from the cache")
        statuses.add(status)
    _expect(len(statuses) == 1, f"/_readiness answered {sorted(statuses)}")
    return statuses.pop()


# --------------------------------------------------------------------------- run


def run_measured(
    wrk: str, server: Server, variant: Variant, apps: AppFolder, duration: int
) -> WrkResult:
    """One wrk run, with the server's CPU time per request."""
    before = server_cpu(server)
    result = run_wrk(
        wrk,
        server.url(variant.path),
        duration,
        apps.auth if variant.authorised else None,
        non_2xx_allowed=variant.non_2xx_allowed,
    )
    after = server_cpu(server)
    if before is not None and after is not None and before[1] == after[1]:
        result.cpu_us_per_request = (after[0] - before[0]) / result.requests * 1e6
    return result


def measure(
    wrk: str, servers: Mapping[str, Server], apps: AppFolder, rounds: int, duration: int
) -> ThroughputResult:
    result = ThroughputResult(raw={v.key: [] for v in VARIANTS})
    status = check_servers(servers, apps)
    warmup = min(WARMUP_SECONDS, duration)
    print(f"warm-up : {warmup} s per variant", flush=True)
    for variant in VARIANTS:
        headers = apps.auth if variant.authorised else None
        run_wrk(
            wrk, servers[variant.server].url(variant.path), warmup, headers, non_2xx_allowed=True
        )
    # Both workers have built their report: from now on /_readiness comes from the cache.
    result.readiness_status = readiness_status(servers["prodready"], apps, cached=True)
    if result.readiness_status != status:
        raise BenchError("/_readiness changed its status during the warm-up")

    for number in range(1, rounds + 1):
        cells = []
        # Every other round runs backwards, so that no variant always comes first.
        for variant in VARIANTS if number % 2 else tuple(reversed(VARIANTS)):
            sample = run_measured(wrk, servers[variant.server], variant, apps, duration)
            if variant.non_2xx_allowed:
                expected = 0 if status == 200 else sample.requests
                if sample.non_2xx_3xx != expected:
                    raise BenchError(f"{variant.label}: not every answer was {status} under wrk")
            result.raw[variant.key].append(sample)
            cells.append(f"{variant.label} {sample.rps:.0f}/s p99 {sample.p99_ms:.1f}ms")
        print(f"round {number}/{rounds}: " + " | ".join(cells), flush=True)

    for server in servers.values():
        if not server.alive():
            raise BenchError(f"the {server.name} server died during the run")
    # Still the same answer, still from the cache.
    if readiness_status(servers["prodready"], apps, cached=True) != status:
        raise BenchError("/_readiness changed its status during the run")
    urls = {v.key: servers[v.server].url(v.path) for v in VARIANTS}
    result.summaries = {v.key: summarise(v, urls[v.key], result.raw[v.key]) for v in VARIANTS}
    result.ratios = [compare(result.summaries, result.raw, c) for c in COMPARISONS]
    return result


# --------------------------------------------------------------------------- output


def format_table(result: ThroughputResult) -> str:
    header = (
        f"{'variant':<22} {'req/s median':>12} {'req/s min..max':>15} "
        f"{'p99 ms median':>13} {'p99 ms min..max':>15} {'p50 ms':>7} {'CPU us/req':>10}"
    )
    lines = [header, "-" * len(header)]
    for s in result.summaries.values():
        lines.append(
            f"{s.label:<22} {s.rps_median:>12.1f} "
            f"{f'{s.rps_min:.0f}..{s.rps_max:.0f}':>15} "
            f"{s.p99_ms_median:>13.2f} "
            f"{f'{s.p99_ms_min:.2f}..{s.p99_ms_max:.2f}':>15} "
            f"{s.p50_ms_median:>7.2f} "
            f"{'n/a' if s.cpu_us_median is None else f'{s.cpu_us_median:.0f}':>10}"
        )
    lines.append("")
    lines.append("req/s per round (in run order):")
    for s in result.summaries.values():
        rounds = "  ".join(f"{r.rps:8.1f}" for r in result.raw[s.key])
        lines.append(f"  {s.label:<22} {rounds}")
    return "\n".join(lines)


def format_ratios(ratios: Sequence[Ratio]) -> str:
    lines = []
    for r in ratios:
        if r.target is None:
            target, verdict = "(no target)", "info"
        else:
            sign = ">=" if r.metric == "rps" else "<="
            target, verdict = f"target {sign} {r.target:.2f}", "PASS" if r.passed else "MISS"
        if r.rounds_disagreeing:
            verdict += f" (noisy: {r.rounds_disagreeing}/{len(r.per_round)} rounds disagree)"
        rounds = " ".join(f"{x:.3f}" for x in r.per_round)
        lines.append(f"  {r.label:<42} {r.value:6.3f}  {target:<15} {verdict}")
        lines.append(f"  {'':<42} per round: {rounds}; ratio of medians {r.of_medians:.3f}")
    return "\n".join(lines)


def format_cpu_cost(summaries: Mapping[str, Summary]) -> str:
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
