"""The pytest plugin (flask_prodready.pytest_plugin), run for real: pytest in a fresh
project folder, with the plugin loaded from the installed package's ``pytest11`` entry
point as any project's pytest would load it.

Runs that install ProdReady on an app are subprocesses: pytester takes back the modules
an in-process run imports (the checks', SQLAlchemy), and the rest of the suite would then
import them a second time. Runs that stop before that (a usage error, a fixture error)
are in-process.
"""

from __future__ import annotations

import ast
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import ProdReady, pytest_plugin
from flask_prodready.engine.findings import Level
from flask_prodready.engine.state import get_state

from .stacks import EXAMPLE_APP_NEEDS_SQLALCHEMY_2, SQLALCHEMY

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
#: Made at run time: a key written in this file would be "in the source" of the project.
STRONG_KEY = secrets.token_hex(32)
TOKEN = secrets.token_urlsafe(32)
#: What every inner run gets: no cache folder, and a warning is an error, as in this suite.
INNER = ("-p", "no:cacheprovider", "-W", "error")

BROKEN_APP = """
import os

from flask import Flask

from flask_prodready import ProdReady

prodready = ProdReady()


@prodready.check("app.crashes", level="error", title="A check that raises", tags=["app"])
def check_crashes(ctx):
    raise RuntimeError("the check itself is broken")


@prodready.check(
    "app.warns", level="warning", title="A check that warns", tags=["app"], hint="Look at it."
)
def check_warns(ctx):
    yield ctx.finding("Something worth a look.")


@prodready.check("app.skips", level="error", title="A check that cannot judge", tags=["app"])
def check_skips(ctx):
    ctx.skip("nothing to judge in a test")


def create_app(debug=True):
    app = Flask(__name__)
    app.config["DEBUG"] = debug
    app.config["PRODREADY_SILENCED"] = {"cookies.session_secure": "HTTPS ends at the proxy"}
    prodready.init_app(app)
    return app


def failing_factory():
    raise RuntimeError("cannot start: key " + os.environ["SECRET_KEY"] + " rejected")


bare = Flask(__name__)
"""


@pytest.fixture(scope="session")
def catalogue() -> set[str]:
    """The ids of the checks an app with ProdReady runs. Session-scoped, so it is set up
    before pytester's snapshot of ``sys.modules``: the check modules it imports stay."""
    app = Flask("catalogue")
    ProdReady(app)
    return {check.id for check in get_state(app).registry.select()}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project folder holding ``brokenapp.py``, with this repository importable (for the
    example app) and a SECRET_KEY-free environment."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(brokenapp=BROKEN_APP)
    return pytester


def _ids(result: pytest.RunResult, status: str) -> set[str]:
    """The ids of the prodready items that ended with ``status`` in a ``-v`` run."""
    return {
        line.split()[0].removeprefix("prodready::")
        for line in result.outlines
        if line.startswith("prodready::") and f" {status}" in line
    }


class TestExampleApp:
    @pytest.fixture
    def production(
        self, project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The example app's production environment, its database migrated as a deploy
        does (``flask db upgrade``). The app is never imported here: pytester takes back
        the modules a test imports, and SQLAlchemy warns when imported twice."""
        if SQLALCHEMY < (2, 0):
            pytest.skip(EXAMPLE_APP_NEEDS_SQLALCHEMY_2)
        monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
        monkeypatch.setenv("PRODREADY_TOKEN", TOKEN)
        monkeypatch.setenv("EXAMPLE_INSTANCE_PATH", str(tmp_path / "instance"))
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "example_app", "db", "upgrade"],
            env={**os.environ, "FLASK_CONFIG": "production"},
            cwd=project.path,
            check=True,
            capture_output=True,
            timeout=120,
        )

    @pytest.mark.usefixtures("production")
    def test_one_test_per_check_and_exit_0(
        self, catalogue: set[str], project: pytest.Pytester
    ) -> None:
        """``--prodready=example_app:create_app --prodready-config production`` collects one
        item per check of the app, named ``prodready::<id>``, and exits 0: every check
        passes or is skipped; FLASK_CONFIG is set for the app, not for the project's own
        tests of the same session."""
        project.makepyfile(
            test_own="""
            import os

            def test_own_environment_is_untouched():
                assert "FLASK_CONFIG" not in os.environ
            """
        )
        result = project.runpytest_subprocess(
            *INNER,
            "--prodready=example_app:create_app",
            "--prodready-config",
            "production",
            "-v",
        )
        expected = catalogue | {"example.database_file"}  # and the example app's own check

        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        ran = _ids(result, "PASSED") | _ids(result, "SKIPPED")
        assert ran == expected
        assert "example.database_file" in _ids(result, "PASSED")
        result.stdout.fnmatch_lines(
            [
                "prodready: example_app:create_app (fail level error)",
                f"*collected {len(expected) + 1} items",
                "test_own.py::test_own_environment_is_untouched PASSED*",
                "status warn · 0 critical · 0 error · 2 warning *",
            ]
        )

    @pytest.mark.usefixtures("production")
    def test_fixture_reports_on_the_project_s_own_app(self, project: pytest.Pytester) -> None:
        """A project's fixture named ``app`` is what ``prodready_report`` reports on."""
        project.makeconftest(
            """
            import os

            import pytest

            from example_app import create_app


            @pytest.fixture
            def app():
                return create_app("production", instance_path=os.environ["EXAMPLE_INSTANCE_PATH"])
            """
        )
        project.makepyfile(
            test_ready="""
            from flask_prodready import Level, Status


            def test_ready_for_production(prodready_report):
                assert prodready_report.mode == "cli"
                assert prodready_report.failing(Level.ERROR) == []
                assert prodready_report.outcomes["config.debug"].status is Status.PASS
            """
        )
        result = project.runpytest_subprocess(*INNER)

        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.assert_outcomes(passed=1)


class TestBrokenApp:
    def test_failing_checks_are_named_with_their_findings(self, project: pytest.Pytester) -> None:
        """DEBUG on and no SECRET_KEY: exit 1, each failing check a failed test with its
        findings (level, id, message, fix); a crashed check fails; a finding below the
        fail level or silenced passes; a check that cannot judge is skipped with why."""
        result = project.runpytest_subprocess(
            *INNER, "--prodready=brokenapp:create_app", "-v", "-rfs"
        )

        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert _ids(result, "FAILED") == {
            "config.debug",
            "config.secret_key_missing",
            "app.crashes",
        }
        assert {"app.warns", "cookies.session_secure"} <= _ids(result, "PASSED")
        assert "app.skips" in _ids(result, "SKIPPED")
        result.stdout.fnmatch_lines(
            [
                "*_ prodready: app.crashes _*",
                "app.crashes could not run: raised RuntimeError",
                "ERROR prodready.check_crashed: check app.crashes raised RuntimeError: *",
                "*_ prodready: config.debug _*",
                "CRITICAL config.debug: The app runs in debug mode (DEBUG is true).",
                "    fix: Set DEBUG = False*",
                "FAILED prodready::config.debug - CRITICAL config.debug: *",
                "FAILED prodready::config.secret_key_missing - *",
                "SKIPPED * nothing to judge in a test",
            ]
        )

    def test_selection_and_fail_level(self, project: pytest.Pytester) -> None:
        """``--prodready-tag`` and ``--prodready-exclude`` choose the items;
        ``--prodready-fail-level warning`` fails a check on a warning."""
        result = project.runpytest_subprocess(
            *INNER,
            "--prodready=brokenapp:create_app",
            "--prodready-tag",
            "app",
            "--prodready-exclude",
            "app.crashes",
            "--prodready-fail-level",
            "warning",
            "-v",
        )

        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*collected 2 items", "WARNING app.warns: Something*"])
        assert _ids(result, "FAILED") == {"app.warns"}
        assert _ids(result, "SKIPPED") == {"app.skips"}

    def test_k_narrows_the_checks_that_run(self, project: pytest.Pytester) -> None:
        """``-k`` deselects items, and the deselected checks do not run at all."""
        result = project.runpytest_subprocess(
            *INNER, "--prodready=brokenapp:create_app", "-k", "debug"
        )

        assert result.ret == pytest.ExitCode.TESTS_FAILED
        outcomes = result.parseoutcomes()
        assert outcomes["failed"] == 1
        assert outcomes["deselected"] > 0
        assert "passed" not in outcomes
        assert "crashed" not in result.stdout.str()

    def test_collect_only_lists_the_ids_without_running(self, project: pytest.Pytester) -> None:
        """``--co -q`` prints ``prodready::<id>`` per check and runs none of them."""
        result = project.runpytest_subprocess(
            *INNER, "--prodready=brokenapp:create_app", "--co", "-q"
        )

        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["prodready::app.crashes", "prodready::config.debug"])
        assert "crashed" not in result.stdout.str()
        assert "flask-prodready" not in result.stdout.str()


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("nosuch_module:create_app", "--prodready=nosuch_module:create_app: Could not import*"),
            ("brokenapp:nothing", "*Failed to find attribute 'nothing' in 'brokenapp'.*"),
            (
                "brokenapp:bare",
                "*ProdReady is not installed on the app 'brokenapp'*prodready.init_app(app)*",
            ),
            (
                "brokenapp:failing_factory",
                "*the app failed to load: RuntimeError: cannot start: key *** rejected",
            ),
            ("importerror", "*While importing 'importerror'*No module named 'nosuch_dependency'"),
        ],
        ids=["module", "attribute", "no-prodready", "factory-raises", "import-raises"],
    )
    def test_an_app_that_cannot_be_checked_is_a_usage_error(
        self, project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: str, message: str
    ) -> None:
        """An app that does not load or has no ProdReady stops the run with one line saying
        what to do (exit 4, pytest's usage error), secrets masked, no traceback."""
        monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
        project.makepyfile(importerror="import nosuch_dependency\n")
        result = project.runpytest(*INNER, f"--prodready={target}")

        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {message}"])
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output
        assert STRONG_KEY not in output

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            ("--prodready-tag=nope", "unknown tag 'nope' in --prodready-tag*"),
            ("--prodready-exclude=nope.x", "unknown check id 'nope.x' in --prodready-exclude*"),
        ],
    )
    def test_unknown_tag_or_id_is_a_usage_error(
        self, project: pytest.Pytester, option: str, message: str
    ) -> None:
        """A tag or an id the app's catalogue does not have is refused, as the CLI does."""
        result = project.runpytest_subprocess(*INNER, "--prodready=brokenapp:create_app", option)

        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {message}"])


class TestFixture:
    def test_fresh_report_per_test_of_the_app_fixture(self, project: pytest.Pytester) -> None:
        """``prodready_report`` reports on the ``app`` fixture's app, anew for each test."""
        project.makeconftest(
            """
            import pytest

            from brokenapp import create_app


            @pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
            def app(request):
                return create_app(debug=request.param)
            """
        )
        project.makepyfile(
            test_report="""
            from flask_prodready import Level, Report, Status


            def test_debug_follows_the_app(app, prodready_report):
                assert isinstance(prodready_report, Report)
                assert prodready_report.mode == "cli"
                debug = prodready_report.outcomes["config.debug"].status
                assert debug is (Status.FAIL if app.config["DEBUG"] else Status.PASS)
                assert "config.secret_key_missing" in {
                    f.id for f in prodready_report.failing(Level.CRITICAL)
                }
            """
        )
        result = project.runpytest_subprocess(*INNER)

        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.assert_outcomes(passed=2)

    def test_without_an_app_fixture_or_prodready_the_test_errors_saying_why(
        self, project: pytest.Pytester
    ) -> None:
        """No ``app`` fixture, or an app without ProdReady: the test errors with what to do."""
        project.makepyfile(
            test_none="""
            def test_needs_app(prodready_report):
                pass
            """
        )
        bare = project.mkpydir("bare")
        (bare / "conftest.py").write_text(
            "import pytest\nfrom brokenapp import bare\n\n\n"
            "@pytest.fixture\ndef app():\n    return bare\n"
        )
        (bare / "test_bare.py").write_text("def test_bare(prodready_report):\n    pass\n")
        result = project.runpytest(*INNER)

        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines_random(
            [
                "*prodready_report needs a fixture named 'app' that returns the Flask app*",
                "*prodready_report: ProdReady is not installed on the app 'brokenapp'*",
            ]
        )


def test_a_run_without_the_option_is_unaffected(pytester: pytest.Pytester) -> None:
    """Without ``--prodready`` nothing is added and no app is imported (an ``app.py`` that
    raises on import stays unimported)."""
    pytester.makepyfile(app="raise SystemExit('the app was imported')\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(*INNER, "-v")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*collected 1 item"])
    output = result.stdout.str()
    assert "prodready::" not in output
    assert "prodready: " not in output
    assert "flask-prodready ---" not in output


def test_the_plugin_imports_only_pytest_and_the_standard_library_up_front() -> None:
    """At module level the plugin imports pytest and the standard library alone (Flask,
    the engine and the project's app only inside the hooks that need them)."""
    tree = ast.parse(Path(pytest_plugin.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." if node.level else (node.module or "").split(".")[0])
    assert imported <= {"__future__", "contextlib", "collections", "typing", "pytest"}


def test_fail_levels_are_the_engine_s_levels() -> None:
    """``--prodready-fail-level`` offers exactly the engine's levels."""
    assert tuple(level.value for level in Level) == pytest_plugin.FAIL_LEVELS
