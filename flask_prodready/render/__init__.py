"""Rendering: one function, :func:`render`, turns a report into any of the formats.

Every front end renders through it (``/_readiness``, ``flask readiness``, ``prodready``),
so a format looks the same wherever it is asked for. Renderers read reports and the
registry's metadata only: they never import a check. The formats that need heavier
modules (JUnit, SARIF, HTML with Jinja) are imported when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.findings import Level, Report

if TYPE_CHECKING:
    from ..engine.registry import Registry
    from .sarif import SourceLocations

#: Every format :func:`render` knows; each front end offers the ones that suit it.
FORMATS = ("text", "json", "junit", "sarif", "github", "html", "openmetrics")


def render(
    report: Report,
    output_format: str,
    *,
    threshold: Level = Level.ERROR,
    registry: Registry | None = None,
    locations: SourceLocations | None = None,
    stylesheet_url: str = "report.css",
) -> str:
    """``report`` in ``output_format`` (one of :data:`FORMATS`).

    ``threshold`` is the fail level (JUnit marks findings below it as passing notes,
    GitHub annotations leave them out);
    ``registry`` gives SARIF its rules and HTML its titles; ``locations`` is where SARIF
    results and GitHub annotations point (the current folder when not given);
    ``stylesheet_url`` is the HTML page's stylesheet. An unknown format raises
    ``ValueError`` naming the choices.
    """
    if output_format == "json":
        from .json import render_json

        return render_json(report)
    if output_format == "text":
        from .text import render_text

        return render_text(report)
    if output_format == "openmetrics":
        from .openmetrics import render_openmetrics

        return render_openmetrics(report)
    if output_format == "junit":
        from .junit import render_junit

        return render_junit(report, threshold)
    if output_format == "sarif":
        from .sarif import SourceLocations, render_sarif

        return render_sarif(
            report,
            registry=_registry(registry),
            locations=locations if locations is not None else SourceLocations.here(),
        )
    if output_format == "github":
        from .github import render_github
        from .sarif import SourceLocations

        return render_github(
            report,
            threshold,
            locations=locations if locations is not None else SourceLocations.here(),
        )
    if output_format == "html":
        from .html import render_html

        return render_html(report, stylesheet_url=stylesheet_url, registry=_registry(registry))
    raise ValueError(f"unknown format {output_format!r}; use one of {', '.join(FORMATS)}")


def _registry(registry: Registry | None) -> Registry:
    if registry is None:
        from ..engine.registry import Registry

        return Registry()
    return registry
