"""``flask readiness`` run by another user than the one owning the app's git checkout.

The checkout belongs to root (who deployed it); the command runs as ``nobody``, for whom
git refuses the checkout ("dubious ownership") unless told it is safe. The scan of
``config.secret_key_in_source`` still classifies files with git: a tracked file holding
the key is an error (remove and rotate), not a secrets file to ``chmod``.

``nobody`` cannot reach the virtualenv's Python when it lives in root's home, so the
command runs on the system's Python of the same version with the virtualenv's packages
added as a site folder: the same ``flask`` command line, the same installed packages.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import site
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NOBODY = 65534
AS_NOBODY = ["--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
#: The real ``flask`` command line, on a Python ``nobody`` can run.
LAUNCHER = "import site, sys; site.addsitedir(sys.argv.pop(1)); from flask.cli import main; main()"

APP = """
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.from_pyfile("settings.cfg")
ProdReady(app)
"""


def _as_nobody(*command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None
    return subprocess.run(
        [setpriv, *AS_NOBODY, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _python_for_nobody(folder: Path, env: dict[str, str]) -> tuple[str, str]:
    """A Python of this version that ``nobody`` can run, and the packages' site folder."""
    packages = next(p for p in site.getsitepackages() if p.endswith("site-packages"))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (
        os.path.realpath(sys.executable),
        f"/usr/bin/{version}",
        f"/usr/local/bin/{version}",
    ):
        if not os.path.exists(python):
            continue
        probe = _as_nobody(
            python, "-c", "import site, sys; site.addsitedir(sys.argv[1]); import flask_prodready",
            packages, cwd=folder, env=env,
        )  # fmt: skip
        if probe.returncode == 0:
            return python, packages
    pytest.skip(f"no {version} that the nobody user can run with this virtualenv's packages")


@pytest.fixture
def checkout() -> Iterator[Path]:
    """A git checkout owned by root in a folder ``nobody`` can read but not write."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the checkout's owner and the user running flask must differ")
    if shutil.which("setpriv") is None or shutil.which("git") is None:
        pytest.skip("needs setpriv and git")
    folder = Path(tempfile.mkdtemp(prefix="prodready-owner-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def test_tracked_key_in_a_checkout_of_another_user_is_an_error(checkout: Path) -> None:
    """Run as nobody on root's checkout, a tracked file holding the key is reported as
    tracked by git (error, method git), never with chmod advice, and never shown."""
    key = "owner-" + secrets.token_hex(24)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'ownerapp'\n")
    (checkout / "app.py").write_text(textwrap.dedent(APP))
    # Not a .py file: without git it would pass for a secrets file to chmod.
    (checkout / "settings.cfg").write_text(f"SECRET_KEY = {key!r}\n")
    for path in checkout.iterdir():
        path.chmod(0o644)
    subprocess.run(["git", "-C", str(checkout), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(checkout), "add", "."], check=True)
    for folder, _, files in os.walk(checkout / ".git"):
        Path(folder).chmod(0o755)
        for name in files:
            Path(folder, name).chmod(0o644)

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_APP": "app",
    }
    refused = _as_nobody("git", "ls-files", cwd=checkout, env=env)
    assert "dubious ownership" in refused.stderr, refused  # the situation is reproduced
    python, packages = _python_for_nobody(checkout, env)

    done = _as_nobody(
        python, "-c", LAUNCHER, packages, "readiness", "--tag", "config", "--format", "json",
        cwd=checkout, env=env,
    )  # fmt: skip
    assert key not in done.stdout + done.stderr
    body = json.loads(done.stdout)
    [finding] = [f for f in body["findings"] if f["id"] == "config.secret_key_in_source"]
    assert finding["level"] == "error"
    assert finding["message"] == "SECRET_KEY's value is written in settings.cfg (tracked by git)."
    assert finding["observed"] == {"file": "settings.cfg", "method": "git"}
    assert "chmod" not in json.dumps(finding)
    assert done.returncode == 1, done.stderr

    text = _as_nobody(python, "-c", LAUNCHER, packages, "readiness", cwd=checkout, env=env)
    assert "config.secret_key_in_source" in text.stdout
    assert key not in text.stdout + text.stderr
