"""``python -m tests.ecosystem [APP ...]``: what the current code reports on real apps.

Deploys each application (all of them by default), and prints, per application, how its
live and command-line reports differ from ``tests/ecosystem/expected/<app>.toml``:
checks added, removed or changed (status and levels), errors, crashes and known defects
that are fixed. Exits 0 when nothing differs, 1 otherwise. Each run's reports, traffic
and timings are written to ``.ecosystem/last-run/<app>.json`` for review, its logs to
``.ecosystem/last-run/<app>-logs/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from .apps import APPS
from .deploy import CACHE, DeployError, Outcome, build_prodready_wheel, deploy_and_report
from .expected import Difference, compare, load


def save(outcome: Outcome) -> Path:
    """The run's reports, traffic and timings, as JSON under ``.ecosystem/last-run/``."""
    folder = CACHE / "last-run"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{outcome.app}.json"
    payload = {
        "app": outcome.app,
        "timings": {name: round(seconds, 1) for name, seconds in outcome.timings.items()},
        "traffic": outcome.traffic,
        "live": {"problem": outcome.live.problem, "report": outcome.live.raw},
        "cli": {"problem": outcome.cli.problem, "report": outcome.cli.raw},
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def run(names: list[str], out: TextIO = sys.stdout) -> int:
    """Deploy and compare the applications ``names``; 0 when nothing differs, else 1."""
    failed = False
    with tempfile.TemporaryDirectory(prefix="eco-wheel-") as work:
        log = Path(work) / "install.log"
        started = time.monotonic()
        wheel = build_prodready_wheel(Path(work), log)
        print(
            f"flask-prodready built from this checkout in {time.monotonic() - started:.1f} s",
            file=out,
        )
        for name in names:
            app = APPS[name]
            try:
                outcome = deploy_and_report(app, wheel, log)
            except DeployError as error:
                print(f"{name}: could not be deployed: {error}", file=out)
                failed = True
                continue
            differences: list[Difference] = compare(outcome, load(name))
            timings = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.timings.items())
            status = "no difference" if not differences else f"{len(differences)} differences"
            print(f"{name}: {status} ({timings}); report in {save(outcome)}", file=out)
            for difference in differences:
                print(difference, file=out)
            failed = failed or bool(differences)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ecosystem", description=__doc__)
    parser.add_argument("apps", nargs="*", metavar="APP", help=f"default: all of {', '.join(APPS)}")
    arguments = parser.parse_args(argv)
    unknown = sorted(set(arguments.apps) - set(APPS))
    if unknown:
        parser.error(f"unknown application {', '.join(unknown)}; choose from {', '.join(APPS)}")
    return run(arguments.apps or list(APPS))


if __name__ == "__main__":
    sys.exit(main())
