"""The documentation cannot drift from the code: the check reference covers the catalogue
exactly, and the site builds with `mkdocs build --strict`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flask_prodready.render.html import doc_anchor

from .stacks import main_suite_only
from .test_cli import run_flask

ROOT = Path(__file__).resolve().parent.parent
CHECKS_PAGE = ROOT / "docs" / "checks.md"
#: A row of the summary table: | [`id`](#anchor) | level | state |
TABLE_ROW = re.compile(r"^\| \[`(?P<id>[^`]+)`\]\(#(?P<anchor>[^)]+)\) \| (?P<level>\w+) \|", re.M)

APP = """
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
ProdReady(app)
"""


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{id: default level} as `flask readiness --list` prints it for a plain app."""
    project = tmp_path_factory.mktemp("docs")
    (project / "plainapp.py").write_text(APP)
    listed = run_flask(project, "plainapp", "--list")
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    rows = json.loads(run_flask(project, "plainapp", "--list", "--format", "json").stdout)
    levels = {row["id"]: row["level"] for row in rows}
    assert sorted(ids) == sorted(levels)
    return levels


@pytest.fixture(scope="module")
def page() -> str:
    return CHECKS_PAGE.read_text("utf-8")


def test_every_listed_check_has_an_anchor_and_a_heading(
    catalogue: dict[str, str], page: str
) -> None:
    """Each id of `--list` has its <a id> (the HTML report's link target) and its heading."""
    missing = [
        check_id
        for check_id in catalogue
        if f'<a id="{doc_anchor(check_id)}"></a>\n### `{check_id}`\n' not in page
    ]
    assert missing == []


def test_no_heading_for_a_check_that_does_not_exist(catalogue: dict[str, str], page: str) -> None:
    """Every check heading of the reference names an id of the catalogue."""
    headings = re.findall(r"^### `([a-z0-9_]+\.[a-z0-9_]+)`$", page, re.M)
    assert sorted(headings) == sorted(catalogue)


def test_summary_table_matches_the_registry(catalogue: dict[str, str], page: str) -> None:
    """The summary table lists every id once, links its anchor, and gives its default level."""
    rows = [match.groupdict() for match in TABLE_ROW.finditer(page)]
    assert sorted(row["id"] for row in rows) == sorted(catalogue)
    assert [row for row in rows if row["anchor"] != doc_anchor(row["id"])] == []
    assert {row["id"]: row["level"] for row in rows} == catalogue


@main_suite_only
def test_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` (as `make docs` runs it) passes: no broken link or anchor."""
    config, site = str(ROOT / "mkdocs.yml"), str(tmp_path / "site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", site],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "checks" / "index.html").exists()


def _sections(page: str) -> dict[str, str]:
    """{id: the first paragraph under its heading, on one line}."""
    found = {}
    for match in re.finditer(r"^### `([a-z0-9_]+\.[a-z0-9_]+)`\n\n(.+?)\n\n", page, re.M | re.S):
        found[match.group(1)] = " ".join(match.group(2).split())
    return found


def test_each_entry_states_the_registry_title_level_and_tags(page: str) -> None:
    """Each entry opens with the check's title, default level and tags, as registered."""
    from flask_prodready.checks import builtin_checks
    from flask_prodready.engine.runner import ENGINE_CHECKS

    sections = _sections(page)
    wrong = []
    for item in [*ENGINE_CHECKS, *builtin_checks()]:
        opening = sections.get(item.id, "")
        parts = (
            f"{item.title}. **Level** {item.level.value}",
            f"**Tags** {', '.join(item.tags)} ",
        )
        if not (opening.startswith(parts[0]) and parts[1] in opening):
            wrong.append((item.id, opening[:200]))
    assert wrong == []
