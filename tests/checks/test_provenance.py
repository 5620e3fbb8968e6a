"""Where debug, testing and environment settings came from (checks/_provenance.py).

Each test lays out a checkout in a temporary folder, makes it the current folder and
loads its dotenv files with Flask's own ``flask.cli.load_dotenv``, as the ``flask``
command does before it creates the app.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.cli import load_dotenv

from flask_prodready.checks._provenance import EnvValue, Provenance, flask_dotenv_values
from flask_prodready.engine.registry import CLI, LIVE

from ..stacks import FLASK
from ..support import messages_of

MakeApp = Callable[..., Flask]

needs_flask_env = pytest.mark.skipif(
    FLASK >= (2, 3), reason="Flask reads FLASK_ENV before 2.3 only"
)
without_flask_env = pytest.mark.skipif(
    FLASK < (2, 3), reason="Flask before 2.3 turns debug on for FLASK_ENV=development"
)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project folder as the current folder; the process environment is put
    back as it was afterwards (load_dotenv writes to it)."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'checkout'\n")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("FLASK_SKIP_DOTENV", raising=False)
    saved = dict(os.environ)
    try:
        yield folder
    finally:
        os.environ.clear()
        os.environ.update(saved)


def flask_command_loads(folder: Path, **files: str) -> None:
    """Write dotenv files (``flaskenv=...``, ``env=...``) and load them as the ``flask``
    command does."""
    for name, text in files.items():
        (folder / f".{name}").write_text(text)
    load_dotenv()


class TestFlaskDotenvValues:
    def test_reads_both_files_env_wins(self, checkout: Path) -> None:
        """.env wins over .flaskenv; each value names its file."""
        (checkout / ".flaskenv").write_text("FLASK_DEBUG=1\nAPP_ENV=development\n")
        (checkout / ".env").write_text("APP_ENV=production\n")
        assert flask_dotenv_values() == {
            "FLASK_DEBUG": ("1", ".flaskenv"),
            "APP_ENV": ("production", ".env"),
        }

    def test_found_upward_named_from_the_current_folder(
        self, checkout: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file in a parent folder is found, as Flask finds it, and named relative to here."""
        (checkout / ".flaskenv").write_text("FLASK_DEBUG=1\n")
        (checkout / "sub").mkdir()
        monkeypatch.chdir(checkout / "sub")
        assert flask_dotenv_values() == {"FLASK_DEBUG": ("1", os.path.join("..", ".flaskenv"))}

    def test_skip_dotenv(self, checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLASK_SKIP_DOTENV=1 turns Flask's loading off, so nothing counts as loaded."""
        (checkout / ".flaskenv").write_text("FLASK_DEBUG=1\n")
        monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
        assert flask_dotenv_values() == {}

    def test_without_python_dotenv(self, checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without python-dotenv Flask loads nothing, so nothing counts as loaded."""
        (checkout / ".flaskenv").write_text("FLASK_DEBUG=1\n")
        monkeypatch.setitem(sys.modules, "dotenv", None)  # import dotenv raises ImportError
        assert flask_dotenv_values() == {}


class TestVariable:
    def test_dotenv_only(self, checkout: Path) -> None:
        """A value the process holds exactly as the file says is the file's, from the CLI."""
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert Provenance(CLI).variable("FLASK_DEBUG") == EnvValue("FLASK_DEBUG", "1", ".flaskenv")

    def test_shell_value_differs(self, checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A value set in the shell that the file did not override is the process's."""
        monkeypatch.setenv("FLASK_DEBUG", "true")
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert Provenance(CLI).variable("FLASK_DEBUG") == EnvValue("FLASK_DEBUG", "true")

    def test_live_is_the_process(self, checkout: Path) -> None:
        """Live, a value in the process is what the server runs with, whoever loaded it."""
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert Provenance(LIVE).variable("FLASK_DEBUG") == EnvValue("FLASK_DEBUG", "1")

    def test_unset(self, checkout: Path) -> None:
        """An unset variable has no value and no origin."""
        assert Provenance(CLI).variable("FLASK_DEBUG") is None


class TestDebugFlag:
    @pytest.mark.parametrize("value", ["", "0", "false", "No"])
    def test_off(self, checkout: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """An empty or false FLASK_DEBUG does not ask for debug."""
        monkeypatch.setenv("FLASK_DEBUG", value)
        assert Provenance(CLI).debug_flag() is None

    @needs_flask_env
    def test_flask_env_development(self, checkout: Path) -> None:
        """Before Flask 2.3, FLASK_ENV=development from .flaskenv is the debug flag."""
        flask_command_loads(checkout, flaskenv="FLASK_ENV=development\n")
        assert Provenance(CLI).debug_flag() == EnvValue("FLASK_ENV", "development", ".flaskenv")

    @without_flask_env
    def test_flask_env_ignored(self, checkout: Path) -> None:
        """From Flask 2.3 on, FLASK_ENV does not turn debug on."""
        flask_command_loads(checkout, flaskenv="FLASK_ENV=development\n")
        assert Provenance(CLI).debug_flag() is None


class TestConfigFromDotenv:
    def test_prefixed(self, checkout: Path) -> None:
        """TESTING equal to FLASK_TESTING as from_prefixed_env() parses it is the file's."""
        flask_command_loads(checkout, env="FLASK_TESTING=true\n")
        assert Provenance(CLI).config_from_dotenv("TESTING", True) == EnvValue(
            "FLASK_TESTING", "true", ".env"
        )

    def test_other_value(self, checkout: Path) -> None:
        """TESTING=True is not what from_prefixed_env() makes of FLASK_TESTING=1 (1)."""
        flask_command_loads(checkout, env="FLASK_TESTING=1\n")
        assert Provenance(CLI).config_from_dotenv("TESTING", True) is None


class TestDebugCheck:
    def test_dotenv_debug_is_a_warning(self, checkout: Path, make_app: MakeApp) -> None:
        """FLASK_DEBUG=1 only from .flaskenv: a warning naming the file, not critical."""
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert messages_of(make_app(), "config.debug") == [
            (
                "warning",
                "FLASK_DEBUG='1' comes from .flaskenv, which the flask command loads: it runs "
                "the app in debug mode (and so does anything run through it, like flask run), "
                "but gunicorn and uWSGI do not read that file.",
            )
        ]

    def test_live_dotenv_debug_is_critical(self, checkout: Path, make_app: MakeApp) -> None:
        """Live, FLASK_DEBUG in the process is what the server runs with: critical."""
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert messages_of(make_app(), "config.debug", mode="live") == [
            ("critical", "The app runs in debug mode (DEBUG is true)."),
            ("critical", "FLASK_DEBUG='1' is set in the environment."),
        ]

    def test_shell_debug_is_critical(
        self, checkout: Path, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """FLASK_DEBUG set in the shell to another value than the file's: critical."""
        monkeypatch.setenv("FLASK_DEBUG", "true")
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=1\n")
        assert messages_of(make_app(), "config.debug") == [
            ("critical", "The app runs in debug mode (DEBUG is true)."),
            ("critical", "FLASK_DEBUG='true' is set in the environment."),
        ]

    def test_config_debug_is_critical(self, checkout: Path, make_app: MakeApp) -> None:
        """DEBUG = True in the app's config is critical even when .flaskenv turns it off."""
        flask_command_loads(checkout, flaskenv="FLASK_DEBUG=0\n")
        assert messages_of(make_app(DEBUG=True), "config.debug") == [
            ("critical", "The app runs in debug mode (DEBUG is true).")
        ]

    def test_unset_quiet(self, checkout: Path, make_app: MakeApp) -> None:
        """A .flaskenv without FLASK_DEBUG: no finding."""
        flask_command_loads(checkout, flaskenv="FLASK_APP=app\n")
        assert messages_of(make_app(), "config.debug") == []

    @needs_flask_env
    def test_flask_env_dotenv(self, checkout: Path, make_app: MakeApp) -> None:
        """Before Flask 2.3, FLASK_ENV=development from .flaskenv is a warning naming it."""
        flask_command_loads(checkout, flaskenv="FLASK_ENV=development\n")
        assert messages_of(make_app(), "config.debug") == [
            (
                "warning",
                "FLASK_ENV='development' comes from .flaskenv, which the flask command loads: "
                "it runs the app in debug mode (and so does anything run through it, like "
                "flask run), but gunicorn and uWSGI do not read that file.",
            )
        ]


class TestTestingCheck:
    def test_prefixed_dotenv_is_a_warning(self, checkout: Path, make_app: MakeApp) -> None:
        """TESTING from FLASK_TESTING in .env through from_prefixed_env(): a warning."""
        flask_command_loads(checkout, env="FLASK_TESTING=true\n")
        app = make_app()
        app.config.from_prefixed_env()
        assert messages_of(app, "config.testing") == [
            (
                "warning",
                "TESTING is true, as FLASK_TESTING='true' from .env makes it "
                "(from_prefixed_env()); the flask command loads that file, but gunicorn and "
                "uWSGI do not read it.",
            )
        ]

    def test_config_testing_is_an_error(self, checkout: Path, make_app: MakeApp) -> None:
        """TESTING = True set by the app stays an error beside an unrelated .env."""
        flask_command_loads(checkout, env="FLASK_TESTING=false\n")
        assert messages_of(make_app(TESTING=True), "config.testing") == [
            ("error", "TESTING is true.")
        ]


class TestEnvironmentCheck:
    def test_dotenv_variable_names_the_file(self, checkout: Path, make_app: MakeApp) -> None:
        """APP_ENV=development only from .env: still a warning, naming the file."""
        flask_command_loads(checkout, env="APP_ENV=development\n")
        assert messages_of(make_app(), "config.environment") == [
            (
                "warning",
                "APP_ENV='development' in the environment names a non-production "
                "environment; it comes from .env, which the flask command loads, but "
                "gunicorn and uWSGI do not read that file.",
            )
        ]

    def test_live_variable(self, checkout: Path, make_app: MakeApp) -> None:
        """Live, the same variable is the process's own."""
        flask_command_loads(checkout, env="APP_ENV=development\n")
        assert messages_of(make_app(), "config.environment", mode="live") == [
            (
                "warning",
                "APP_ENV='development' in the environment names a non-production environment.",
            )
        ]

    @needs_flask_env
    def test_flask_env_dotenv(self, checkout: Path, make_app: MakeApp) -> None:
        """Before Flask 2.3, ENV seeded from FLASK_ENV in .flaskenv names the file twice."""
        flask_command_loads(checkout, flaskenv="FLASK_ENV=development\n")
        assert messages_of(make_app(), "config.environment") == [
            (
                "warning",
                "ENV='development' in the config, as FLASK_ENV='development' makes it, names "
                "a non-production environment; it comes from .flaskenv, which the flask "
                "command loads, but gunicorn and uWSGI do not read that file.",
            ),
            (
                "warning",
                "FLASK_ENV='development' in the environment names a non-production "
                "environment; it comes from .flaskenv, which the flask command loads, but "
                "gunicorn and uWSGI do not read that file.",
            ),
        ]
