"""GitHub Actions workflow commands: one annotation per finding that fails the gate.

``flask readiness --format github`` in a workflow step turns each unsilenced finding at
or above ``--fail-level`` into an annotation of the run, one line each::

    ::error title=config.debug::The app runs in debug mode (DEBUG is true). — Set DEBUG ...

``critical`` and ``error`` findings are ``::error``, ``warning`` ``::warning``, ``info``
``::notice``; the title is the finding's id, the message its message and hint. Data and
properties are escaped as GitHub's toolkit escapes them (``escapeData`` and
``escapeProperty`` of ``@actions/core``), so a message can neither end the command nor
add a property.

A finding that names a file (``observed["file"]``, and ``observed["line"]`` when it
knows the line) is annotated on that file, with the path GitHub expects: relative to
the workspace (``GITHUB_WORKSPACE``) when the project folder is inside it, else to the
project folder (:class:`~flask_prodready.render.sarif.SourceLocations`, as SARIF
results). A file outside both is not named: GitHub annotates files of the checkout
only, and the message still says which file it is. Other findings are about the app
as a whole and carry no file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.findings import Finding, Level, Report

if TYPE_CHECKING:
    from .sarif import SourceLocations

#: The workflow command of each level (GitHub has three annotation levels).
COMMANDS = {
    Level.CRITICAL: "error",
    Level.ERROR: "error",
    Level.WARNING: "warning",
    Level.INFO: "notice",
}
#: Between a finding's message and its hint in an annotation.
HINT_SEPARATOR = " — "
WORKSPACE_VARIABLE = "GITHUB_WORKSPACE"


def escape_data(text: str) -> str:
    """A command's message, escaped as ``escapeData`` of GitHub's toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property's value, escaped as ``escapeProperty`` of GitHub's toolkit does."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _file_and_line(finding: Finding, roots: list[Path]) -> tuple[str | None, int | None]:
    """The file the finding names, relative to the first of ``roots`` that holds it, and
    its line when known."""
    observed = finding.observed
    if not isinstance(observed, dict):
        return None, None
    named = observed.get("file")
    if not isinstance(named, str) or not named or not roots:
        return None, None
    # Relative paths are relative to the project folder, the last of the roots.
    path = Path(os.path.normpath(roots[-1] / named))
    for root in roots:
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            continue
        line = observed.get("line")
        known = isinstance(line, int) and not isinstance(line, bool) and line > 0
        return relative, line if known else None
    return None, None


def _roots(locations: SourceLocations | None, environ: Mapping[str, str]) -> list[Path]:
    """Where annotated paths are relative to, in order: the workspace when the project is
    inside it, then the project folder."""
    if locations is None:
        return []
    root = Path(os.path.normpath(locations.root))
    workspace = environ.get(WORKSPACE_VARIABLE)
    if workspace:
        base = Path(os.path.normpath(Path(workspace).resolve()))
        if root == base or base in root.parents:
            return [base, root]
    return [root]


def annotation(finding: Finding, *, file: str | None = None, line: int | None = None) -> str:
    """One finding as a workflow command line (without the newline)."""
    properties = {"title": finding.id, "file": file, "line": None if line is None else str(line)}
    shown = ",".join(
        f"{key}={escape_property(value)}" for key, value in properties.items() if value
    )
    message = finding.message
    if finding.hint:
        message = f"{message}{HINT_SEPARATOR}{finding.hint}"
    return f"::{COMMANDS[finding.level]} {shown}::{escape_data(message)}"


def render_github(
    report: Report,
    threshold: Level,
    *,
    locations: SourceLocations | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The report's unsilenced findings at or above ``threshold`` as workflow commands,
    one line each (nothing at all when none is).

    ``locations`` is where relative file names point (none are named without it);
    ``environ`` is where ``GITHUB_WORKSPACE`` is read (the process's environment).
    """
    roots = _roots(locations, os.environ if environ is None else environ)
    lines = []
    for finding in report.failing(threshold):
        file, line = _file_and_line(finding, roots)
        lines.append(annotation(finding, file=file, line=line) + "\n")
    return "".join(lines)
