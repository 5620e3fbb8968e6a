"""The CLI's text report: grouped by area, worst first, readable at a glance.

Colour comes from ``click.style``; ``click.echo`` strips it when stdout is not a
terminal, so piping the output to a file or CI log gives plain text. Every text taken
from the report goes through :func:`printable` first: a report fetched from a server
(``prodready --url``) may carry what a client sent, and the terminal must only ever get
the control characters this renderer writes itself (its newlines and colours).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

import click

from ..engine.evidence import escape_controls
from ..engine.findings import Level, Report, Status
from ..engine.registry import DEFAULT_MODES, ENGINE, Check
from .grouping import findings_by_area, skipped_by_reason

_LEVEL_STYLE = {
    Level.CRITICAL: {"fg": "red", "bold": True},
    Level.ERROR: {"fg": "red"},
    Level.WARNING: {"fg": "yellow"},
    Level.INFO: {"fg": "blue"},
}
_STATUS_STYLE = {
    Status.FAIL: {"fg": "white", "bg": "red", "bold": True},
    Status.WARN: {"fg": "black", "bg": "yellow", "bold": True},
    Status.PASS: {"fg": "white", "bg": "green", "bold": True},
    Status.UNKNOWN: {"fg": "white", "bg": "magenta", "bold": True},
}
WIDTH = 100
INDENT = " " * 12


def printable(text: object) -> str:
    """``text`` as a string with every control character written as a visible escape."""
    return escape_controls(str(text))


def render_text(report: Report) -> str:
    """The report for a person at a terminal."""
    status = report.status
    worker = report.worker
    lines = [
        click.style(f" {status.value.upper()} ", **_STATUS_STYLE[status])  # type: ignore[arg-type]
        + printable(
            f"  flask-prodready · mode {report.mode} · pid {worker.pid} on {worker.hostname}"
            f" · {report.generated_at}"
        ),
        "",
    ]
    if report.evidence is not None:
        lines[1:1] = [printable(_evidence_line(report.evidence))]
    for area, findings in findings_by_area(report):
        lines.append(click.style(printable(area), bold=True))
        for finding in findings:
            label = finding.level.value.upper()
            style = {"dim": True} if finding.silenced else _LEVEL_STYLE[finding.level]
            head = click.style(f"  {label:<9} {printable(finding.id)}", **style)  # type: ignore[arg-type]
            if finding.silenced:
                head += click.style(f"  (silenced: {printable(finding.silence_reason)})", dim=True)
            lines.append(head)
            lines.extend(
                textwrap.wrap(
                    printable(finding.message),
                    WIDTH,
                    initial_indent=INDENT,
                    subsequent_indent=INDENT,
                )
            )
            if finding.hint:
                lines.extend(
                    textwrap.wrap(
                        printable(finding.hint),
                        WIDTH,
                        initial_indent=INDENT + "fix: ",
                        subsequent_indent=INDENT + "     ",
                    )
                )
        lines.append("")

    summary = report.summary()
    counts = " · ".join(f"{summary[level.value]} {level.value}" for level in Level)
    lines.append(
        f"{counts} · {summary['passed']} passed · {summary['skipped']} skipped"
        f" · {summary['errored']} errored · {summary['silenced']} silenced"
    )
    for reason, ids in skipped_by_reason(report):
        lines.append(click.style(printable(f"skipped {len(ids)}: {reason}"), dim=True))
    return "\n".join(lines) + "\n"


def _evidence_line(evidence: object) -> str:
    """'live evidence: 4 workers, 230 requests over the last 900 s' (and why, if partial)."""
    if not isinstance(evidence, dict):
        return "live evidence: unknown"
    workers, requests = evidence.get("workers"), evidence.get("requests")
    window = evidence.get("window_seconds")
    text = (
        f"live evidence: {workers} worker{'s' if workers != 1 else ''}, {requests} requests "
        f"over the last {window:g} s"
        if isinstance(window, (int, float))
        else f"live evidence: {workers} workers, {requests} requests"
    )
    note = evidence.get("note")
    return f"{text} ({note})" if note else text


def render_catalogue(checks: Iterable[Check]) -> str:
    """``--list``: one line per check: id, default level, tags, title, and its state."""
    items = list(checks)
    width = max((len(item.id) for item in items), default=10)
    lines = []
    for item in items:
        if item.kind == ENGINE:
            marks = ["reported by the runner"]
        else:
            marks = []
            if item.modes != DEFAULT_MODES:
                marks.append(" or ".join(sorted(mode.value for mode in item.modes)) + " only")
        marks.extend(f"formerly {alias}" for alias in item.aliases)
        suffix = f"  [{', '.join(marks)}]" if marks else ""
        tags = ",".join(item.tags)
        lines.append(f"{item.id:<{width}}  {item.level.value:<8}  {tags:<28}  {item.title}{suffix}")
    return "\n".join(lines) + "\n"
