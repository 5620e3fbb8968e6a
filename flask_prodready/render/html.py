"""The HTML report for people: a page that stays readable under a strict CSP.

No inline script and no inline style: the page links one stylesheet that the extension
serves from its own route, so an app with ``default-src 'self'`` still shows it styled.
A private Jinja environment is used, so the app's context processors (which may touch
the database) never run for the report.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from jinja2 import Environment, PackageLoader, select_autoescape

from ..engine.findings import Level, Report, Status
from ..engine.registry import Registry
from .grouping import findings_by_area, ids_with_status, skipped_by_reason

#: Where each check's reference page lives; the anchor is the check id.
DOCS_URL = "https://github.com/flask-prodready/flask-prodready/blob/main/docs/checks.md"


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("flask_prodready", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def stylesheet_text() -> str:
    """The report's stylesheet, read once from the package."""
    return files("flask_prodready").joinpath("static/report.css").read_text("utf-8")


def doc_anchor(check_id: str) -> str:
    return check_id.replace(".", "").replace("_", "-")


def format_duration(seconds: float) -> str:
    """How long a check ran, for people: ``<0.1 ms``, ``2.4 ms``, ``180 ms``, ``3.2 s``."""
    milliseconds = seconds * 1000
    if milliseconds < 0.05:
        return "<0.1 ms"
    if milliseconds < 9.95:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 999.5:
        return f"{milliseconds:.0f} ms"
    return f"{seconds:.1f} s"


def render_html(report: Report, *, stylesheet_url: str, registry: Registry) -> str:
    """The report as a self-contained page (plus its stylesheet)."""
    template = _environment().get_template("prodready/report.html")
    titles = {item.id: item.title for item in registry}
    # Only the catalogue's own checks have a reference page; custom checks get no link.
    documented = {item.id for item in registry if item.origin.startswith("flask_prodready")}
    durations = {cid: format_duration(o.duration) for cid, o in report.outcomes.items()}
    return template.render(
        report=report,
        status=report.status,
        summary=report.summary(),
        groups=findings_by_area(report),
        passed=ids_with_status(report, Status.PASS),
        skipped=skipped_by_reason(report),
        titles=titles,
        documented=documented,
        levels=list(Level),
        stylesheet_url=stylesheet_url,
        docs_url=DOCS_URL,
        anchor=doc_anchor,
        durations=durations,
    )
