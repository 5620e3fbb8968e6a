"""``flask readiness`` against ``flask routes``: wall time of the command, on the same app.

Both commands run, as a user would run them, in a new interpreter each time, on two apps:
the database app (Flask-SQLAlchemy on the run's PostgreSQL) and the lean app (no
database, so that SQLAlchemy's import does not hide what ProdReady adds). The commands
alternate (forward, then backward order) so that drift and order hit all alike; each is
summarised by its median. For information, ``python -c "import db_app"`` times loading
the database app alone.

When a ratio misses its target, one ``python -X importtime`` and one ``cProfile`` run of
``flask readiness`` on that app say where the extra time goes.
"""

from __future__ import annotations

import pstats
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apps import AppFolder
from .common import BenchError
from .stats import LOWER, Target, median, ratio

CLI_TARGET = 1.5
#: Seconds one command may take before it is killed.
COMMAND_TIMEOUT = 120.0
#: The apps both commands run on: the database app, and the lean app (no database, so
#: what ProdReady adds is not hidden behind SQLAlchemy's import).
APPS = {"db_app": "database app", "prodready_app": "lean app"}


@dataclass(frozen=True)
class Command:
    key: str
    label: str
    argv: tuple[str, ...]
    #: ``flask readiness`` exits 1 when it has findings: a run that completed.
    accepted: tuple[int, ...] = (0,)


def commands() -> list[Command]:
    python = sys.executable
    found = []
    for module, label in APPS.items():
        found.append(
            Command(
                f"{module}:routes",
                f"flask routes ({label})",
                (python, "-m", "flask", "--app", module, "routes"),
            )
        )
        found.append(
            Command(
                f"{module}:readiness",
                f"flask readiness ({label})",
                (python, "-m", "flask", "--app", module, "readiness"),
                (0, 1),
            )
        )
    found.append(
        Command("db_app:import", "python -c 'import db_app'", (python, "-c", "import db_app"))
    )
    return found


@dataclass
class CliResult:
    runs: int
    labels: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    profile: str = ""

    def median_s(self, key: str) -> float:
        return median(self.seconds[key])

    def per_round(self, module: str) -> list[float]:
        pairs = zip(
            self.seconds[f"{module}:readiness"], self.seconds[f"{module}:routes"], strict=True
        )
        return [ratio(a, b) for a, b in pairs]

    def value(self, module: str) -> float:
        """The headline: the median of the paired ratios (runs of one pass)."""
        return median(self.per_round(module))

    def of_medians(self, module: str) -> float:
        return ratio(self.median_s(f"{module}:readiness"), self.median_s(f"{module}:routes"))

    def targets(self) -> list[Target]:
        return [
            Target.of(
                f"cli-{module}",
                f"flask readiness vs flask routes ({label}), wall time",
                self.value(module),
                CLI_TARGET,
                LOWER,
                "x",
                self.per_round(module),
            )
            for module, label in APPS.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "labels": self.labels,
            "seconds": self.seconds,
            "median_s": {key: self.median_s(key) for key in self.seconds},
            "ratios": {module: self.value(module) for module in APPS},
            "ratios_of_medians": {module: self.of_medians(module) for module in APPS},
            "per_round": {module: self.per_round(module) for module in APPS},
            "profile": self.profile,
        }


def _timed(command: Command, apps: AppFolder) -> float:
    begun = time.perf_counter()
    try:
        done = subprocess.run(
            command.argv,
            cwd=apps.folder,
            env=apps.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{command.label} did not finish within {COMMAND_TIMEOUT:g} s") from exc
    elapsed = time.perf_counter() - begun
    if done.returncode not in command.accepted:
        raise BenchError(f"{command.label} exited with {done.returncode}:\n{done.stderr}")
    return elapsed


def measure(apps: AppFolder, runs: int) -> CliResult:
    found = commands()
    result = CliResult(
        runs=runs,
        labels={c.key: c.label for c in found},
        seconds={c.key: [] for c in found},
    )
    for command in found:  # warm the file cache
        _timed(command, apps)
    print(
        f"cli     : {runs} runs of each of {len(found)} commands, in alternating order",
        flush=True,
    )
    for number in range(runs):
        for command in found if number % 2 == 0 else list(reversed(found)):
            result.seconds[command.key].append(_timed(command, apps))
    return result


# --------------------------------------------------------------------------- profile


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def import_times(apps: AppFolder, module: str = "db_app", top: int = 12) -> str:
    """The slowest imports of ``flask readiness`` by cumulative time (``-X importtime``)."""
    command = [sys.executable, "-X", "importtime", "-m", "flask", "--app", module, "readiness"]
    done = subprocess.run(
        command,
        cwd=apps.folder,
        env=apps.env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            depth = (len(match[3]) - 1) // 2
            rows.append((int(match[2]), int(match[1]), depth, match[4]))
    total_top = sum(r[0] for r in rows if r[2] == 0)
    lines = [f"  -X importtime: {total_top / 1000:.0f} ms of imports in all; top-level packages:"]
    for cumulative, _, _, name in sorted((r for r in rows if r[2] == 0), reverse=True)[:top]:
        lines.append(f"    {cumulative / 1000:8.1f} ms  {name}")
    ours = sorted((r for r in rows if r[3].startswith("flask_prodready")), reverse=True)
    lines.append("  flask_prodready modules (cumulative, self):")
    for cumulative, own, _, name in ours[:top]:
        lines.append(f"    {cumulative / 1000:8.1f} ms {own / 1000:8.1f} ms  {name}")
    return "\n".join(lines)


PROFILE_SCRIPT = """\
import cProfile, sys
from flask.cli import main
sys.argv = ["flask", "--app", MODULE, "readiness"]
profiler = cProfile.Profile()
profiler.enable()
try:
    main()
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(OUT)
"""


def cprofile(apps: AppFolder, module: str = "db_app", top: int = 15) -> str:
    """The functions of ``flask readiness`` with the most cumulative time (cProfile)."""
    with tempfile.TemporaryDirectory(prefix="prodready-bench-prof-") as tmp:
        out = Path(tmp) / "readiness.prof"
        script = PROFILE_SCRIPT.replace("MODULE", repr(module)).replace("OUT", repr(str(out)))
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=apps.folder,
            env=apps.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if not out.exists():
            return "  cProfile: no profile written"
        stats = pstats.Stats(str(out))
        rows = []
        for (filename, line, function), (_, calls, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append((cumulative, calls, f"{_short(filename)}:{line}({function})"))
    lines = ["  cProfile (cumulative ms, calls, function):"]
    for cumulative, calls, where in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {cumulative * 1000:8.1f} {calls:7d}  {where}")
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3", "/work/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile(apps: AppFolder, module: str) -> str:
    heading = f"  profile of flask readiness on the {APPS[module]} ({module}):"
    try:
        return "\n".join((heading, import_times(apps, module), cprofile(apps, module)))
    except subprocess.SubprocessError as exc:  # a run that overran: say so, keep the results
        return f"{heading}\n  not profiled: {exc}"


def format_result(result: CliResult) -> str:
    lines = []
    for key, label in result.labels.items():
        values = result.seconds[key]
        lines.append(
            f"  {label:<34} median {result.median_s(key) * 1000:7.0f} ms   "
            f"min..max {min(values) * 1000:.0f}..{max(values) * 1000:.0f} ms"
        )
    for module, label in APPS.items():
        rounds = " ".join(f"{x:.2f}" for x in result.per_round(module))
        lines.append(
            f"  readiness / routes ({label}), median of the paired ratios: "
            f"{result.value(module):.3f} (ratio of medians {result.of_medians(module):.3f})"
        )
        lines.append(f"    per pass: {rounds}")
    return "\n".join(lines)
