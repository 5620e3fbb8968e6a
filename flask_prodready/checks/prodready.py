"""``prodready.*``: the extension's own configuration.

(``prodready.check_crashed`` and ``prodready.check_timeout`` are reported by the runner.)
"""

from __future__ import annotations

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
    for check_id in sorted(ctx.settings.silenced):
        renamed = ctx.check_aliases.get(check_id)
        if renamed is not None:
            yield ctx.finding(
                f"PRODREADY_SILENCED names {check_id!r}, the former id of {renamed!r}: it "
                f"still silences {renamed!r}, but name it by its id.",
                level=Level.INFO,
                hint=f"Rename the entry to {renamed!r}.",
                observed=check_id,
            )
        elif check_id not in known:
            close = difflib.get_close_matches(check_id, known, n=1)
            suggestion = f" Did you mean {close[0]!r}?" if close else ""
            yield ctx.finding(
                f"PRODREADY_SILENCED names {check_id!r}, which is not a check id.{suggestion}",
                observed=check_id,
            )
