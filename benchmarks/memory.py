"""A worker's memory with and without ProdReady, over 10,000 requests to an ordinary route.

Two fresh gunicorn servers, one sync worker each (so every request reaches the worker
that is measured): the plain app and the same app with ProdReady. The client sends
``GET /hello`` to both, one request at a time, alternating in blocks, and reads each
worker's ``VmRSS`` from ``/proc/<pid>/status`` at the checkpoints. What observation
keeps per worker is bounded (capped counters, a few samples), so the worker with
ProdReady should grow no more than the plain one between 1,000 and 10,000 requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .apps import MODULES, AppFolder
from .common import BenchError, http_get
from .servers import Server, start_server, stop_server, vm_rss_kib, worker_pids
from .stats import LOWER, Target

CHECKPOINTS = (1, 1_000, 2_000, 5_000, 10_000)
BLOCK = 250
#: Growth between 1,000 and 10,000 requests that observation may add, in MB.
GROWTH_LIMIT_MB = 2.0
KINDS = ("plain", "prodready")


@dataclass
class MemoryResult:
    #: RSS in KiB at each checkpoint (requests served), by app kind.
    rss_kib: dict[str, dict[int, int]] = field(default_factory=dict)
    worker_pid: dict[str, int] = field(default_factory=dict)

    def growth_mb(self, kind: str, start: int = 1_000, end: int = 10_000) -> float:
        points = self.rss_kib[kind]
        return (points[end] - points[start]) / 1024.0

    @property
    def added_growth_mb(self) -> float:
        """What ProdReady's worker grew beyond the plain one, 1,000 to 10,000 requests."""
        return self.growth_mb("prodready") - self.growth_mb("plain")

    def targets(self) -> list[Target]:
        return [
            Target.of(
                "memory-growth",
                "RSS growth 1k..10k requests, ProdReady minus plain",
                self.added_growth_mb,
                GROWTH_LIMIT_MB,
                LOWER,
                "MB",
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rss_kib": self.rss_kib,
            "worker_pid": self.worker_pid,
            "growth_1k_10k_mb": {kind: self.growth_mb(kind) for kind in self.rss_kib},
            "added_growth_mb": self.added_growth_mb,
        }


def _worker(server: Server) -> int:
    pids = worker_pids(server)
    if len(pids) != 1:
        raise BenchError(f"the {server.name} server has {len(pids)} workers, expected 1")
    return next(iter(pids))


def _send(server: Server, count: int, nonce: bytes) -> None:
    for _ in range(count):
        status, _, body = http_get(server.port, "/hello")
        if status != 200 or nonce not in body:
            raise BenchError(f"{server.name} /hello answered {status} during the memory run")


def measure(apps: AppFolder) -> MemoryResult:
    result = MemoryResult()
    servers: dict[str, Server] = {}
    try:
        for kind in KINDS:
            servers[kind] = start_server(
                f"{kind}-memory", MODULES[kind], apps.folder, apps.env, workers=1
            )
        print(
            f"memory  : 1 sync worker per app; GET /hello one at a time, alternating in blocks "
            f"of {BLOCK}; RSS at {', '.join(f'{c:,}' for c in CHECKPOINTS)} requests",
            flush=True,
        )
        served = dict.fromkeys(KINDS, 0)
        for kind, server in servers.items():
            result.worker_pid[kind] = _worker(server)
            result.rss_kib[kind] = {}
        # start_server's readiness requests went to /ok, and are not counted.
        for checkpoint in CHECKPOINTS:
            while served["plain"] < checkpoint:
                for kind in KINDS:
                    count = min(BLOCK, checkpoint - served[kind])
                    _send(servers[kind], count, apps.nonce.encode())
                    served[kind] += count
            for kind in KINDS:
                if _worker(servers[kind]) != result.worker_pid[kind]:
                    raise BenchError(f"the {kind} worker was replaced during the memory run")
                result.rss_kib[kind][checkpoint] = vm_rss_kib(result.worker_pid[kind])
            cells = ", ".join(f"{k} {result.rss_kib[k][checkpoint] / 1024:.1f} MB" for k in KINDS)
            print(f"  {checkpoint:>6,} requests served: {cells}", flush=True)
    finally:
        for server in servers.values():
            stop_server(server)
    return result


def format_result(result: MemoryResult) -> str:
    lines = [f"  {'requests':>10} " + " ".join(f"{kind + ' RSS MB':>16}" for kind in KINDS)]
    for checkpoint in CHECKPOINTS:
        cells = " ".join(f"{result.rss_kib[kind][checkpoint] / 1024:>16.2f}" for kind in KINDS)
        lines.append(f"  {checkpoint:>10,} {cells}")
    growth: Mapping[str, float] = {kind: result.growth_mb(kind) for kind in KINDS}
    last = CHECKPOINTS[-1]
    difference = (result.rss_kib["prodready"][last] - result.rss_kib["plain"][last]) / 1024
    lines.append(
        f"  growth 1,000..10,000: plain {growth['plain']:+.2f} MB, prodready "
        f"{growth['prodready']:+.2f} MB; ProdReady adds {result.added_growth_mb:+.2f} MB of growth"
    )
    lines.append(
        f"  RSS with ProdReady minus without, after {last:,} requests: {difference:+.2f} MB"
    )
    return "\n".join(lines)
