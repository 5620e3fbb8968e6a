"""The JSON body of SPEC §5 (``application/health+json``), shared by HTTP and the CLI.

Its JSON Schema (draft 2020-12) ships in the package as ``schema/report.schema.json``;
:func:`report_schema` reads it.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Any

from ..engine.findings import Report

#: Where the body's JSON Schema lives inside the package.
SCHEMA_RESOURCE = "schema/report.schema.json"


def render_json(report: Report) -> str:
    """The report as indented JSON; every value in it is already redacted."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


@functools.cache
def report_schema_text() -> str:
    """The JSON Schema of the body, as shipped (read once)."""
    return files("flask_prodready").joinpath(SCHEMA_RESOURCE).read_text("utf-8")


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the body, a fresh copy on each call."""
    schema: dict[str, Any] = json.loads(report_schema_text())
    return schema
