"""The JSON body of SPEC §5 read back into a :class:`~flask_prodready.findings.Report`.

Remote mode fetches a live instance's report and renders and gates it like a local
one, so the body must become the same value the renderers take. The body lists findings
flat and statuses per check; each finding goes back to the check that made it (its own
id, or for ``prodready.check_crashed`` and ``prodready.check_timeout`` the check named
in ``observed``). A finding is never dropped: one whose check is missing from
``checks`` gets an outcome of its own.

Each entry of ``checks`` is read in either shape: this release's (a list holding one
object, whose ``result`` is the outcome) and the one before it (an object whose
``status`` is the outcome), so a client reads servers that have not been upgraded yet.

Every problem raises ``ValueError`` naming the field, so a front end can say in one line
why an answer is not a readiness report. Values are quoted whole: the front end masks
secrets in the message before it cuts it to length, so no piece of one is left.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..engine.findings import (
    CheckOutcome,
    Finding,
    Level,
    Report,
    ServiceInfo,
    Status,
    WorkerInfo,
)
from ..engine.fingerprint import Fingerprint

_OUTCOME_STATUSES = frozenset({Status.PASS, Status.FAIL, Status.SKIPPED, Status.ERROR})
#: A configuration fingerprint: the first 16 hex digits of a sha256.
FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where} has no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(
    data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any
) -> Any:
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


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    """An optional list of strings; ``None`` when absent."""
    value = _optional(data, key, list, where, None)
    if value is not None and not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: {key!r} must be a list of strings")
    return None if value is None else tuple(value)


def _outcome(check_id: str, entry: Any, findings: tuple[Finding, ...]) -> CheckOutcome:
    """One entry of ``checks``, in this release's shape or the previous one's."""
    label = f"checks[{check_id!r}]"
    if isinstance(entry, list):
        if len(entry) != 1 or not isinstance(entry[0], Mapping):
            raise ValueError(f"{label} must be a list holding one object")
        entry, key = entry[0], "result"
    elif isinstance(entry, Mapping):  # the previous release: {"status": ..., "reason": ...}
        key = "status"
    else:
        raise ValueError(f"{label} is neither a list nor an object")
    value = _field(entry, key, str, label)
    status = next((s for s in _OUTCOME_STATUSES if s.value == value), None)
    if status is None:
        raise ValueError(f"{label}: unknown {key} {value!r}")
    duration = _optional(entry, "duration_ms", (int, float), label, 0) or 0
    if isinstance(duration, bool) or not 0 <= duration < float("inf"):
        raise ValueError(f"{label}: 'duration_ms' must be a number of milliseconds")
    tags = _strings(entry, "tags", label)
    if tags is None:  # the previous release: the check's own findings carry its tags
        tags = next((f.tags for f in findings if f.id == check_id), ())
    return CheckOutcome(
        check_id,
        status,
        findings,
        reason=_optional(entry, "reason", str, label, None),
        duration=duration / 1000,
        tags=tags,
    )


def _service(data: Mapping[str, Any], where: str) -> ServiceInfo | None:
    """``serviceId``, ``version`` and ``releaseId``; ``None`` for a body without them."""
    name = _optional(data, "serviceId", str, where, None)
    if name is None:
        return None
    return ServiceInfo(
        name=name,
        version=_optional(data, "version", str, where, None),
        release=_optional(data, "releaseId", str, where, None),
    )


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
        grouped.setdefault(finding.check_id, []).append(finding)
    outcomes: dict[str, CheckOutcome] = {}
    for check_id, entry in checks.items():
        outcomes[check_id] = _outcome(check_id, entry, tuple(grouped.pop(check_id, ())))
    for check_id, orphans in grouped.items():
        outcomes[check_id] = CheckOutcome(check_id, Status.FAIL, tuple(orphans))
    notes = _strings(data, "notes", where)

    return Report(
        outcomes=outcomes,
        worker=worker,
        generated_at=_field(data, "generated_at", str, where),
        mode=_optional(data, "mode", str, where, "live") or "live",
        cached=bool(_optional(data, "cached", bool, where, False)),
        evidence=_evidence(data, where),
        service=_service(data, where),
        notes=() if notes is None else notes,
        fingerprint=_fingerprint(data),
    )


def _fingerprint(data: Mapping[str, Any]) -> Fingerprint | None:
    """The server's configuration fingerprint and versions, when its body has them (a
    server of an earlier release has none): carried through as they are, so ``prodready
    --url --format json`` shows what the server said."""
    digest = data.get("fingerprint")
    versions = data.get("versions")
    if not (isinstance(digest, str) and FINGERPRINT.fullmatch(digest)):
        return None
    if not isinstance(versions, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        return None
    others = [(k, v) for k, v in versions.items() if k not in ("flask", "flask-prodready")]
    app, app_version = others[0] if len(others) == 1 else ("", None)
    return Fingerprint(
        digest=digest,
        flask=versions.get("flask", ""),
        prodready=versions.get("flask-prodready", ""),
        app=app,
        app_version=app_version,
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
