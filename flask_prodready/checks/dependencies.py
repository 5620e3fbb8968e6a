"""``dependencies.*``: the Python environment the app runs in, and known vulnerabilities
in the installed packages, found by pip-audit.

``dependencies.environment`` asks whether the interpreter is a virtual environment's (or
a conda environment's), and whether every installed distribution's requirements are
installed at versions they accept, as ``pip check`` does: from the distributions'
metadata, read with ``importlib.metadata`` and ``packaging``, without running pip.

``dependencies.vulnerable`` runs only from the command line and only with
``flask readiness --audit``: an audit asks a vulnerability service about every package,
which takes seconds and a network connection, nothing a web request should wait for.
pip-audit runs in a subprocess on the environment of the running interpreter, with
``PRODREADY_PIP_AUDIT_ARGS`` appended, and is killed at the check's deadline.

An audit that could not look at a package is no pass: pip-audit reports "no known
vulnerabilities" even when the service knew none of the packages. The check is skipped
then, with pip-audit's reason.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.registry import CLI, check

AUDIT_INSTALL = "pip install 'flask-prodready[audit]'"
#: Why the check is skipped when the command line was not given ``--audit``.
NOT_ASKED = "run `flask readiness --audit` to audit dependencies"
#: Seconds an audit may take: pip-audit asks a service about every package. The check
#: only runs from the CLI with --audit, so this never delays a request.
AUDIT_TIMEOUT = 180.0
#: Seconds kept back from the check's deadline to stop pip-audit and report why.
DEADLINE_MARGIN = 0.3
#: Seconds to wait for a killed pip-audit to release its pipes.
KILL_WAIT = 2.0
#: Longest piece of pip-audit's error output quoted in a skip reason.
MAX_ERROR_TEXT = 400
#: Packages named in a message before "and N more".
MAX_NAMED_PACKAGES = 5
#: Options of pip-audit that must not reach it from ``PRODREADY_PIP_AUDIT_ARGS``.
REFUSED_OPTIONS = {
    "--fix": "it would upgrade packages in this environment",
    "-o": "the report must come back on stdout",
    "--output": "the report must come back on stdout",
    "-d": "a dry run audits nothing",
    "--dry-run": "a dry run audits nothing",
}
#: Options the check always passes; ``-f json`` comes last so it wins.
BASE_OPTIONS = ("--progress-spinner", "off", "--desc", "off")
#: pip-audit skip reasons that are a choice, not a failure to audit.
DELIBERATE_SKIPS = ("marked as editable",)


@dataclass(frozen=True)
class Vulnerability:
    """One advisory affecting one installed package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditResult:
    """pip-audit's JSON report, read: what it found, and what it could not audit."""

    vulnerabilities: tuple[Vulnerability, ...] = ()
    audited: int = 0
    unaudited: tuple[tuple[str, str], ...] = field(default=())


def canonical_name(name: str) -> str:
    """A distribution name as pip-audit prints it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def own_distributions(import_name: str) -> frozenset[str]:
    """The distributions that install the app's own package (not on any index)."""
    top = import_name.split(".", 1)[0]
    try:
        names = importlib.metadata.packages_distributions().get(top, [])
    except Exception:  # broken metadata of an unrelated package
        return frozenset()
    return frozenset(canonical_name(name) for name in names)


def parse_report(text: str, own: frozenset[str] = frozenset()) -> AuditResult:
    """Read pip-audit's ``-f json`` output; ``ValueError`` when it is not such a report.

    A package pip-audit skipped counts as not audited, unless the skip was chosen
    (``--skip-editable``, an editable requirement) or it is the app's own distribution.
    """
    data: Any = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise ValueError("not a pip-audit JSON report")
    vulnerabilities: list[Vulnerability] = []
    unaudited: list[tuple[str, str]] = []
    audited = 0
    for dependency in data["dependencies"]:
        if not isinstance(dependency, dict):
            raise ValueError("not a pip-audit JSON report")
        name = str(dependency.get("name", "?"))
        if "skip_reason" in dependency:
            reason = str(dependency["skip_reason"])
            if canonical_name(name) not in own and not any(
                word in reason for word in DELIBERATE_SKIPS
            ):
                unaudited.append((name, reason))
            continue
        audited += 1
        version = str(dependency.get("version", "?"))
        for vuln in dependency.get("vulns") or []:
            vulnerabilities.append(
                Vulnerability(
                    package=name,
                    version=version,
                    id=str(vuln.get("id", "?")),
                    aliases=tuple(str(a) for a in vuln.get("aliases") or ()),
                    fix_versions=tuple(str(v) for v in vuln.get("fix_versions") or ()),
                )
            )
    return AuditResult(tuple(vulnerabilities), audited, tuple(unaudited))


def pip_audit_command() -> list[str] | None:
    """How to run pip-audit on this interpreter's environment, or ``None`` without it."""
    if importlib.util.find_spec("pip_audit") is not None:
        return [sys.executable, "-m", "pip_audit"]
    folder = Path(sys.executable).parent
    for name in ("pip-audit", "pip-audit.exe"):
        if (folder / name).is_file():
            return [str(folder / name)]
    return None


def _refused(args: Sequence[str]) -> str | None:
    for arg in args:
        option = arg.split("=", 1)[0]
        if arg.startswith("-o") and not arg.startswith("--"):
            option = "-o"  # -oFILE
        if option in REFUSED_OPTIONS:
            why = REFUSED_OPTIONS[option]
            return f"PRODREADY_PIP_AUDIT_ARGS holds {option}, which is refused: {why}"
    return None


@dataclass(frozen=True)
class _Run:
    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill pip-audit and what it started (``pip list``), which hold its pipes too."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def run_pip_audit(command: Sequence[str], timeout: float) -> _Run:
    """Run ``command``; kill it and its children when ``timeout`` seconds have passed."""
    environ = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONIOENCODING="utf-8")
    with subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=environ,
        start_new_session=os.name == "posix",
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            try:
                stdout, stderr = process.communicate(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                stdout, stderr = "", ""
            return _Run(None, stdout or "", stderr or "")
        return _Run(process.returncode, stdout, stderr)


def _error_text(stderr: str) -> str:
    """The line of pip-audit's stderr that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^(ERROR|CRITICAL):", ln)]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    chosen = re.sub(r"^(ERROR|CRITICAL):[\w.]+:", "", chosen).strip()
    if len(chosen) > MAX_ERROR_TEXT:
        chosen = chosen[: MAX_ERROR_TEXT - 3] + "..."
    return chosen


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED_PACKAGES])
    more = len(items) - MAX_NAMED_PACKAGES
    return shown + (f" and {more} more" if more > 0 else "")


@check(
    "dependencies.vulnerable",
    level=Level.ERROR,
    tags=["security"],
    title="pip-audit finds no known vulnerability (CLI with --audit)",
    hint="Upgrade the package to a fixed version and pin it; to accept one advisory, pass "
    "--ignore-vuln ID to pip-audit through PRODREADY_PIP_AUDIT_ARGS.",
    modes=(CLI,),
    timeout=AUDIT_TIMEOUT,
    blocking=True,
)
def check_vulnerable(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.audit:
        ctx.skip(NOT_ASKED)
    # From here on the audit was asked for: a skip makes the run unknown, not a pass.
    args = ctx.settings.pip_audit_args
    refused = _refused(args)
    if refused is not None:
        ctx.skip(refused, asked=True)
    command = pip_audit_command()
    if command is None:
        ctx.skip(f"pip-audit is not installed ({AUDIT_INSTALL})", asked=True)
    budget = ctx.time_left() - DEADLINE_MARGIN
    timeout_note = (
        f"the audit may take {AUDIT_TIMEOUT:g} s; a slow or unreachable vulnerability "
        "service can be replaced with -s osv --osv-url URL in PRODREADY_PIP_AUDIT_ARGS"
    )
    if budget <= 0:
        ctx.skip(f"no time left to run pip-audit: {timeout_note}", asked=True)
    run = run_pip_audit([*command, *BASE_OPTIONS, *args, "-f", "json"], budget)
    if run.returncode is None:
        ctx.skip(
            f"pip-audit did not finish within {budget:.1f} s and was stopped: {timeout_note}",
            asked=True,
        )
    try:
        result = parse_report(run.stdout, own_distributions(ctx.app.import_name))
    except ValueError:  # json.JSONDecodeError is one
        ctx.skip(
            f"pip-audit could not audit (exit {run.returncode}): {_error_text(run.stderr)}",
            asked=True,
        )
    unaudited = [name for name, _ in result.unaudited]
    total = result.audited + len(unaudited)
    if not result.vulnerabilities:
        if result.unaudited:
            ctx.skip(
                f"pip-audit could not audit {len(unaudited)} of {total} packages "
                f"({_named(unaudited)}): {result.unaudited[0][1]}",
                asked=True,
            )
        if not result.audited:
            ctx.skip("pip-audit found no package to audit", asked=True)
        return
    for vuln in result.vulnerabilities:
        also = f" ({', '.join(vuln.aliases)})" if vuln.aliases else ""
        if vuln.fix_versions:
            fixed = "fixed in " + ", ".join(vuln.fix_versions)
            hint = (
                f"Upgrade {vuln.package} to a fixed version ({', '.join(vuln.fix_versions)}) "
                "and pin it; to accept this advisory, add "
                f"--ignore-vuln {vuln.id} to PRODREADY_PIP_AUDIT_ARGS."
            )
        else:
            fixed = "no fixed version is published yet"
            hint = (
                f"Read {vuln.id}, mitigate, and remove {vuln.package} or accept the advisory "
                f"with --ignore-vuln {vuln.id} in PRODREADY_PIP_AUDIT_ARGS."
            )
        yield ctx.finding(
            f"{vuln.package} {vuln.version} has the known vulnerability {vuln.id}{also}: {fixed}.",
            hint=hint,
            observed={
                "package": vuln.package,
                "version": vuln.version,
                "id": vuln.id,
                "aliases": list(vuln.aliases),
                "fix_versions": list(vuln.fix_versions),
            },
        )
    if result.unaudited:
        yield ctx.finding(
            f"pip-audit could not audit {len(unaudited)} of {total} packages "
            f"({_named(unaudited)}): the audit is incomplete.",
            level=Level.WARNING,
            hint="Point PRODREADY_PIP_AUDIT_ARGS at a vulnerability service this machine "
            "reaches and that knows these packages (-s osv --osv-url URL).",
            observed={"unaudited": unaudited},
        )


#: Seconds kept back from the check's deadline to report what was read.
ENVIRONMENT_MARGIN = 0.05
#: Distributions whose requirements are read, at most.
MAX_DISTRIBUTIONS = 5000
#: Unsatisfied requirements listed in ``observed``.
MAX_OBSERVED_PROBLEMS = 50
#: The file by which an operating system marks its own Python (PEP 668).
EXTERNALLY_MANAGED = "EXTERNALLY-MANAGED"


def virtual_environment(
    prefix: str, base_prefix: str, *, real_prefix: str | None = None
) -> str | None:
    """What isolates the interpreter whose ``sys.prefix`` is ``prefix``: a virtual
    environment (venv, or virtualenv's older ``sys.real_prefix``), a conda environment
    (``conda-meta`` in the prefix), or nothing (``None``)."""
    if real_prefix is not None or prefix != base_prefix:
        return f"the virtual environment {prefix}"
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return f"the conda environment {prefix}"
    return None


@dataclass(frozen=True)
class Unsatisfied:
    """A requirement of an installed distribution that nothing installed satisfies."""

    package: str
    version: str
    requirement: str
    #: The version installed, or ``None`` when the required distribution is missing.
    installed: str | None = None

    def __str__(self) -> str:
        if self.installed is None:
            return (
                f"{self.package} {self.version} requires {self.requirement}, which is not installed"
            )
        return (
            f"{self.package} {self.version} requires {self.requirement}, "
            f"but {self.installed} is installed"
        )


def unsatisfied_requirements(
    distributions: Iterable[importlib.metadata.Distribution], deadline: float
) -> tuple[list[Unsatisfied], bool]:
    """The requirements ``pip check`` would report as missing or conflicting, and whether
    every distribution was read before ``deadline``.

    The first distribution of a name on the path is the one installed (as for pip);
    requirements whose markers do not hold here, extras' among them, are not needed.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion

    installed: dict[str, tuple[str, str, list[str]]] = {}
    complete = True
    for count, dist in enumerate(distributions):
        if count >= MAX_DISTRIBUTIONS or time.monotonic() > deadline:
            complete = False
            break
        try:
            # One parse of the metadata per distribution (each of .version and .requires
            # would parse it again); egg-info's requires.txt through .requires.
            meta = dist.metadata
            name, version = meta["Name"], meta["Version"]
            declared = meta.get_all("Requires-Dist")
            requires = list(declared if declared is not None else dist.requires or [])
        except Exception:  # unreadable metadata of one distribution
            continue
        if name:
            installed.setdefault(canonical_name(name), (str(name), str(version), requires))
    problems: list[Unsatisfied] = []
    for name, version, requires in installed.values():
        for text in requires:
            try:
                requirement = Requirement(text)
                if requirement.marker is not None and not requirement.marker.evaluate(
                    {"extra": ""}
                ):
                    continue
            except (InvalidRequirement, ValueError):
                continue  # a requirement pip could not read either
            wanted = f"{requirement.name}{requirement.specifier}"
            found = installed.get(canonical_name(requirement.name))
            if found is None:
                problems.append(Unsatisfied(name, version, wanted))
                continue
            try:
                if not requirement.specifier.contains(found[1], prereleases=True):
                    problems.append(Unsatisfied(name, version, wanted, found[1]))
            except InvalidVersion:
                continue
    return problems, complete


def _externally_managed() -> bool:
    """Whether the interpreter is marked as the operating system's own (PEP 668)."""
    stdlib = sysconfig.get_path("stdlib")
    return bool(stdlib) and os.path.isfile(os.path.join(stdlib, EXTERNALLY_MANAGED))


@check(
    "dependencies.environment",
    level=Level.WARNING,
    title="The app runs in a virtual environment whose requirements are all installed",
    hint="Install what is missing or conflicting in this environment (pip check lists the "
    "same problems), or rebuild the environment from the app's pinned requirements.",
    blocking=True,
)
def check_environment(ctx: CheckContext) -> Iterator[Finding]:
    isolated = virtual_environment(
        sys.prefix, sys.base_prefix, real_prefix=getattr(sys, "real_prefix", None)
    )
    if isolated is None:
        system = (
            ", the operating system's own Python (marked EXTERNALLY-MANAGED)"
            if _externally_managed()
            else ""
        )
        yield ctx.finding(
            f"The app runs outside a virtual environment, on {sys.executable}{system}: it "
            "shares its packages with every other program of this interpreter, and an "
            "upgrade for one of them can break the app.",
            hint="Create a virtual environment for the app (python3 -m venv /srv/APP/.venv), "
            "install its pinned requirements there, and start the server from it "
            "(/srv/APP/.venv/bin/gunicorn ...).",
            observed={"executable": sys.executable, "prefix": sys.prefix},
        )
    try:
        problems, complete = unsatisfied_requirements(
            importlib.metadata.distributions(), ctx.deadline - ENVIRONMENT_MARGIN
        )
    except ImportError:
        if isolated is not None:
            ctx.skip(
                "the packaging library is not installed (a requirement of flask-prodready: "
                "reinstall it) to read the distributions' requirements"
            )
        return
    if problems:
        yield ctx.finding(
            f"{len(problems)} requirement(s) of installed distributions are not satisfied: "
            f"{_named([str(problem) for problem in problems])}.",
            observed={
                "unsatisfied": [str(problem) for problem in problems[:MAX_OBSERVED_PROBLEMS]],
                "environment": isolated,
            },
        )
    elif not complete and isolated is not None:
        ctx.skip("the installed distributions could not all be read before the time limit")
