"""The report as OpenMetrics text, for Prometheus and anything else that scrapes it.

Statuses are one-hot gauges: every check has one sample per possible status, ``1`` for
the status it ended in and ``0`` for the others, so a series never vanishes when a check
changes status and ``prodready_check_status{status="fail"} == 1`` is the alert to write.
Every sample carries the ``pid`` and ``hostname`` of the worker that built the report:
each worker process keeps its own report, and a scrape reaches one of them. The info
metric ``prodready_config`` names the configuration fingerprint and the versions the
worker runs, so that replicas that disagree stand out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from ..engine.findings import Level, Report, Status
from ..engine.fingerprint import Fingerprint

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: What a check run can end in, and what a report can be (SPEC §4).
CHECK_STATUSES = (Status.PASS, Status.FAIL, Status.SKIPPED, Status.ERROR)
REPORT_STATUSES = (Status.PASS, Status.WARN, Status.FAIL, Status.UNKNOWN)


def escape_label_value(value: str) -> str:
    """A label value as OpenMetrics writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "}"


def _family(
    name: str,
    help_text: str,
    samples: Iterable[tuple[Mapping[str, str], float | int]],
    *,
    unit: str | None = None,
) -> list[str]:
    """One gauge family: ``# TYPE``, ``# HELP`` (and ``# UNIT``), then its samples."""
    lines = [f"# TYPE {name} gauge", f"# HELP {name} {escape_label_value(help_text)}"]
    if unit is not None:
        lines.append(f"# UNIT {name} {unit}")
    lines.extend(f"{name}{_labels(labels)} {value!r}" for labels, value in samples)
    return lines


def _timestamp(generated_at: str) -> float:
    moment = datetime.strptime(generated_at, "%Y-%m-%dT%H:%M:%SZ")
    return moment.replace(tzinfo=timezone.utc).timestamp()


def render_openmetrics(report: Report) -> str:
    """The report's statuses and counts as OpenMetrics 1.0 text, ending with ``# EOF``."""
    worker = {"pid": str(report.worker.pid), "hostname": report.worker.hostname}
    summary = report.summary()
    lines = _family(
        "prodready_status",
        "Overall status of the readiness report: 1 for the status it has (pass, warn, "
        "fail, unknown).",
        (
            ({"status": status.value, **worker}, int(report.status is status))
            for status in REPORT_STATUSES
        ),
    )
    lines += _family(
        "prodready_check_status",
        "How each check ended: 1 for its status (pass, fail, skipped, error), 0 for the others.",
        (
            ({"check": cid, "status": status.value, **worker}, int(outcome.status is status))
            for cid, outcome in sorted(report.outcomes.items())
            for status in CHECK_STATUSES
        ),
    )
    lines += _family(
        "prodready_findings",
        "Unsilenced findings of the report, per level.",
        (({"level": level.value, **worker}, summary[level.value]) for level in Level),
    )
    lines += _family(
        "prodready_silenced_findings",
        "Findings silenced by PRODREADY_SILENCED.",
        [(worker, summary["silenced"])],
    )
    lines += _family(
        "prodready_report_generated_timestamp_seconds",
        "When the report was built (a cached report keeps its time), in Unix seconds.",
        [(worker, _timestamp(report.generated_at))],
        unit="seconds",
    )
    if report.fingerprint is not None:
        lines += _config_info(report.fingerprint, worker)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _config_info(fingerprint: Fingerprint, worker: Mapping[str, str]) -> list[str]:
    """The info family ``prodready_config``: one sample, value 1, its labels the facts."""
    labels = {
        "fingerprint": fingerprint.digest,
        "flask": fingerprint.flask,
        "prodready": fingerprint.prodready,
        "app": fingerprint.app,
        "app_version": fingerprint.app_version or "",
        **worker,
    }
    help_text = (
        "The configuration this worker runs: the fingerprint of its non-secret "
        "configuration and the versions of Flask, flask-prodready and the app."
    )
    return [
        "# TYPE prodready_config info",
        f"# HELP prodready_config {escape_label_value(help_text)}",
        f"prodready_config_info{_labels(labels)} 1",
    ]
