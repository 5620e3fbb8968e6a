"""What the live checks share: the server's evidence over the window, or a skip saying why
there is not enough of it to judge."""

from __future__ import annotations

from ..engine.context import CheckContext
from ..engine.evidence import MIN_SAMPLE, Evidence

NO_TRAFFIC = (
    "the server has not served any request in the evidence window (besides the health endpoints)"
)


def observed_traffic(ctx: CheckContext) -> Evidence:
    """The server's traffic over the window; skips the check while there is too little of
    it for a verdict (one odd request must not decide one)."""
    traffic = ctx.observation
    if traffic is None or traffic.requests == 0:
        ctx.skip(NO_TRAFFIC)
    if traffic.requests < MIN_SAMPLE:
        ctx.skip(
            f"the server has served {traffic.requests} request(s) in the last "
            f"{traffic.window:g} s; a live verdict needs at least {MIN_SAMPLE}"
        )
    return traffic
