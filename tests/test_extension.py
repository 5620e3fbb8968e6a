"""The ProdReady extension object: init_app, state, custom checks, entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import CheckContext, Finding, ProdReady
from flask_prodready.engine.state import AppState, get_state

from .support import messages_of


def test_state_lives_in_app_extensions() -> None:
    """State is in app.extensions['prodready'], never on the extension object."""
    ext = ProdReady()
    first, second = Flask("one"), Flask("two")
    ext.init_app(first)
    ext.init_app(second)
    assert isinstance(first.extensions["prodready"], AppState)
    assert first.extensions["prodready"] is not second.extensions["prodready"]
    assert not hasattr(ext, "app")


def test_init_app_twice_raises() -> None:
    """A second init_app on one app raises RuntimeError saying what to do."""
    app = Flask("twice")
    ProdReady(app)
    with pytest.raises(RuntimeError, match="already initialised on this app"):
        ProdReady().init_app(app)


def test_get_state_without_init() -> None:
    """Asking for the state of an app without ProdReady gives a clear error."""
    with pytest.raises(RuntimeError, match="call init_app"):
        get_state(Flask("none"))


def test_routes_and_command_are_registered() -> None:
    """init_app adds the two endpoints and the readiness command."""
    app = Flask("routes")
    ProdReady(app)
    rules = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert rules["/healthz"] == "prodready.healthz"
    assert rules["/_readiness"] == "prodready.readiness"
    assert "readiness" in app.cli.commands


def test_custom_check_runs_like_a_builtin(make_app: Callable[..., Flask]) -> None:
    """A check added with @prodready.check runs and reports like a built-in one."""
    ext = ProdReady()

    @ext.check(
        "myapp.redis",
        level="error",
        tags=["dependencies"],
        title="Redis answers PING",
        hint="Check REDIS_URL and the server.",
    )
    def redis_answers(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding("Redis did not answer PING")

    app = make_app(ext)
    assert messages_of(app, "myapp.redis") == [("error", "Redis did not answer PING")]
    report = get_state(app).build_report(app, mode="cli", tags=["dependencies"])
    finding = next(f for f in report.findings if f.id == "myapp.redis")
    assert finding.hint == "Check REDIS_URL and the server."
    assert finding.tags == ("myapp", "dependencies")


def test_custom_check_id_clash_raises() -> None:
    """A custom check cannot take a built-in id, or another custom check's id."""
    ext = ProdReady()
    with pytest.raises(ValueError, match=r"'config\.debug' is already registered"):
        ext.check("config.debug", title="Mine")(lambda ctx: None)
    ext.check("myapp.one", title="One")(lambda ctx: None)
    with pytest.raises(ValueError, match=r"'myapp\.one' is already registered"):
        ext.check("myapp.one", title="One again")(lambda ctx: None)


def _install_plugin(site: Path, name: str, code: str, target: str) -> None:
    """A real installed distribution with a flask_prodready.checks entry point."""
    (site / f"{name}.py").write_text(textwrap.dedent(code))
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[flask_prodready.checks]\n{name} = {target}\n")


def test_entry_point_checks_are_loaded(tmp_path: Path) -> None:
    """A package's checks in the flask_prodready.checks group join the catalogue."""
    _install_plugin(
        tmp_path,
        "prodready_plugin",
        """
        from flask_prodready import check

        @check("plugin.always", level="warning", title="Always warns")
        def always(ctx):
            yield ctx.finding("from a plugin")
    """,
        "prodready_plugin:always",
    )
    script = textwrap.dedent("""
        import json
        from flask import Flask
        from flask_prodready import ProdReady
        app = Flask("x")
        ProdReady(app)
        state = app.extensions["prodready"]
        report = state.build_report(app, mode="cli", tags=["plugin"])
        print(json.dumps([[f.id, f.message] for f in report.findings]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[["plugin.always", "from a plugin"]]'


def test_broken_entry_point_fails_start_up_naming_it(tmp_path: Path) -> None:
    """An entry point that cannot be imported fails init_app, naming the entry point."""
    _install_plugin(tmp_path, "broken_plugin", "import does_not_exist\n", "broken_plugin:x")
    script = "from flask import Flask\nfrom flask_prodready import ProdReady\nProdReady(Flask('x'))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "could not load the check entry point 'broken_plugin'" in done.stderr


def test_import_is_cheap() -> None:
    """import flask_prodready does not import SQLAlchemy, sentry-sdk, psutil, gunicorn or
    urllib3 (remote mode's HTTP client)."""
    script = (
        "import sys, flask_prodready; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'flask_sqlalchemy', 'sentry_sdk', 'psutil', 'gunicorn', 'urllib3'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_check_declared_after_init_app_joins(make_app: Callable[..., Flask]) -> None:
    """A check declared after init_app still runs on the apps already set up."""
    ext = ProdReady()
    app = make_app(ext)

    @ext.check("myapp.late", title="Declared late", level="warning")
    def late(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding("late but present")

    assert messages_of(app, "myapp.late") == [("warning", "late but present")]
