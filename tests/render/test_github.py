"""`--format github`: GitHub Actions workflow commands, one per finding that fails the gate.

Every line is read back with the grammar of a workflow command (``::command
key=value,key=value::message``), and data and properties are unescaped as the runner
unescapes them, so an annotation is pinned down as GitHub reads it.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from flask_prodready.cli import main
from flask_prodready.engine.findings import CheckOutcome, Finding, Level, Report, Status
from flask_prodready.render import render
from flask_prodready.render.github import escape_data, escape_property, render_github
from flask_prodready.render.sarif import SourceLocations

from ..test_cli import BAD_APP, run_flask
from .samples import CRASHED, DEBUG_ON, KEY_IN_SOURCE, NO_BODY_LIMIT, mixed_report, sample_report

#: A workflow command: its name, its properties (no unescaped ':' or ','), its message
#: (no line break: one command is one line).
COMMAND = re.compile(
    r"^::(?P<command>error|warning|notice)"
    r"(?: (?P<properties>[a-zA-Z]+=[^:,\r\n]*(?:,[a-zA-Z]+=[^:,\r\n]*)*))?"
    r"::(?P<message>[^\r\n]*)$"
)


@dataclass(frozen=True)
class Annotation:
    command: str
    properties: dict[str, str]
    message: str


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return _unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def parse(output: str) -> list[Annotation]:
    """Each line of ``output`` as GitHub's runner reads it; fails on a line that is not a
    workflow command."""
    assert output == "" or output.endswith("\n")
    annotations = []
    for line in output.splitlines():
        match = COMMAND.match(line)
        assert match is not None, line
        properties = {}
        for pair in (match["properties"] or "").split(","):
            if pair:
                key, _, value = pair.partition("=")
                properties[key] = _unescape_property(value)
        annotations.append(
            Annotation(match["command"], properties, _unescape_data(match["message"]))
        )
    return annotations


def _report(*findings: Finding) -> Report:
    return sample_report(
        *(CheckOutcome(f.id, Status.FAIL, (f,)) for f in findings),
    )


def test_one_annotation_per_finding_at_or_above_the_fail_level() -> None:
    """At the default gate: the critical and the error findings, not the warning, not the
    silenced error; at warning the warning joins them."""
    report = mixed_report()
    at_error = parse(render_github(report, Level.ERROR))
    assert [(a.command, a.properties["title"]) for a in at_error] == [
        ("error", "config.debug"),
        ("error", "prodready.check_crashed"),
    ]
    at_warning = parse(render_github(report, Level.WARNING))
    assert [(a.command, a.properties["title"]) for a in at_warning] == [
        ("error", "config.debug"),
        ("error", "prodready.check_crashed"),
        ("warning", "config.max_content_length"),
    ]
    assert len(at_warning) == len(report.failing(Level.WARNING))


def test_message_then_hint() -> None:
    """The message is the finding's message, then its hint after a dash."""
    (annotation,) = parse(render_github(mixed_report(), Level.CRITICAL))
    assert annotation.message == f"{DEBUG_ON.message} — {DEBUG_ON.hint}"
    assert annotation.properties == {"title": "config.debug"}
    assert render_github(mixed_report(), Level.CRITICAL) == (
        "::error title=config.debug::The app runs in debug mode (DEBUG is true). — "
        "Set DEBUG = False.\n"
    )


def test_levels_map_to_commands() -> None:
    """critical and error are ::error, warning ::warning, info ::notice."""
    findings = [
        replace(NO_BODY_LIMIT, id=f"demo.{level.value}", level=level, hint="") for level in Level
    ]
    annotations = parse(render_github(_report(*findings), Level.INFO))
    assert {a.properties["title"]: a.command for a in annotations} == {
        "demo.critical": "error",
        "demo.error": "error",
        "demo.warning": "warning",
        "demo.info": "notice",
    }


def test_silenced_findings_are_left_out() -> None:
    """A silenced finding never becomes an annotation, whatever the level."""
    report = mixed_report()
    titles = [a.properties["title"] for a in parse(render_github(report, Level.INFO))]
    assert "cookies.session_secure" not in titles
    assert len(titles) == len(report.failing(Level.INFO)) == 3


def test_nothing_to_annotate_is_empty() -> None:
    """A report with nothing at or above the level prints nothing at all."""
    report = sample_report(CheckOutcome("config.max_content_length", Status.FAIL, (NO_BODY_LIMIT,)))
    assert render_github(report, Level.ERROR) == ""


def test_escapes_like_the_toolkit() -> None:
    """Data escapes %, CR and LF; properties also ':' and ','; exactly as @actions/core."""
    assert escape_data("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext: a,b"
    assert escape_property("100% done\r\nnext: a,b") == "100%25 done%0D%0Anext%3A a%2Cb"
    # Escaping "%" first: a literal "%0A" in a message stays literal.
    assert escape_data("%0A") == "%250A"


def test_newlines_commas_and_colons_cannot_break_out(tmp_path: Path) -> None:
    """A message with line breaks stays one command; a file name with ':' and ',' stays one
    property; both read back unchanged."""
    message = "line one\nline two\r\n::error::injected, 100%"
    finding = replace(
        KEY_IN_SOURCE,
        message=message,
        hint="",
        observed={"file": "conf/a,b:c.py", "line": 7},
    )
    output = render_github(
        _report(finding),
        Level.ERROR,
        locations=SourceLocations(tmp_path, "app.py"),
        environ={},
    )
    assert output.count("\n") == 1
    (annotation,) = parse(output)
    assert annotation.message == message
    assert annotation.properties == {
        "title": "config.secret_key_in_source",
        "file": "conf/a,b:c.py",
        "line": "7",
    }
    assert "file=conf/a%2Cb%3Ac.py,line=7::" in output


def test_file_named_by_the_finding(tmp_path: Path) -> None:
    """A finding naming a file is annotated on it; others name no file (they are about the
    app as a whole)."""
    report = sample_report(
        CheckOutcome("config.secret_key_in_source", Status.FAIL, (KEY_IN_SOURCE,)),
        CheckOutcome("demo.crashes", Status.ERROR, (CRASHED,)),
    )
    annotations = parse(
        render_github(
            report, Level.ERROR, locations=SourceLocations(tmp_path, "app.py"), environ={}
        )
    )
    by_title = {a.properties["title"]: a.properties for a in annotations}
    assert by_title["config.secret_key_in_source"] == {
        "title": "config.secret_key_in_source",
        "file": "myapp/settings.py",
    }
    assert by_title["prodready.check_crashed"] == {"title": "prodready.check_crashed"}


def test_paths_relative_to_the_workspace(tmp_path: Path) -> None:
    """In a workspace whose project is a subfolder, the path starts at the workspace; an
    absolute path inside the project is made relative; one outside it names no file."""
    project = tmp_path / "services" / "web"
    project.mkdir(parents=True)
    inside = replace(KEY_IN_SOURCE, observed={"file": str(project / "conf" / "prod.py")})
    outside = replace(KEY_IN_SOURCE, observed={"file": "/etc/myapp/secret.py"})
    locations = SourceLocations(project, "app.py")
    for finding, expected in [
        (KEY_IN_SOURCE, "services/web/myapp/settings.py"),
        (inside, "services/web/conf/prod.py"),
        (outside, None),
    ]:
        (annotation,) = parse(
            render_github(
                _report(finding),
                Level.ERROR,
                locations=locations,
                environ={"GITHUB_WORKSPACE": str(tmp_path)},
            )
        )
        assert annotation.properties.get("file") == expected
    # Without a workspace the project folder is the base.
    (annotation,) = parse(
        render_github(_report(inside), Level.ERROR, locations=locations, environ={})
    )
    assert annotation.properties["file"] == "conf/prod.py"


def test_render_dispatches_github() -> None:
    """render(report, "github") is the same output, gated at the threshold it is given."""
    report = mixed_report()
    assert render(report, "github", threshold=Level.WARNING) == render_github(
        report, Level.WARNING, locations=SourceLocations.here()
    )


def test_prodready_command_takes_the_format() -> None:
    """`prodready --format github` is accepted (what it still lacks is the URL)."""
    done = CliRunner().invoke(main, ["--format", "github"])
    assert done.exit_code == 2
    assert "--url is required" in done.output
    assert "invalid choice" not in done.output.lower()


KEY = "committed-f00d-" + "Xk4" * 9
KEY_APP = """
from flask import Flask
from flask_prodready import ProdReady
from settings import KEY

def create_app():
    app = Flask(__name__)
    app.config.update(DEBUG=True, SECRET_KEY=KEY)
    ProdReady(app)
    return app
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (folder / "badapp.py").write_text(textwrap.dedent(BAD_APP))
    (folder / "keyapp.py").write_text(textwrap.dedent(KEY_APP))
    (folder / "settings.py").write_text(f'KEY = "{KEY}"\n')
    return folder


def test_flask_readiness_format_github(project: Path) -> None:
    """A real `flask readiness --format github` on a bad app: exit 1, one well-formed
    annotation per unsilenced finding at or above the level, the same as the JSON report."""
    for level in ("error", "warning"):
        done = run_flask(project, "badapp", "--format", "github", "--fail-level", level)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        annotations = parse(done.stdout)
        body = json.loads(run_flask(project, "badapp", "--format", "json").stdout)
        failing = [
            f["id"]
            for f in body["findings"]
            if not f["silenced"] and Level(f["level"]).rank >= Level(level).rank
        ]
        assert sorted(a.properties["title"] for a in annotations) == sorted(failing)
        assert {"config.debug", "cookies.session_httponly"} <= set(failing)
        commands = {a.properties["title"]: a.command for a in annotations}
        assert commands["config.debug"] == "error"
        if level == "warning":
            assert "warning" in commands.values()


def test_flask_readiness_annotates_the_file_holding_the_key(project: Path) -> None:
    """config.secret_key_in_source is annotated on the file the key is written in, and the
    key itself appears nowhere."""
    done = run_flask(project, "keyapp", "--format", "github")
    assert done.returncode == 1, done.stderr
    by_title = {a.properties["title"]: a for a in parse(done.stdout)}
    assert by_title["config.secret_key_in_source"].properties["file"] == "settings.py"
    assert "file" not in by_title["config.debug"].properties
    assert KEY not in done.stdout + done.stderr
