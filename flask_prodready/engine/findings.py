"""Findings, levels and per-check outcomes: the values every part of the engine passes on.

They are immutable so that a cached report can be handed to many requests at once
without anyone changing it under the others.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._version import __version__

if TYPE_CHECKING:
    from .fingerprint import Fingerprint


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
#: Findings the runner reports in place of a check; ``observed["check"]`` names the check.
ENGINE_FINDING_IDS = frozenset({"prodready.check_crashed", "prodready.check_timeout"})
#: The body's ``notes``: which flask-prodready built the report.
NOTES = (f"flask-prodready {__version__}",)
#: Most finding ids the top-level ``output`` of a failing report names.
OUTPUT_IDS = 5


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

    @property
    def check_id(self) -> str:
        """The id of the check this finding belongs to: its own id, or for
        ``prodready.check_crashed`` and ``prodready.check_timeout`` the check named in
        ``observed``."""
        if self.id in ENGINE_FINDING_IDS and isinstance(self.observed, Mapping):
            named = self.observed.get("check")
            if isinstance(named, str) and named:
                return named
        return self.id

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
    #: The check's tags (its area first), set by the runner from the registry.
    tags: tuple[str, ...] = ()

    @property
    def level(self) -> Level | None:
        """The highest level among the unsilenced findings; ``None`` when there is none."""
        active = [f.level for f in self.findings if not f.silenced]
        return max(active, key=lambda level: level.rank, default=None)

    @property
    def silenced(self) -> bool:
        """Whether the check found something and every finding of it is silenced."""
        return bool(self.findings) and all(f.silenced for f in self.findings)

    def health_status(self) -> Status:
        """The status of the ``application/health+json`` draft: ``fail`` for a check that
        raised or timed out and for an unsilenced ``error``/``critical`` finding, ``warn``
        for a lesser unsilenced finding and for a skipped check, ``pass`` otherwise."""
        if self.status is Status.ERROR:
            return Status.FAIL
        if self.status is Status.SKIPPED:
            return Status.WARN
        level = self.level
        if level is None:
            return Status.PASS
        return Status.FAIL if level.rank >= Level.ERROR.rank else Status.WARN

    def output(self) -> str | None:
        """The unsilenced findings' messages, one a line, else the skip or error reason;
        ``None`` when the check passed (or all it found is silenced)."""
        messages = [f.message for f in self.findings if not f.silenced]
        if messages:
            return "\n".join(messages)
        if self.status in (Status.SKIPPED, Status.ERROR):
            return self.reason or "no reason given"
        return None

    def observed_value(self) -> int | float | None:
        """The one number the check observed: the ``observed`` of its only finding, when
        that is a number; ``None`` otherwise (no unit is ever guessed)."""
        if len(self.findings) != 1:
            return None
        value = self.findings[0].observed
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value if math.isfinite(value) else None

    def to_dict(self, *, time: str) -> dict[str, Any]:
        """One entry of the body's ``checks``, in the draft's shape with this project's
        fields beside it (``result`` is what scripts read); ``time`` is the report's."""
        data: dict[str, Any] = {
            "componentId": self.check_id,
            "componentType": "component",
            "status": self.health_status().value,
            "result": self.status.value,
            "time": time,
            "duration_ms": round(self.duration * 1000, 3),
        }
        output = self.output()
        if output is not None:
            data["output"] = output
        if self.reason is not None:
            data["reason"] = self.reason
        observed = self.observed_value()
        if observed is not None:
            data["observedValue"] = observed
        level = self.level
        if level is not None:
            data["level"] = level.value
        data["tags"] = list(self.tags)
        data["silenced"] = self.silenced
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
class ServiceInfo:
    """Which app a report describes: its name (``serviceId``), the version of the
    distribution that installed it (``version``) and the release deployed (``releaseId``)."""

    name: str
    version: str | None = None
    release: str | None = None

    def redacted(self, text: Callable[[str], str]) -> ServiceInfo:
        """The same, each value passed through ``text`` (a redactor's)."""
        return ServiceInfo(
            name=text(self.name),
            version=None if self.version is None else text(self.version),
            release=None if self.release is None else text(self.release),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"serviceId": self.name}
        if self.version is not None:
            data["version"] = self.version
        if self.release is not None:
            data["releaseId"] = self.release
        return data


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
    #: The app the report describes (``serviceId``, ``version``, ``releaseId``).
    service: ServiceInfo | None = None
    #: The body's ``notes``: which flask-prodready built the report.
    notes: tuple[str, ...] = NOTES
    #: The configuration fingerprint and the versions it covers (engine/fingerprint.py);
    #: ``None`` for a report that carries none (one read from another process).
    fingerprint: Fingerprint | None = None
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

    def output(self) -> str | None:
        """The body's ``output``: why an ``unknown`` run could not judge, or one line naming
        what makes a run ``fail``; ``None`` for ``pass`` and ``warn``."""
        if self.status is Status.UNKNOWN:
            return self.unjudged_reason()
        if self.status is not Status.FAIL:
            return None
        blocking = [f for f in self.findings if f.blocking]
        ids = list(dict.fromkeys(f.id for f in blocking))
        named = ", ".join(ids[:OUTPUT_IDS])
        if len(ids) > OUTPUT_IDS:
            named += f" and {len(ids) - OUTPUT_IDS} more"
        plural = "s" if len(blocking) != 1 else ""
        return f"{len(blocking)} unsilenced finding{plural} at level error or above: {named}"

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
        """The JSON body of SPEC §5 (``application/health+json``)."""
        output = self.output()
        return {
            "status": self.status.value,
            **({"output": output} if output is not None else {}),
            **(self.service.to_dict() if self.service is not None else {}),
            "notes": list(self.notes),
            "findings": [f.to_dict() for f in self.findings],
            "checks": {
                cid: [self.outcomes[cid].to_dict(time=self.generated_at)]
                for cid in sorted(self.outcomes)
            },
            "summary": self.summary(),
            "worker": self.worker.to_dict(),
            "mode": self.mode,
            **(
                {"fingerprint": self.fingerprint.digest, "versions": self.fingerprint.versions()}
                if self.fingerprint is not None
                else {}
            ),
            **({"evidence": dict(self.evidence)} if self.evidence is not None else {}),
            "generated_at": self.generated_at,
            "cached": self.cached,
        }
