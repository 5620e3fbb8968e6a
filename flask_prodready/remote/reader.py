"""The JSON body of SPEC §5 read back into a :class:`~flask_prodready.findings.Report`.

Remote mode fetches a live instance's report and renders and gates it like a local
one, so the body must become the same value the renderers take. The body lists findings
flat and statuses per check; each finding goes back to the check that made it (its own
id, or for ``prodready.check_crashed`` and ``prodready.check_timeout`` the check named
in ``observed``). A finding is never dropped: one whose check is missing from
``checks`` gets an outcome of its own.

Every problem raises ``ValueError`` naming the field, so a front end can say in one line
why an answer is not a readiness report. Values are quoted whole: the front end masks
secrets in the message before it cuts it to length, so no piece of one is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.findings import CheckOutcome, Finding, Level, Report, Status, WorkerInfo

#: Findings reported by the runner in place of a check; ``observed["check"]`` names it.
_ENGINE_IDS = frozenset({"prodready.check_crashed", "prodready.check_timeout"})
_OUTCOME_STATUSES = frozenset({Status.PASS, Status.FAIL, Status.SKIPPED, Status.ERROR})


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where} has no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def finding_from_dict(data: Any) -> Finding:
    """One entry of ``findings``."""
    if not isinstance(data, Mapping):
        raise ValueError("an entry of 'findings' is not an object")
    where = f"finding {str(data.get('id'))!r}"
    check_id = _field(data, "id", str, where)
    try:
        level = Level.parse(_field(data, "level", str, where))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    tags = _optional(data, "tags", list, where, [])
    if not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"{where}: 'tags' must be a list of strings")
    return Finding(
        id=check_id,
        level=level,
        message=_field(data, "message", str, where),
        hint=_optional(data, "hint", str, where, "") or "",
        tags=tuple(tags),
        observed=data.get("observed"),
        silenced=bool(_optional(data, "silenced", bool, where, False)),
        silence_reason=_optional(data, "silence_reason", str, where, None),
    )


def _owner(finding: Finding) -> str:
    """The id of the check a finding belongs to."""
    if finding.id in _ENGINE_IDS and isinstance(finding.observed, Mapping):
        named = finding.observed.get("check")
        if isinstance(named, str) and named:
            return named
    return finding.id


def report_from_dict(data: Any) -> Report:
    """The report a ``/_readiness`` JSON body describes; ``ValueError`` says what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("the body is not a JSON object")
    where = "the report"
    findings = [finding_from_dict(item) for item in _field(data, "findings", list, where)]
    checks = _field(data, "checks", Mapping, where)
    worker_data = _field(data, "worker", Mapping, where)
    worker = WorkerInfo(
        pid=_field(worker_data, "pid", int, "'worker'"),
        hostname=_field(worker_data, "hostname", str, "'worker'"),
        server=_optional(worker_data, "server", str, "'worker'", None),
    )

    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(_owner(finding), []).append(finding)
    outcomes: dict[str, CheckOutcome] = {}
    for check_id, entry in checks.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"checks[{str(check_id)!r}] is not an object")
        label = f"checks[{check_id!r}]"
        value = _field(entry, "status", str, label)
        status = next((s for s in _OUTCOME_STATUSES if s.value == value), None)
        if status is None:
            raise ValueError(f"{label}: unknown status {value!r}")
        outcomes[check_id] = CheckOutcome(
            check_id,
            status,
            tuple(grouped.pop(check_id, ())),
            reason=_optional(entry, "reason", str, label, None),
        )
    for check_id, orphans in grouped.items():
        outcomes[check_id] = CheckOutcome(check_id, Status.FAIL, tuple(orphans))

    return Report(
        outcomes=outcomes,
        worker=worker,
        generated_at=_field(data, "generated_at", str, where),
        mode=_optional(data, "mode", str, where, "live") or "live",
        cached=bool(_optional(data, "cached", bool, where, False)),
        evidence=_evidence(data, where),
    )


def _evidence(data: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """What a live report's evidence covers: numbers and a note, nothing else kept."""
    found = _optional(data, "evidence", Mapping, where, None)
    if found is None:
        return None
    kept: dict[str, Any] = {}
    for key in ("workers", "requests", "window_seconds"):
        value = found.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            kept[key] = value
    note = found.get("note")
    if isinstance(note, str):
        kept["note"] = note[:300]
    return kept
