"""``--nginx-config`` / ``--systemd-unit`` and their ``PRODREADY_*`` settings reach the
checks as ``ctx.nginx_config`` / ``ctx.systemd_unit``; a bad value is a one-line error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready import ProdReady

from .test_cli import run_flask

ECHO_APP = """
from flask import Flask
from flask_prodready import Finding, Level, ProdReady

def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 40, **{config})
    prodready = ProdReady(app)

    @prodready.check("myapp.files", title="Says which host files it was given", blocking=False)
    def files(ctx):
        return Finding(
            "myapp.files", Level.INFO, "files",
            observed={{"nginx": ctx.nginx_config, "unit": ctx.systemd_unit}},
        )

    return app
"""


def write_app(project: Path, **config: str) -> None:
    (project / "echoapp.py").write_text(textwrap.dedent(ECHO_APP).format(config=config))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "site.conf").write_text("events {}\n")
    (folder / "app.service").write_text("[Service]\nExecStart=/bin/true\n")
    return folder


def observed(project: Path, *args: str) -> object:
    done = run_flask(project, "echoapp", "--tag", "myapp", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["findings"][0]["observed"]


def test_options_reach_the_checks(project: Path) -> None:
    """The options' files are what the checks are given."""
    write_app(project)
    assert observed(project) == {"nginx": None, "unit": None}
    assert observed(project, "--nginx-config", "site.conf", "--systemd-unit", "app.service") == {
        "nginx": "site.conf",
        "unit": "app.service",
    }


def test_settings_are_the_default_and_the_options_win(project: Path) -> None:
    """PRODREADY_NGINX_CONFIG / PRODREADY_SYSTEMD_UNIT apply unless an option is given."""
    write_app(
        project, PRODREADY_NGINX_CONFIG="/etc/nginx/nginx.conf", PRODREADY_SYSTEMD_UNIT="/x.service"
    )
    assert observed(project) == {"nginx": "/etc/nginx/nginx.conf", "unit": "/x.service"}
    assert observed(project, "--nginx-config", "site.conf") == {
        "nginx": "site.conf",
        "unit": "/x.service",
    }


@pytest.mark.parametrize("option", ["--nginx-config", "--systemd-unit"])
def test_a_missing_file_is_a_usage_error(project: Path, option: str) -> None:
    """A file that does not exist: exit 2, one line naming the option and the file."""
    write_app(project)
    done = run_flask(project, "echoapp", option, "nope.conf")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert option in done.stderr
    assert "nope.conf" in done.stderr
    assert "does not exist" in done.stderr


@pytest.mark.parametrize("option", ["--nginx-config", "--systemd-unit"])
def test_not_with_url(project: Path, option: str) -> None:
    """The host's files are about the local app: refused with --url."""
    write_app(project)
    done = run_flask(project, "echoapp", option, "site.conf", "--url", "https://127.0.0.1:9/")
    assert done.returncode == 2
    assert (
        done.stderr == f"Error: {option} is about the local app and cannot be combined with --url\n"
    )


@pytest.mark.parametrize("key", ["PRODREADY_NGINX_CONFIG", "PRODREADY_SYSTEMD_UNIT"])
@pytest.mark.parametrize("value", ["", "  ", 3, ["/etc/nginx/nginx.conf"]])
def test_bad_settings_are_refused_naming_the_key(key: str, value: object) -> None:
    """init_app refuses a value that is not a file path, naming the key."""
    app = Flask(__name__)
    app.config[key] = value
    with pytest.raises(ValueError, match=f"{key} must be None or a file path"):
        ProdReady(app)


def test_the_environment_gives_the_host_files(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    """PRODREADY_NGINX_CONFIG / PRODREADY_SYSTEMD_UNIT in the environment are the defaults
    (a unit's Environment=); the app's config wins over them."""
    write_app(project)
    env_files = {
        "PRODREADY_NGINX_CONFIG": "/etc/nginx/sites-enabled/app",
        "PRODREADY_SYSTEMD_UNIT": "/etc/systemd/system/app.service",
    }
    done = run_flask(project, "echoapp", "--tag", "myapp", "--format", "json", env=env_files)
    assert json.loads(done.stdout)["findings"][0]["observed"] == {
        "nginx": "/etc/nginx/sites-enabled/app",
        "unit": "/etc/systemd/system/app.service",
    }
    monkeypatch.setenv("PRODREADY_NGINX_CONFIG", "/from/the/environment")
    app = Flask(__name__)
    ProdReady(app)
    assert app.config["PRODREADY_NGINX_CONFIG"] == "/from/the/environment"
    other = Flask(__name__)
    other.config["PRODREADY_NGINX_CONFIG"] = "/from/the/config"
    ProdReady(other)
    assert other.config["PRODREADY_NGINX_CONFIG"] == "/from/the/config"
