"""Findings, levels and per-check outcomes: the values every part of the engine passes on.

They are immutable so that a cached report can be handed to many requests at once
without anyone changing it under the others.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Level(str, enum.Enum):
    """How bad a finding is; ordered ``critical`` > ``error`` > ``warning`` > ``info``."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """A number that grows with severity, for sorting and ``--fail-level``."""
        return _RANKS[self]

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """``"error"`` (any case) -> :attr:`Level.ERROR`; ``ValueError`` names the choices."""
        if isinstance(value, Level):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown level {value!r}: expected one of {choices}") from None

    def __str__(self) -> str:
        return self.value


_RANKS = {Level.INFO: 0, Level.WARNING: 1, Level.ERROR: 2, Level.CRITICAL: 3}


class Status(str, enum.Enum):
    """The outcome of one check run, and the overall status of a report."""

    PASS = "pass"
    WARN = "warn"  # overall status only
    FAIL = "fail"
    UNKNOWN = "unknown"  # overall status only: not one selected check could judge
    SKIPPED = "skipped"  # per check only
    ERROR = "error"  # per check only: it raised or timed out

    def __str__(self) -> str:
        return self.value


#: Outcomes of a check that judged: it passed or it found something.
JUDGED = frozenset({Status.PASS, Status.FAIL})


@dataclass(frozen=True)
class Finding:
    """One thing a check found wrong, with how to fix it.

    ``observed`` holds the value seen (already redacted) where it helps the reader;
    ``silenced`` is set by the runner from ``PRODREADY_SILENCED``, never by a check.
    """

    id: str
    level: Level
    message: str
    hint: str = ""
    tags: tuple[str, ...] = ()
    observed: Any = None
    silenced: bool = False
    silence_reason: str | None = None

    @property
    def area(self) -> str:
        """The part of the id before the dot (``config`` for ``config.debug``)."""
        return self.id.split(".", 1)[0]

    @property
    def blocking(self) -> bool:
        """Whether this finding makes the overall status ``fail``."""
        return not self.silenced and self.level.rank >= Level.ERROR.rank

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of SPEC §5."""
        data: dict[str, Any] = {
            "id": self.id,
            "level": self.level.value,
            "message": self.message,
            "hint": self.hint,
            "tags": list(self.tags),
            "silenced": self.silenced,
        }
        if self.observed is not None:
            data["observed"] = self.observed
        if self.silence_reason is not None:
            data["silence_reason"] = self.silence_reason
        return data


@dataclass(frozen=True)
class CheckOutcome:
    """How one check ended: its status, its findings, and why it was skipped or errored."""

    check_id: str
    status: Status
    findings: tuple[Finding, ...] = ()
    reason: str | None = None
    duration: float = 0.0
    #: Skipped although the run asked for it (``--audit`` for the audit): the run is then
    #: ``unknown``, since what was asked for was not done.
    asked: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status.value}
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class WorkerInfo:
    """Which process produced a report, so reports from a fleet can be told apart."""

    pid: int
    hostname: str
    server: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "hostname": self.hostname, "server": self.server}


@dataclass(frozen=True)
class Report:
    """The result of one run: findings, per-check outcomes, and where it ran."""

    outcomes: Mapping[str, CheckOutcome]
    worker: WorkerInfo
    generated_at: str
    mode: str
    cached: bool = False
    #: What the live checks' evidence covers (workers, requests, window seconds), live only.
    evidence: Mapping[str, Any] | None = None
    findings: tuple[Finding, ...] = field(init=False)
    status: Status = field(init=False)
    """``fail`` on any unsilenced critical/error, else ``warn`` on a warning, else ``pass``;
    ``unknown`` when not one check judged (each was skipped or errored), or when a check
    the run asked for (:attr:`CheckOutcome.asked`, ``--audit``) could not: such a run is
    never a pass, whatever the findings of the others or of its crashes say."""

    def __post_init__(self) -> None:
        ordered = sorted(
            (f for outcome in self.outcomes.values() for f in outcome.findings),
            key=lambda f: (f.silenced, -f.level.rank, f.id, f.message),
        )
        object.__setattr__(self, "findings", tuple(ordered))
        active = [f for f in ordered if not f.silenced]
        status = Status.PASS
        if any(f.level.rank >= Level.ERROR.rank for f in active):
            status = Status.FAIL
        elif any(f.level is Level.WARNING for f in active):
            status = Status.WARN
        if not any(o.status in JUDGED for o in self.outcomes.values()) or self._unjudged_required():
            status = Status.UNKNOWN
        object.__setattr__(self, "status", status)

    def _unjudged_required(self) -> list[str]:
        return sorted(
            check_id
            for check_id, outcome in self.outcomes.items()
            if outcome.asked and outcome.status not in JUDGED
        )

    def unjudged_reason(self) -> str:
        """Why the run is ``unknown``, in one line: each distinct reason with the checks it
        held back (only the asked-for ones, when one of them is why)."""
        asked = self._unjudged_required()
        by_reason: dict[str, list[str]] = {}
        for check_id in asked or sorted(self.outcomes):
            outcome = self.outcomes[check_id]
            reason = outcome.reason or (
                "it failed to run" if outcome.status is Status.ERROR else "no reason given"
            )
            by_reason.setdefault(reason, []).append(check_id)
        if not by_reason:
            return "nothing could be judged: no check was selected"
        reasons = "; ".join(f"{', '.join(ids)}: {reason}" for reason, ids in by_reason.items())
        if asked:
            return f"what was asked for could not be judged: {reasons}"
        return f"nothing could be judged: {reasons}"

    def summary(self) -> dict[str, int]:
        """Counts of unsilenced findings per level, and of passed, skipped and silenced."""
        counts = {level.value: 0 for level in Level}
        silenced = 0
        for finding in self.findings:
            if finding.silenced:
                silenced += 1
            else:
                counts[finding.level.value] += 1
        statuses = [outcome.status for outcome in self.outcomes.values()]
        counts["passed"] = statuses.count(Status.PASS)
        counts["skipped"] = statuses.count(Status.SKIPPED)
        counts["errored"] = statuses.count(Status.ERROR)
        counts["silenced"] = silenced
        return counts

    def failing(self, threshold: Level) -> list[Finding]:
        """Unsilenced findings at or above ``threshold`` (the CLI's ``--fail-level``)."""
        return [f for f in self.findings if not f.silenced and f.level.rank >= threshold.rank]

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of SPEC §5."""
        return {
            "status": self.status.value,
            "findings": [f.to_dict() for f in self.findings],
            "checks": {cid: self.outcomes[cid].to_dict() for cid in sorted(self.outcomes)},
            "summary": self.summary(),
            "worker": self.worker.to_dict(),
            "mode": self.mode,
            **({"evidence": dict(self.evidence)} if self.evidence is not None else {}),
            "generated_at": self.generated_at,
            "cached": self.cached,
        }
