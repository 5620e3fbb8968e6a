"""``database.pool_budget``'s arithmetic: pool shapes, worker counts, the limits exceeded.

How many connections the app can open is the number of worker processes times what each
worker's pools hold, engine by engine; that is compared with every limit the server
states (its own, the role's, the database's) in :func:`budget_findings`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...engine.context import CheckContext
from ...engine.findings import Finding, Level
from .engines import CannotJudge, Database
from .facts import Facts


@dataclass(frozen=True)
class PoolShape:
    """How many connections one worker's pool of one engine can hold.

    ``capacity`` is ``None`` for a pool without an upper bound (NullPool opens one per
    checkout; QueuePool with ``max_overflow=-1``).
    """

    capacity: int | None
    text: str


@dataclass(frozen=True)
class Member:
    database: Database
    shape: PoolShape
    facts: Facts


def pool_shape(database: Database) -> PoolShape:
    pool: Any = database.engine.pool
    kind = type(pool).__name__
    if hasattr(pool, "_max_overflow") and callable(getattr(pool, "size", None)):  # QueuePool
        size, overflow = int(pool.size()), int(pool._max_overflow)
        if overflow < 0:
            return PoolShape(None, f"pool_size {size}, max_overflow {overflow}: no upper bound")
        return PoolShape(size + overflow, f"pool_size {size} + max_overflow {overflow}")
    if kind == "NullPool":
        return PoolShape(None, "NullPool: one connection per checkout")
    if kind in ("StaticPool", "AssertionPool"):
        return PoolShape(1, f"{kind}: 1 connection")
    raise CannotJudge(f"{database.name} uses {kind}, whose size flask-prodready cannot tell")


def worker_counts(ctx: CheckContext) -> tuple[int, int | None, str]:
    """(worker processes, requests each serves at once if known, where that was read)."""
    settings = ctx.gunicorn
    if settings is not None:
        return settings.workers, settings.concurrency, settings.source
    raw = os.environ.get("WEB_CONCURRENCY")
    if raw is not None:
        try:
            workers = int(raw.strip())
        except ValueError:
            workers = 0
        if workers < 1:
            ctx.skip(f"WEB_CONCURRENCY={raw!r} is not a number of worker processes")
        return workers, None, f"WEB_CONCURRENCY={workers}"
    ctx.skip(
        "the number of worker processes is unknown: run under gunicorn, pass "
        "--gunicorn-config FILE, or set WEB_CONCURRENCY"
    )


def budget_findings(
    ctx: CheckContext,
    members: list[Member],
    workers: int,
    concurrency: int | None,
    source: str,
) -> Iterator[Finding]:
    """One finding per limit (the server's, a role's, a database's) the pools can exceed.

    ``peak`` is what requests alone can hold: per worker and engine, the pool's capacity,
    or fewer when the worker serves fewer requests at once (a pool is shared by the
    worker's threads, so threads do not multiply it). ``ceiling`` is what full pools hold.
    Over the limit, ``peak`` is an error; only ``ceiling`` a warning, since then only
    connections opened outside requests (threads, jobs) can get there.
    """
    groups: dict[tuple[str, ...], tuple[str, int, str, list[Member]]] = {}
    for member in members:
        facts, where = member.facts, member.database.host
        # (group key, who connects where, connections allowed or None if unlimited, why)
        limits: list[tuple[tuple[str, ...], str, int | None, str]] = [
            (
                ("server", where),
                f"to the server at {where}",
                facts.server_allows,
                facts.server_detail,
            ),
            (
                ("role", where, facts.role),
                f"as the role {facts.role!r} on {where}",
                facts.role_limit,
                "the role's CONNECTION LIMIT",
            ),
            (
                ("database", where, facts.database),
                f"to the database {facts.database!r} on {where}",
                facts.database_limit,
                "the database's CONNECTION LIMIT",
            ),
        ]
        for key, target, allowed, detail in limits:
            if allowed is not None:
                groups.setdefault(key, (target, allowed, detail, []))[3].append(member)

    for target, allowed, detail, group in groups.values():
        capacities = [m.shape.capacity for m in group]
        ceiling = None if None in capacities else workers * sum(c or 0 for c in capacities)
        if concurrency is None:  # then every capacity is bounded (checked by the caller)
            peak = workers * sum(c or 0 for c in capacities)
        else:
            peak = workers * sum(
                concurrency if c is None else min(c, concurrency) for c in capacities
            )
        observed = {
            "workers": workers,
            "workers_from": source,
            "concurrency": concurrency,
            "allowed": allowed,
            "pools_full": ceiling,
            "requests_peak": peak,
        }
        if len(group) == 1:
            pools = group[0].shape.text
        else:
            pools = "; ".join(f"{m.database.name}: {m.shape.text}" for m in group)
        if peak > allowed:
            capped = f"{concurrency} requests at a time; " if ceiling != peak else ""
            yield ctx.finding(
                f"{workers} workers ({source}) x {peak // workers} connections "
                f"({capped}{pools}) = {peak} connections {target}, more than the "
                f"{allowed} allowed ({detail}).",
                observed=observed,
            )
        elif ceiling is not None and ceiling > allowed:
            yield ctx.finding(
                f"{workers} workers ({source}) x {ceiling // workers} connections ({pools}) "
                f"= {ceiling} connections {target} once the pools fill, more than the "
                f"{allowed} allowed ({detail}). Requests alone hold at most {peak} "
                f"({concurrency} at a time per worker): only connections opened outside "
                "requests (threads, background jobs) can fill the pools.",
                level=Level.WARNING,
                observed=observed,
            )
