"""JUnit XML for CI test reports: one test case per check run, a failure per finding.

A check is a test: it passes, fails (a ``failure`` element for each unsilenced finding at
or above the fail level, so the report agrees with the command's exit code), is skipped
(with its reason), or errors (it raised or timed out). Findings that do not fail the
gate, silenced or below the fail level, are kept in the test case's ``system-out``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ..engine.findings import CheckOutcome, Finding, Level, Report, Status

SUITE_NAME = "flask-prodready"

#: Characters XML 1.0 cannot carry at all, even escaped; replaced so the file parses.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _note(finding: Finding, threshold: Level) -> str:
    """One ``system-out`` entry: why this finding does not fail the test case."""
    if finding.silenced:
        why = f"silenced: {finding.silence_reason}"
    else:
        why = f"below --fail-level {threshold.value}"
    lines = [f"[{finding.level.value}] {finding.id} ({why}): {finding.message}"]
    if finding.hint:
        lines.append(f"    fix: {finding.hint}")
    return "\n".join(lines)


def _testcase(outcome: CheckOutcome, threshold: Level) -> tuple[ET.Element, str]:
    """The ``testcase`` element of one check run and the verdict it counts as."""
    area = outcome.check_id.split(".", 1)[0]
    case = ET.Element(
        "testcase",
        {"classname": area, "name": outcome.check_id, "time": f"{outcome.duration:.3f}"},
    )
    notes: list[str] = []
    verdict = "passed"
    if outcome.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", {"message": _clean(outcome.reason or "skipped")})
        verdict = "skipped"
    elif outcome.status is Status.ERROR:
        # The runner reports a crash or a timeout as one engine finding. Silenced, it
        # fails nothing, so the check counts as one that could not judge: skipped.
        active = [f for f in outcome.findings if not f.silenced]
        reason = outcome.reason or "error"
        if active:
            for finding in active:
                error = ET.SubElement(
                    case, "error", {"message": _clean(reason), "type": finding.id}
                )
                error.text = _clean(finding.message)
            verdict = "error"
        else:
            ET.SubElement(case, "skipped", {"message": _clean(reason)})
            verdict = "skipped"
        notes.extend(_note(f, threshold) for f in outcome.findings if f.silenced)
    else:
        for finding in outcome.findings:
            if not finding.silenced and finding.level.rank >= threshold.rank:
                failure = ET.SubElement(
                    case,
                    "failure",
                    {"message": _clean(finding.message), "type": finding.level.value},
                )
                failure.text = _clean(finding.hint)
                verdict = "failure"
            else:
                notes.append(_note(finding, threshold))
    if notes:
        ET.SubElement(case, "system-out").text = _clean("\n".join(notes))
    return case, verdict


def _properties(parent: ET.Element, items: Iterable[tuple[str, str]]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in items:
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})


def render_junit(report: Report, fail_level: Level) -> str:
    """The report as a JUnit XML document (``testsuites`` holding one ``testsuite``).

    ``fail_level`` is the command's ``--fail-level``: a finding fails its test case when
    it is unsilenced and at or above it.
    """
    cases = [_testcase(report.outcomes[cid], fail_level) for cid in sorted(report.outcomes)]
    verdicts = [verdict for _, verdict in cases]
    counts = {
        "tests": str(len(cases)),
        "failures": str(verdicts.count("failure")),
        "errors": str(verdicts.count("error")),
        "skipped": str(verdicts.count("skipped")),
        "time": f"{sum(o.duration for o in report.outcomes.values()):.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE_NAME,
            **counts,
            # JUnit's timestamp has no time zone; generated_at is UTC.
            "timestamp": report.generated_at.removesuffix("Z"),
            "hostname": _clean(report.worker.hostname),
        },
    )
    _properties(
        suite,
        [
            ("status", report.status.value),
            ("mode", report.mode),
            ("fail_level", fail_level.value),
            ("pid", str(report.worker.pid)),
            ("server", report.worker.server or ""),
        ],
    )
    suite.extend(case for case, _ in cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
