"""How people read a report: findings grouped by area, worst first."""

from __future__ import annotations

from collections import defaultdict

from ..engine.findings import Finding, Report, Status


def findings_by_area(report: Report) -> list[tuple[str, list[Finding]]]:
    """Areas ordered by their worst unsilenced finding, findings by level then id."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        groups[finding.area].append(finding)

    def worst(item: tuple[str, list[Finding]]) -> tuple[int, str]:
        active = [f.level.rank for f in item[1] if not f.silenced]
        return (-(max(active) if active else -1), item[0])

    return sorted(groups.items(), key=worst)


def ids_with_status(report: Report, status: Status) -> list[str]:
    return sorted(cid for cid, outcome in report.outcomes.items() if outcome.status is status)


def skipped_by_reason(report: Report) -> list[tuple[str, list[str]]]:
    """Skipped checks grouped by their reason, the largest group first."""
    groups: dict[str, list[str]] = defaultdict(list)
    for cid, outcome in report.outcomes.items():
        if outcome.status is Status.SKIPPED:
            groups[outcome.reason or "no reason given"].append(cid)
    return sorted(((r, sorted(ids)) for r, ids in groups.items()), key=lambda g: (-len(g[1]), g[0]))
