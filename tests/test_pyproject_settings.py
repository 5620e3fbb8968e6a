"""`[tool.prodready]` of pyproject.toml: the defaults of `flask readiness`, run as users run
it (a real `flask --app ... readiness` in a project folder or one of its subfolders)."""

from __future__ import annotations

import datetime
import json
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

from flask_prodready.engine.findings import Level
from flask_prodready.engine.project_settings import (
    ProjectSettings,
    ProjectSettingsError,
    load_project_settings,
)
from flask_prodready.engine.silences import Silence

from .test_cli import BAD_APP, GOOD_APP, run_flask


def readiness(
    cwd: Path, project: Path, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`flask --app MODULE readiness ARGS` run in ``cwd``, the app importable from ``project``."""
    return run_flask(project, module, *args, env=env, cwd=cwd)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "src" / "deep").mkdir(parents=True)
    (folder / "badapp.py").write_text(textwrap.dedent(BAD_APP))
    (folder / "goodapp.py").write_text(textwrap.dedent(GOOD_APP))
    return folder


@pytest.fixture
def good_env() -> dict[str, str]:
    return {"APP_SECRET_KEY": secrets.token_urlsafe(48)}


def write(project: Path, table: str) -> None:
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'proj'\n\n" + textwrap.dedent(table).lstrip()
    )


def test_fail_level_from_the_file_moves_the_gate(project: Path, good_env: dict[str, str]) -> None:
    """The header warnings pass the default gate; `fail-level = "warning"` makes them fail."""
    write(project, "")
    assert readiness(project, project, "goodapp", "--tag", "headers", env=good_env).returncode == 0
    write(project, '[tool.prodready]\nfail-level = "warning"\n')
    done = readiness(project, project, "goodapp", "--tag", "headers", env=good_env)
    assert done.returncode == 1, done.stderr


def test_command_line_beats_the_file(project: Path, good_env: dict[str, str]) -> None:
    """--fail-level, --tag and --exclude given on the command line win over the file's."""
    write(
        project,
        """
        [tool.prodready]
        fail-level = "warning"
        tags = ["headers"]
        exclude = ["headers.hsts"]
        """,
    )
    from_file = readiness(project, project, "goodapp", "--format", "json", env=good_env)
    assert from_file.returncode == 1, from_file.stderr
    checks = json.loads(from_file.stdout)["checks"]
    assert set(checks) == {
        "headers.csp",
        "headers.framing",
        "headers.nosniff",
        "headers.referrer_policy",
    }

    args = ["--fail-level", "error", "--tag", "cookies", "--exclude", "cookies.remember_secure"]
    given = readiness(project, project, "goodapp", "--format", "json", *args, env=good_env)
    assert given.returncode == 0, given.stderr
    checks = json.loads(given.stdout)["checks"]
    assert "cookies.session_secure" in checks
    assert "cookies.remember_secure" not in checks
    assert not any(check_id.startswith("headers.") for check_id in checks)


def test_found_from_a_subfolder(project: Path, good_env: dict[str, str]) -> None:
    """Run two folders down, the nearest pyproject.toml with the table counts, and one
    without it on the way is passed over."""
    write(project, '[tool.prodready]\nfail-level = "warning"\ntags = ["headers"]\n')
    (project / "src" / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    done = readiness(project / "src" / "deep", project, "goodapp", "--format", "json", env=good_env)
    assert done.returncode == 1, done.stderr
    assert all(check_id.startswith("headers.") for check_id in json.loads(done.stdout)["checks"])


def test_nearest_table_wins(project: Path, good_env: dict[str, str]) -> None:
    """A pyproject.toml with the table in the subfolder hides the one above it."""
    write(project, '[tool.prodready]\nfail-level = "warning"\n')
    (project / "src" / "pyproject.toml").write_text('[tool.prodready]\ntags = ["headers"]\n')
    done = readiness(project / "src", project, "goodapp", env=good_env)
    assert done.returncode == 0, done.stderr  # warnings only, and the gate stays at error


def test_unknown_key_is_a_usage_error(project: Path) -> None:
    """An unknown key exits 2 with one line naming the key and the file."""
    write(project, '[tool.prodready]\nfail_level = "warning"\n')
    done = readiness(project, project, "badapp")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unknown key 'fail_level' in [tool.prodready]" in lines[0]
    assert "did you mean 'fail-level'?" in lines[0]
    assert str(project / "pyproject.toml") in lines[0]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[tool.prodready]\nfail-level = "loud"\n',
            "fail-level in [tool.prodready] of {path} must be one of critical, error, warning, "
            "info, got 'loud'",
        ),
        (
            '[tool.prodready]\ntags = "security"\n',
            "tags in [tool.prodready] of {path} must be a list of non-empty strings",
        ),
        ("[tool.prodready]\nexclude = [1]\n", "exclude in [tool.prodready] of {path} must be"),
        ("[tool.prodready]\ngunicorn-config = 4\n", "gunicorn-config in [tool.prodready]"),
        ("[tool]\nprodready = 3\n", "[tool.prodready] of {path} must be a table, got 3"),
        ("[tool.prodready\n", "{path} is not valid TOML: "),
        (
            '[tool.prodready.silenced]\n"config.debug" = { reason = "x", until = "2027-02-30" }\n',
            "[tool.prodready.silenced] 'config.debug'['until'] must be a date",
        ),
        (
            "[tool.prodready.silenced]\n"
            '"config.debug" = { reason = "x", until = 2027-02-03T10:00:00 }\n',
            "must be a date (datetime.date or 'YYYY-MM-DD') without a time",
        ),
        (
            '[tool.prodready.silenced]\n"config.debug" = { until = 2027-02-03 }\n',
            "[tool.prodready.silenced] 'config.debug'['reason'] must be a non-empty string",
        ),
        (
            '[tool.prodready.silenced]\n"config.debug" = { reason = "x", untill = 2027-02-03 }\n',
            "[tool.prodready.silenced] 'config.debug' has an unknown key 'untill'",
        ),
        (
            '[tool.prodready]\ntags = ["nope"]\n',
            "unknown tag 'nope' (from [tool.prodready] of {path})",
        ),
    ],
)
def test_bad_file_is_one_line_exit_2(project: Path, table: str, message: str) -> None:
    """A malformed file, a wrong type, a bad date: exit 2, one line naming it, no traceback."""
    write(project, table)
    done = readiness(project, project, "badapp")
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message.format(path=project / "pyproject.toml") in lines[0]


def test_not_utf8_is_a_usage_error(project: Path) -> None:
    """A pyproject.toml that is not UTF-8 is named, in one line."""
    (project / "pyproject.toml").write_bytes(b"\xff\xfe[tool.prodready]\n")
    done = readiness(project, project, "badapp")
    assert done.returncode == 2
    assert f"{project / 'pyproject.toml'} is not valid TOML" in done.stderr
    assert "Traceback" not in done.stderr


def test_gunicorn_config_relative_to_the_file(project: Path, good_env: dict[str, str]) -> None:
    """gunicorn-config is read relative to the pyproject.toml's folder, from any subfolder."""
    pytest.importorskip("gunicorn")
    (project / "deploy").mkdir()
    (project / "deploy" / "gunicorn.conf.py").write_text("workers = 1\nbind = '0.0.0.0:8000'\n")
    write(project, '[tool.prodready]\ngunicorn-config = "deploy/gunicorn.conf.py"\n')
    done = readiness(
        project / "src", project, "goodapp", "--tag", "server", "--format", "json", env=good_env
    )
    assert done.returncode in (0, 1), done.stderr
    found = {f["id"] for f in json.loads(done.stdout)["findings"]}
    assert {"server.workers", "server.bind_public"} <= found


def test_list_shows_the_whole_catalogue(project: Path) -> None:
    """--list is not narrowed by the file's tags (only by the command line's)."""
    write(project, '[tool.prodready]\ntags = ["headers"]\n')
    done = readiness(project, project, "badapp", "--list")
    assert done.returncode == 0, done.stderr
    assert "config.debug" in done.stdout


def test_no_file_no_settings(tmp_path: Path) -> None:
    """Without a pyproject.toml that has the table, nothing is set."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert load_project_settings(tmp_path) == ProjectSettings()


def test_reads_every_key(tmp_path: Path) -> None:
    """Every key of the table, typed: the level, the lists, the path made absolute, the
    silences with their dates."""
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.prodready]
            fail-level = "WARNING"
            tags = ["security"]
            exclude = ["tls.http_redirect"]
            gunicorn-config = "deploy/gunicorn.conf.py"

            [tool.prodready.silenced]
            "config.trusted_hosts" = "nginx checks the Host header"
            "monitoring.error_tracking" = { reason = "errors go to journald", until = 2027-03-31 }
            "config.environment" = { reason = "a string date", until = "2027-04-01" }
            """
        )
    )
    settings = load_project_settings(tmp_path / "sub" / "folder")
    assert settings.path == tmp_path / "pyproject.toml"
    assert settings.fail_level is Level.WARNING
    assert settings.tags == ("security",)
    assert settings.exclude == ("tls.http_redirect",)
    assert settings.gunicorn_config == str(tmp_path / "deploy" / "gunicorn.conf.py")
    silenced = dict(settings.silenced)
    assert {k: (v.reason, v.until) for k, v in silenced.items()} == {
        "config.trusted_hosts": ("nginx checks the Host header", None),
        "monitoring.error_tracking": ("errors go to journald", datetime.date(2027, 3, 31)),
        "config.environment": ("a string date", datetime.date(2027, 4, 1)),
    }
    assert all(isinstance(v, Silence) and "pyproject.toml" in v.origin for v in silenced.values())


def test_unknown_key_error_in_process(tmp_path: Path) -> None:
    """The reader's own error is a ProjectSettingsError listing the keys."""
    (tmp_path / "pyproject.toml").write_text("[tool.prodready]\nformat = 'json'\n")
    with pytest.raises(ProjectSettingsError, match=r"unknown key 'format'.*the keys are exclude"):
        load_project_settings(tmp_path)
