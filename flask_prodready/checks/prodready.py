"""``prodready.*``: the extension's own configuration.

(``prodready.check_crashed`` and ``prodready.check_timeout`` are reported by the runner.)
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Iterator

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import check


@check(
    "prodready.unknown_silence",
    level=Level.WARNING,
    title="PRODREADY_SILENCED names only existing check ids",
    hint="Fix the id (see `flask readiness --list`) or remove the entry: a misspelt id "
    "silences nothing.",
)
def check_unknown_silence(ctx: CheckContext) -> Iterator[Finding]:
    known = sorted(ctx.check_ids)
    for check_id, silence in sorted(ctx.settings.silenced.items()):
        renamed = ctx.check_aliases.get(check_id)
        if renamed is not None:
            yield ctx.finding(
                f"{silence.origin} names {check_id!r}, the former id of {renamed!r}: it "
                f"still silences {renamed!r}, but name it by its id.",
                level=Level.INFO,
                hint=f"Rename the entry to {renamed!r}.",
                observed=check_id,
            )
        elif check_id not in known:
            close = difflib.get_close_matches(check_id, known, n=1)
            suggestion = f" Did you mean {close[0]!r}?" if close else ""
            yield ctx.finding(
                f"{silence.origin} names {check_id!r}, which is not a check id.{suggestion}",
                observed=check_id,
            )


@check(
    "prodready.silence_expired",
    level=Level.WARNING,
    title="No silence has outlived its until date",
    hint="Fix what the check reports, or give the silence a later `until` date if the "
    "reason still holds, or remove it.",
)
def check_silence_expired(ctx: CheckContext) -> Iterator[Finding]:
    # The runner applies the same rule (Silence.expired): the day after `until`, the
    # finding it accepted counts again, and this says why.
    today = datetime.date.today()
    for check_id, silence in sorted(ctx.settings.silenced.items()):
        if silence.until is not None and silence.expired(today):
            until = silence.until.isoformat()
            yield ctx.finding(
                f"The silence of {check_id!r} in {silence.origin} expired on {until}: "
                f"{check_id!r} is no longer silenced.",
                observed={"id": check_id, "until": until},
            )
