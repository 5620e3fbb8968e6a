"""The benchmark suite's command line: ``python -m benchmarks [--quick] [--json FILE]``.

Everything runs on 127.0.0.1, every process is started and stopped by its id with
bounded waits, and the temporary folder (app modules, logs, the PostgreSQL cluster) is
removed at the end. Client and servers share the machine's cores: compare the ratios of
one run, never the absolute numbers of two runs. Exit status: 0 when the run completed
(whatever the ratios), 2 when it could not measure, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from . import cli_time, cold, inprocess, memory, throughput
from .apps import MODULES, write_apps
from .common import HOST, REPOSITORY, BenchError, load_average, machine_info
from .postgres import running_postgres
from .servers import WORKERS_DEFAULT, Server, start_server, stop_server, stopping_at_exit
from .stats import Target, format_targets
from .wrk import WRK_CONNECTIONS, WRK_THREADS, wrk_version

SCENARIOS = ("throughput", "inprocess", "cold", "cli", "memory")
QUICK = {"rounds": 3, "duration": 3, "cold_rounds": 5, "cli_runs": 5}
DEFAULT = {"rounds": 7, "duration": 7, "cold_rounds": 15, "cli_runs": 15}
#: Rounds and WSGI calls per variant and round of the in-process scenario.
INPROCESS_ROUNDS, INPROCESS_CALLS = 15, 2000
#: What the suite imports in the apps it serves (the ``bench`` extra installs them).
NEEDED = {
    "gunicorn": "gunicorn",
    "flask_sqlalchemy": "flask-sqlalchemy",
    "psycopg": "psycopg[binary]",
    "flask_healthz": "flask-healthz",
    "healthcheck": "py-healthcheck",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="What ProdReady costs, measured side by side under gunicorn and wrk on "
        "127.0.0.1: throughput and p99, a cold report, the CLI's wall time and memory.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 wrk rounds of 3 s, 5 cold rounds, 5 CLI runs "
        "(default: 7 rounds of 7 s, 15 cold rounds, 15 CLI runs)",
    )
    parser.add_argument("--duration", type=int, metavar="S", help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, metavar="N", help="wrk rounds over the variants")
    parser.add_argument("--cold-rounds", type=int, metavar="N", help="rounds of cold reports")
    parser.add_argument("--cli-runs", type=int, metavar="N", help="runs of each CLI command")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write raw numbers and summary")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else DEFAULT
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    for name in ("rounds", "cold_rounds", "cli_runs"):
        if not 1 <= getattr(args, name) <= 100:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 100")
    args.scenarios = tuple(s for s in SCENARIOS if not args.only or s in args.only)
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally, servers included


def _missing() -> list[str]:
    return [pip for module, pip in NEEDED.items() if importlib.util.find_spec(module) is None]


def measure(args: argparse.Namespace, wrk: str, folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    needs_database = "cold" in args.scenarios or "cli" in args.scenarios
    with contextlib.ExitStack() as stack:
        # Entered in this order, left in the reverse: the servers stop before the database.
        database = stack.enter_context(running_postgres()) if needs_database else None
        stack.enter_context(stopping_at_exit())
        apps = write_apps(folder, database.url() if database else None)
        if database is not None:
            print(f"postgres: {HOST}:{database.port} (pid {database.pid})", flush=True)

        if "throughput" in args.scenarios:
            servers: dict[str, Server] = {}
            for kind in ("plain", "prodready", "peers"):
                servers[kind] = start_server(kind, MODULES[kind], folder, apps.env)
            ports = ", ".join(f"{s.name} :{s.port} (pid {s.pid})" for s in servers.values())
            print(f"servers : {ports}", flush=True)
            found["throughput"] = throughput.measure(wrk, servers, apps, args.rounds, args.duration)
            for server in servers.values():
                stop_server(server)

        if "inprocess" in args.scenarios:
            calls = INPROCESS_CALLS // 4 if args.quick else INPROCESS_CALLS
            found["inprocess"] = inprocess.measure(apps, INPROCESS_ROUNDS, calls)

        if "cold" in args.scenarios:
            server = start_server(
                "db",
                MODULES["db"],
                folder,
                apps.env,
                workers=1,
                extra=("--limit-request-line", str(cold.REQUEST_LINE_LIMIT)),
            )
            print(f"db app  : :{server.port} (pid {server.pid}), 1 sync worker", flush=True)
            found["cold"] = cold.measure(server, apps, args.cold_rounds)
            stop_server(server)

        if "cli" in args.scenarios:
            result = cli_time.measure(apps, args.cli_runs)
            for module in cli_time.APPS:
                if result.value(module) > cli_time.CLI_TARGET:
                    print(f"cli     : {module} missed its target; profiling it", flush=True)
                    result.profile += cli_time.profile(apps, module) + "\n"
            found["cli"] = result

        if "memory" in args.scenarios:
            found["memory"] = memory.measure(apps)
    return found


def _header(args: argparse.Namespace, machine: dict[str, Any], command: str) -> str:
    packages = machine["packages"]
    shown = ", ".join(f"{name} {packages[name]}" for name in packages)
    duration = args.rounds * args.duration + min(throughput.WARMUP_SECONDS, args.duration)
    lines = [
        "flask-prodready benchmark suite",
        f"command : {command}",
        f"machine : {machine['cpu_model']}, nproc {machine['nproc']}, {machine['python']}, "
        f"{machine['wrk']}",
        f"          {machine['platform']}",
        f"          {shown}",
        f"load    : load average at the start {' '.join(map(str, machine['loadavg_start']))}",
        f"code    : {machine['code']} ({REPOSITORY})",
        f"scenario: {', '.join(args.scenarios)}",
    ]
    if "throughput" in args.scenarios:
        lines.append(
            f"wrk     : gunicorn -w {WORKERS_DEFAULT} sync workers per app; wrk -t{WRK_THREADS} "
            f"-c{WRK_CONNECTIONS} -d{args.duration}s --latency; {args.rounds} rounds over "
            f"{len(throughput.VARIANTS)} variants, about {len(throughput.VARIANTS) * duration} s"
        )
    return "\n".join(lines)


def report(found: dict[str, Any]) -> list[Target]:
    """Print every scenario's section; return the targets in order."""
    targets: list[Target] = []
    if "throughput" in found:
        result: throughput.ThroughputResult = found["throughput"]
        print()
        print(throughput.format_table(result))
        print()
        print(
            "ratios (headline: the median of the paired ratios of the rounds; "
            f"/_readiness answered {result.readiness_status} from the cache)"
        )
        print(throughput.format_ratios(result.ratios))
        print()
        print(throughput.format_cpu_cost(result.summaries))
        targets += result.targets()
    if "inprocess" in found:
        print()
        print("application time per request, direct WSGI calls in one process (no target)")
        print(inprocess.format_result(found["inprocess"]))
    if "cold" in found:
        print()
        print("cold report vs its slowest single check (database app, no cache)")
        print(cold.format_result(found["cold"]))
        targets += found["cold"].targets()
    if "cli" in found:
        print()
        print("flask readiness vs flask routes (wall time of the command)")
        print(cli_time.format_result(found["cli"]))
        if found["cli"].profile:
            print(found["cli"].profile.rstrip())
        targets += found["cli"].targets()
    if "memory" in found:
        print()
        print("memory of one worker (VmRSS), with and without ProdReady")
        print(memory.format_result(found["memory"]))
        targets += found["memory"].targets()
    return targets


def _document(
    args: argparse.Namespace,
    command: str,
    machine: dict[str, Any],
    found: dict[str, Any],
    targets: list[Target],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "command": command,
        "machine": machine,
        "settings": {
            "scenarios": list(args.scenarios),
            "rounds": args.rounds,
            "duration_s": args.duration,
            "cold_rounds": args.cold_rounds,
            "cli_runs": args.cli_runs,
            "workers": WORKERS_DEFAULT,
            "wrk_threads": WRK_THREADS,
            "wrk_connections": WRK_CONNECTIONS,
        },
        "targets": [asdict(t) for t in targets],
        "all_targets_met": all(t.passed for t in targets),
    }
    if "throughput" in found:
        result: throughput.ThroughputResult = found["throughput"]
        document["throughput"] = {
            "order": [v.key for v in throughput.VARIANTS],
            "readiness_status": result.readiness_status,
            "raw": {key: [asdict(r) for r in rs] for key, rs in result.raw.items()},
            "summary": {key: asdict(s) for key, s in result.summaries.items()},
            "ratios": [asdict(r) for r in result.ratios],
        }
    for name in ("inprocess", "cold", "cli", "memory"):
        if name in found:
            document[name] = found[name].to_dict()
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    wrk = shutil.which("wrk")
    if wrk is None and "throughput" in args.scenarios:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    missing = _missing()
    if missing:
        print(
            f"missing: {', '.join(missing)}; install the bench extra: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2

    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]])
    machine = machine_info()
    machine["wrk"] = wrk_version(wrk) if wrk else "not installed"
    print(_header(args, machine, command), flush=True)

    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="prodready-bench-") as tmp:
            found = measure(args, wrk or "wrk", Path(tmp))
    except (BenchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; every process started was stopped", file=sys.stderr)
        return 130
    machine["loadavg_end"] = load_average()

    targets = report(found)
    print()
    print("targets")
    print(format_targets(targets))
    missed = [t for t in targets if not t.passed]
    verdict = "all targets met" if not missed else f"{len(missed)} target(s) missed"
    noisy = [t for t in targets if t.rounds_disagreeing]
    if noisy:
        verdict += (
            f" ({len(noisy)} verdict(s) not borne out by every round: too noisy to be sure, "
            "rerun with more rounds on a quieter machine)"
        )
    print()
    print(
        f"result  : {verdict}; took {time.monotonic() - started:.0f} s; load average at the "
        f"start {' '.join(map(str, machine['loadavg_start']))}, at the end "
        f"{' '.join(map(str, machine['loadavg_end']))}"
    )
    if args.json is not None:
        document = _document(args, command, machine, found, targets)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"json    : {args.json}")
    return 0
