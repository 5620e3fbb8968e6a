"""The JSON body of SPEC §5 (``application/health+json``), shared by HTTP and the CLI."""

from __future__ import annotations

import json

from ..engine.findings import Report


def render_json(report: Report) -> str:
    """The report as indented JSON; every value in it is already redacted."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
