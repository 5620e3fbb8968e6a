"""SARIF 2.1.0 for code-scanning dashboards (GitHub code scanning and other SARIF viewers).

One rule per check of the catalogue, one result per finding; a silenced finding is a
result with a suppression, so a dashboard shows it as dismissed rather than losing it.

A finding is about the app as a whole, not a line of code, but code scanning needs a
location for every result. Each result points at a file of the app's project, relative
to the project folder (``%SRCROOT%``, the folder ``config.secret_key_in_source`` scans:
the nearest parent of the app's root path holding ``.git``, ``pyproject.toml``,
``setup.py`` or ``setup.cfg``), which in a CI checkout is the repository's root:

- the file the finding names (``observed["file"]``, as ``config.secret_key_in_source``
  reports it), when there is one;
- else the file of the module that created the app (``app.import_name``), where the
  factory and its configuration live;
- else the app's package folder.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from flask import Flask

from ..engine.findings import Finding, Level, Report
from ..engine.project import project_root
from ..engine.registry import Check, Registry
from .html import DOCS_URL, doc_anchor

SCHEMA_URL = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "flask-prodready"
INFORMATION_URI = "https://github.com/flask-prodready/flask-prodready"
SOURCE_ROOT = "%SRCROOT%"

#: SARIF has three result levels; critical and error both fail a gate, so both are errors.
SARIF_LEVELS = {
    Level.CRITICAL: "error",
    Level.ERROR: "error",
    Level.WARNING: "warning",
    Level.INFO: "note",
}
#: GitHub ranks security alerts by this number (critical >= 9, high >= 7, medium >= 4);
#: given to the rules tagged ``security``.
SECURITY_SEVERITY = {
    Level.CRITICAL: "9.5",
    Level.ERROR: "7.5",
    Level.WARNING: "5.0",
    Level.INFO: "2.0",
}


@dataclass(frozen=True)
class SourceLocations:
    """Where results point: the project folder and the app's own file in it."""

    root: Path
    #: The app's module file (or package folder), relative to ``root``, as a URI.
    app_uri: str

    @classmethod
    def here(cls) -> SourceLocations:
        """Results relative to the current folder (remote mode has no app to point into)."""
        return cls(Path.cwd().resolve(), ".")

    @classmethod
    def for_app(cls, app: Flask) -> SourceLocations:
        root = project_root(app.root_path)
        module = sys.modules.get(app.import_name)
        candidates = [getattr(module, "__file__", None), app.root_path]
        for index, candidate in enumerate(candidates):
            if not candidate:
                continue
            path = Path(candidate).resolve()
            try:
                relative = path.relative_to(root)
            except ValueError:
                continue
            folder = index == len(candidates) - 1
            text = relative.as_posix()
            return cls(root, _uri(text + "/" if folder and text != "." else text))
        return cls(root, ".")

    @property
    def root_uri(self) -> str:
        """The project folder as an absolute ``file:`` URI ending in ``/``, as SARIF wants."""
        uri = self.root.as_uri()
        return uri if uri.endswith("/") else uri + "/"

    def artifact_location(self, finding: Finding) -> dict[str, str]:
        """The ``artifactLocation`` of one finding's result."""
        observed = finding.observed
        named = observed.get("file") if isinstance(observed, dict) else None
        if isinstance(named, str) and named:
            if PurePath(named).is_absolute():  # a file outside the project folder
                return {"uri": Path(named).as_uri()}
            return {"uri": _uri(PurePath(named).as_posix()), "uriBaseId": SOURCE_ROOT}
        return {"uri": self.app_uri, "uriBaseId": SOURCE_ROOT}


def _uri(relative: str) -> str:
    return quote(relative, safe="/._-~")


def _rule_name(check_id: str) -> str:
    """``config.secret_key_weak`` -> ``ConfigSecretKeyWeak``: SARIF's readable rule name."""
    return "".join(part.capitalize() for part in check_id.replace(".", "_").split("_"))


def _rule(item: Check) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": item.id,
        "name": _rule_name(item.id),
        "shortDescription": {"text": item.title},
        "help": {"text": item.hint or item.title},
    }
    if item.origin == "flask_prodready" or item.origin.startswith("flask_prodready."):
        # Only the built-in checks have a section in the check reference.
        rule["helpUri"] = f"{DOCS_URL}#{doc_anchor(item.id)}"
    properties: dict[str, Any] = {"tags": list(item.tags), "prodready-level": item.level.value}
    if "security" in item.tags:
        properties["security-severity"] = SECURITY_SEVERITY[item.level]
    rule["defaultConfiguration"] = {"level": SARIF_LEVELS[item.level]}
    rule["properties"] = properties
    return rule


def _result(
    finding: Finding, rule_index: dict[str, int], locations: SourceLocations
) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.id}
    if finding.id in rule_index:
        result["ruleIndex"] = rule_index[finding.id]
    result.update(
        {
            "level": SARIF_LEVELS[finding.level],
            "message": {"text": finding.message},
            "locations": [
                {"physicalLocation": {"artifactLocation": locations.artifact_location(finding)}}
            ],
            "properties": {"prodready-level": finding.level.value, "tags": list(finding.tags)},
        }
    )
    if finding.observed is not None:
        result["properties"]["observed"] = finding.observed
    if finding.silenced:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"PRODREADY_SILENCED: {finding.silence_reason}",
            }
        ]
    return result


def render_sarif(report: Report, *, registry: Registry, locations: SourceLocations) -> str:
    """The report as a SARIF 2.1.0 log with one run."""
    from .._version import __version__

    rules = [_rule(item) for item in registry]
    rule_index = {rule["id"]: index for index, rule in enumerate(rules)}
    log = {
        "$schema": SCHEMA_URL,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SOURCE_ROOT: {"uri": locations.root_uri}},
                "invocations": [{"executionSuccessful": True, "endTimeUtc": report.generated_at}],
                "results": [_result(f, rule_index, locations) for f in report.findings],
                "properties": {
                    "status": report.status.value,
                    "mode": report.mode,
                    "summary": report.summary(),
                },
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False, default=str) + "\n"
