"""The pytest plugin: the readiness checks inside a project's own test suite.

Installing flask-prodready registers this module with pytest (entry point ``pytest11``,
name ``prodready``). It offers two things:

- ``pytest --prodready=APP``: one test item per check, ``prodready::<check id>``, of the
  app that ``APP`` names as ``flask --app`` would (``module:create_app``,
  ``module:app``, ``module``). An item fails when its check has an unsilenced finding at
  or above ``--prodready-fail-level`` (default ``error``) or when the check errored, and
  is skipped when the check could not judge from here. One report, mode ``cli``, is
  built once for the session, when the first item runs.
- the ``prodready_report`` fixture: a fresh :class:`~flask_prodready.Report` (mode
  ``cli``) of the app the project's own fixture named ``app`` returns.

A run that uses neither pays nothing: this module imports pytest only, and Flask, the
engine and the project's app are imported by the hooks that need them, when ``--prodready``
is given or the fixture is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flask import Flask

    from .engine.findings import CheckOutcome, Finding, Report
    from .engine.registry import Check
    from .engine.state import AppState

__all__ = ["ReadinessCollector", "ReadinessFailure", "ReadinessItem", "prodready_report"]

#: The node that holds the items: their ids are ``prodready::<check id>``.
NODE_NAME = "prodready"
#: The values of ``--prodready-fail-level`` (the engine's levels, most severe first; kept
#: here as text so that reading the options imports nothing).
FAIL_LEVELS = ("critical", "error", "warning", "info")
#: The environment variable ``--prodready-config`` sets while the app is created and checked.
CONFIG_VARIABLE = "FLASK_CONFIG"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("prodready", "flask-prodready: production readiness checks")
    group.addoption(
        "--prodready",
        dest="prodready_app",
        metavar="APP",
        default=None,
        help="Add one test per readiness check of the Flask app APP, named as flask --app "
        "names it: module:create_app (a factory called without arguments), module:app or "
        "module.",
    )
    group.addoption(
        "--prodready-fail-level",
        dest="prodready_fail_level",
        choices=FAIL_LEVELS,
        default="error",
        help="A check's test fails when it has an unsilenced finding at or above this level "
        "(default: error).",
    )
    group.addoption(
        "--prodready-config",
        dest="prodready_config",
        metavar="NAME",
        default=None,
        help=f"Set {CONFIG_VARIABLE}=NAME in the environment while the app is created and "
        "checked (for apps that pick their configuration from it).",
    )
    group.addoption(
        "--prodready-tag",
        dest="prodready_tags",
        action="append",
        default=[],
        metavar="TAG",
        help="Only add the checks with this tag (repeatable).",
    )
    group.addoption(
        "--prodready-exclude",
        dest="prodready_excludes",
        action="append",
        default=[],
        metavar="ID",
        help="Leave out the check with this id (repeatable).",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    target = config.getoption("prodready_app")
    if not target:
        return None
    level = config.getoption("prodready_fail_level")
    return f"prodready: {target} (fail level {level})"


class _Run:
    """The app under ``--prodready``, its checks, and the session's report once built."""

    def __init__(
        self, app: Flask, state: AppState, checks: list[Check], config_name: str | None
    ) -> None:
        self.app = app
        self.state = state
        self.checks = {check.id: check for check in checks}
        self.config_name = config_name
        self.report: Report | None = None


_RUN = pytest.StashKey[_Run]()


@contextlib.contextmanager
def _config_environment(config_name: str | None) -> Iterator[None]:
    """``FLASK_CONFIG`` set to ``config_name`` for the duration (unchanged when ``None``),
    so that the project's own tests of the same session see the environment they had."""
    if config_name is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONFIG_VARIABLE, config_name)
        yield


def _one_line(text: str) -> str:
    """``text`` masked with the environment's secrets and put on one line."""
    from .engine.redaction import Redactor

    redactor = Redactor.for_config({})
    return redactor.text(" ".join(redactor.text(text).split()))


def _load_app(target: str, config_name: str | None) -> Flask:
    """The app ``target`` names, loaded as ``flask --app`` loads it; a usage error (one
    line, no traceback) when it cannot be."""
    from flask.cli import NoAppException, ScriptInfo

    try:
        with _config_environment(config_name):
            return ScriptInfo(app_import_path=target).load_app()
    except NoAppException as exc:
        # Flask puts the traceback of a failed import in the message: its first line says
        # what failed, its last line with what exception.
        lines = [line.strip() for line in exc.format_message().splitlines() if line.strip()]
        shown = " ".join(lines[:1] if len(lines) < 2 else [lines[0], lines[-1]])
        raise pytest.UsageError(f"--prodready={target}: {_one_line(shown)}") from None
    except Exception as exc:
        detail = _one_line(str(exc))
        raise pytest.UsageError(
            f"--prodready={target}: the app failed to load: {type(exc).__name__}"
            + (f": {detail}" if detail else "")
        ) from None


def _state_of(app: Flask, what: str) -> AppState:
    """The ProdReady state of ``app``, or a ``ValueError`` saying how to install it."""
    from .engine.state import EXTENSION_KEY, AppState

    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise ValueError(
            f"ProdReady is not installed on the app {app.name!r} ({what}): call "
            "ProdReady(app) or prodready.init_app(app) where the app is created"
        )
    return state


def _prepare_run(config: pytest.Config, target: str) -> _Run:
    """Load the app and select its checks; any mistake is a usage error."""
    config_name = config.getoption("prodready_config")
    tags: list[str] = config.getoption("prodready_tags")
    excludes: list[str] = config.getoption("prodready_excludes")
    app = _load_app(target, config_name)
    try:
        state = _state_of(app, f"--prodready={target}")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    for tag in state.registry.unknown_tags(tags):
        raise pytest.UsageError(
            f"unknown tag {tag!r} in --prodready-tag; see `flask readiness --list` for the tags"
        )
    for check_id in state.registry.unknown_ids(excludes):
        raise pytest.UsageError(
            f"unknown check id {check_id!r} in --prodready-exclude; see `flask readiness --list`"
        )
    return _Run(app, state, state.registry.select(tags, excludes), config_name)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--prodready``, add the checks' items to whatever else was collected.

    First among the plugins, so that ``-k``, ``-m`` and ``--deselect`` apply to them too.
    """
    target = config.getoption("prodready_app")
    if not target:
        return
    config.stash[_RUN] = _prepare_run(config, target)
    collector = ReadinessCollector.from_parent(session, name=NODE_NAME, nodeid=NODE_NAME)
    # Through the session, as its own collection goes: the collection reports (and so the
    # "collected N items" line) count these items.
    items.extend(session.genitems(collector))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """One line with the report's status and counts, when the checks ran."""
    run = config.stash.get(_RUN, None)
    if run is None or run.report is None:
        return
    counts = run.report.summary()
    shown = " · ".join(f"{count} {name}" for name, count in counts.items())
    terminalreporter.write_sep("-", "flask-prodready")
    terminalreporter.write_line(f"status {run.report.status.value} · {shown}")


class ReadinessCollector(pytest.Collector):
    """The ``prodready`` node: one :class:`ReadinessItem` per selected check."""

    def collect(self) -> list[pytest.Item]:
        run = self.config.stash[_RUN]
        return [
            ReadinessItem.from_parent(self, name=check_id, check_id=check_id)
            for check_id in run.checks
        ]


class ReadinessFailure(Exception):
    """A check's findings at or above the fail level, or a check that errored; shown as its
    message alone (no traceback)."""


class ReadinessItem(pytest.Item):
    """One check of the session's report: passes, fails with its findings, or is skipped."""

    def __init__(self, *, check_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_id = check_id

    def runtest(self) -> None:
        from .engine.findings import Level, Status

        outcome = _session_report(self.session).outcomes[self.check_id]
        if outcome.status is Status.SKIPPED:
            pytest.skip(outcome.reason or "skipped")
        if outcome.status is Status.ERROR:
            raise ReadinessFailure(_errored(outcome))
        threshold = Level.parse(self.config.getoption("prodready_fail_level"))
        failing = [f for f in outcome.findings if not f.silenced and f.level.rank >= threshold.rank]
        if failing:
            raise ReadinessFailure("\n".join(_finding_lines(f) for f in failing))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if isinstance(excinfo.value, ReadinessFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # The heading of a failure, as the YAML example of pytest's documentation words it;
        # not the item's id, whose dots pytest's verbose line would turn into "::".
        return self.path, None, f"{NODE_NAME}: {self.check_id}"


def _session_report(session: pytest.Session) -> Report:
    """The session's report, built when the first item runs: of the checks still
    selected after ``-k``/``-m``/``--deselect``, so a narrowed run runs only those."""
    run = session.config.stash[_RUN]
    if run.report is None:
        from .engine.registry import CLI

        wanted = {item.check_id for item in session.items if isinstance(item, ReadinessItem)}
        checks = [check for check_id, check in run.checks.items() if check_id in wanted]
        with _config_environment(run.config_name), run.app.app_context():
            run.report = run.state.build_report(run.app, mode=CLI, checks=checks)
    return run.report


def _finding_lines(finding: Finding) -> str:
    text = f"{finding.level.value.upper()} {finding.id}: {finding.message}"
    return text + (f"\n    fix: {finding.hint}" if finding.hint else "")


def _errored(outcome: CheckOutcome) -> str:
    lines = [f"{outcome.check_id} could not run: {outcome.reason or 'it raised or timed out'}"]
    lines += [_finding_lines(f) for f in outcome.findings if not f.silenced]
    return "\n".join(lines)


@pytest.fixture
def prodready_report(request: pytest.FixtureRequest) -> Report:
    """The readiness report (mode ``cli``, every check) of the app returned by the
    project's fixture named ``app``, built afresh for each test."""
    from .engine.registry import CLI

    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        pytest.fail(
            "prodready_report needs a fixture named 'app' that returns the Flask app "
            "(with ProdReady installed): define it in the project's conftest.py",
            pytrace=False,
        )
    from flask import Flask

    if not isinstance(app, Flask):
        pytest.fail(
            f"prodready_report: the 'app' fixture returned {type(app).__name__}, not a Flask app",
            pytrace=False,
        )
    try:
        state = _state_of(app, "the 'app' fixture")
    except ValueError as exc:
        pytest.fail(f"prodready_report: {exc}", pytrace=False)
    with app.app_context():
        return state.build_report(app, mode=CLI)
