"""The app the fault and stampede tests serve under gunicorn, written into their folder.

Its checks misbehave on purpose: ``stampede.slow`` takes a second and counts its runs in
a file, ``faults.crashes`` raises, ``faults.hangs`` never returns (until the worker
exits: it waits at most two minutes). Its own routes: ``/ping`` and ``/pid``. The config
comes from the environment (``FAULT_APP_CONFIG``, JSON, over tests/support.GOOD_CONFIG).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..support import GOOD_CONFIG, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TARGET = "fault_app:create_app()"
#: Seconds stampede.slow takes.
SLOW_CHECK_SECONDS = 1.0

SOURCE = f'''
"""An app whose custom checks are slow, crash or hang."""

import json
import os
import threading
import time

from flask import Flask

from flask_prodready import ProdReady

prodready = ProdReady()
never = threading.Event()


@prodready.check("stampede.slow", title="Takes a second", level="warning")
def slow(ctx):
    with open(os.environ["FAULT_APP_RUNS"], "a") as runs:
        runs.write("run\\n")
    time.sleep({SLOW_CHECK_SECONDS})


@prodready.check("faults.crashes", title="Raises")
def crashes(ctx):
    raise ConnectionResetError("the dependency hung up")


@prodready.check("faults.hangs", title="Never returns")
def hangs(ctx):
    never.wait(120)


def create_app():
    app = Flask(__name__)
    app.config.update(json.loads(os.environ["FAULT_APP_CONFIG"]))
    prodready.init_app(app)

    @app.get("/ping")
    def ping():
        return "pong"

    @app.get("/pid")
    def pid():
        return str(os.getpid())

    return app
'''


def write_fault_app(folder: Path) -> Path:
    """``fault_app.py`` in ``folder``; returns the file its slow check counts runs in."""
    (folder / "fault_app.py").write_text(textwrap.dedent(SOURCE).lstrip())
    return folder / "runs.txt"


def fault_app_environment(folder: Path, config: Mapping[str, Any]) -> dict[str, str]:
    """The environment of a gunicorn serving the fault app with ``config``."""
    return {
        "FAULT_APP_CONFIG": json.dumps({**GOOD_CONFIG, **config}),
        "FAULT_APP_RUNS": str(folder / "runs.txt"),
    }


def worker_threads(pid: int) -> int:
    """How many threads the process ``pid`` has (``Threads:`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Threads: line for pid {pid}")
