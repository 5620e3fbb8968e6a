"""What the live checks share: this worker's traffic, or a skip saying there is none yet."""

from __future__ import annotations

from ..engine.context import CheckContext
from ..engine.observation import TrafficSnapshot

NO_TRAFFIC = "this worker has not served any request yet (besides the health endpoints)"


def observed_traffic(ctx: CheckContext) -> TrafficSnapshot:
    """The worker's traffic so far; skips the check while there is none to judge."""
    traffic = ctx.observation
    if traffic is None or traffic.requests == 0:
        ctx.skip(NO_TRAFFIC)
    return traffic
