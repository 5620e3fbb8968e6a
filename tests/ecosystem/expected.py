"""The reviewed expectations of each application, and the difference from a run.

``tests/ecosystem/expected/<app>.toml`` holds, for the live report (``[live]``):

- ``findings``: each check expected to report, with the levels of its findings and
  ``why`` that is right for the application as deployed;
- ``quiet``: the checks expected to pass;
- ``skipped``: the checks expected to be skipped, each with why.

``[cli]`` has the same three tables for ``flask readiness``, listing only the checks
whose verdict there differs from the live one. ``[machine]`` names the checks that judge
the machine the test runs on (free disk, memory, running as root) rather than the
application: any verdict but ``error`` is accepted. ``[[known_defects]]`` are verdicts
of the current code that are wrong for the application (a false alarm, a miss, a report
answered by the application instead of ProdReady): each gives the ``mode``, the ``check``
(or ``report`` for the whole report), what is ``reported``, what is ``right``, and why.
A known defect is expected as reported; when the code is fixed, the difference says so
and the entry moves to the tables above.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from .deploy import Outcome, Report, Verdict

EXPECTED = Path(__file__).resolve().parent / "expected"
MODES = ("live", "cli")
STATUSES = {"findings": "fail", "quiet": "pass", "skipped": "skipped"}


@dataclass(frozen=True)
class Difference:
    """One way a run differs from the expectations."""

    mode: str
    check: str
    kind: str  # added, removed, changed, error, crash, defect-fixed, no-report
    expected: str
    actual: str

    def __str__(self) -> str:
        where = f"  {self.mode:4} {self.kind:12} {self.check}"
        return f"{where}: expected {self.expected}, got {self.actual}"


def load(app: str) -> dict[str, Any]:
    with (EXPECTED / f"{app}.toml").open("rb") as file:
        return tomllib.load(file)


def _table(tables: dict[str, Any]) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    for section, status in STATUSES.items():
        entries = tables.get(section, {})
        if isinstance(entries, list):  # quiet may be a plain list of ids
            entries = {check: {} for check in entries}
        for check, entry in entries.items():
            levels = entry.get("levels", []) if isinstance(entry, dict) else []
            verdicts[check] = Verdict(status, tuple(sorted(levels)))
    return verdicts


def expected_verdicts(expected: dict[str, Any], mode: str) -> dict[str, Verdict]:
    """What ``mode``'s report should say of every check, known defects as reported."""
    verdicts = _table(expected.get("live", {}))
    if mode == "cli":
        verdicts.update(_table(expected.get("cli", {})))
    for defect in expected.get("known_defects", []):
        if defect["mode"] == mode and defect["check"] != "report":
            verdicts[defect["check"]] = _parse(defect["reported"])
    return verdicts


def _parse(text: str) -> Verdict:
    """``"fail [warning]"`` or ``"pass"`` as a :class:`Verdict`."""
    status, _, rest = text.partition(" ")
    levels = tuple(sorted(level.strip() for level in rest.strip("[]").split(",") if level.strip()))
    return Verdict(status, levels)


def compare(outcome: Outcome, expected: dict[str, Any]) -> list[Difference]:
    """Every difference between ``outcome`` and ``expected``, crashes and errors first."""
    differences: list[Difference] = []
    machine = set(expected.get("machine", {}))
    for mode in MODES:
        report: Report = getattr(outcome, mode)
        hijack = next(
            (
                d
                for d in expected.get("known_defects", [])
                if d["mode"] == mode and d["check"] == "report"
            ),
            None,
        )
        if report.problem is not None:
            if hijack is None:
                differences.append(
                    Difference(mode, "report", "no-report", "a report", report.problem)
                )
            continue
        if hijack is not None:
            differences.append(
                Difference(mode, "report", "defect-fixed", hijack["reported"], "the report")
            )
        differences += _compare_verdicts(
            mode, report.verdicts, expected_verdicts(expected, mode), machine
        )
        for defect in expected.get("known_defects", []):
            if defect["mode"] != mode or defect["check"] == "report":
                continue
            actual = report.verdicts.get(defect["check"])
            if actual is not None and actual == _parse(defect["right"]):
                differences.append(
                    Difference(
                        mode, defect["check"], "defect-fixed", defect["reported"], str(actual)
                    )
                )
    order = ("crash", "error", "no-report")
    return sorted(differences, key=lambda d: (d.kind not in order, d.mode, d.check))


def _compare_verdicts(
    mode: str, actual: dict[str, Verdict], expected: dict[str, Verdict], machine: set[str]
) -> list[Difference]:
    differences = []
    for check, verdict in sorted(actual.items()):
        if check == "prodready.check_crashed" or (
            check == "prodready.check_timeout" and verdict.status == "fail"
        ):
            differences.append(Difference(mode, check, "crash", "none", str(verdict)))
        elif verdict.status == "error":
            differences.append(Difference(mode, check, "error", str(expected.get(check)), "error"))
        elif check in machine:
            continue
        elif check not in expected:
            differences.append(Difference(mode, check, "added", "not in the report", str(verdict)))
        elif expected[check] != verdict:
            differences.append(
                Difference(mode, check, "changed", str(expected[check]), str(verdict))
            )
    for check in sorted(set(expected) - set(actual) - machine):
        differences.append(
            Difference(mode, check, "removed", str(expected[check]), "not in the report")
        )
    return differences
