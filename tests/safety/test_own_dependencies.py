"""pip-audit audits flask-prodready's own dependencies: every package, none skipped.

The requirements are generated from the installed distribution: its runtime requirement
(flask) and its optional integrations (the extras its checks import lazily), with what
they require in turn, each pinned to the version installed here. pip-audit asks the OSV
stub of tests/checks/test_dependencies.py on loopback: the real service is out of reach
in CI, and a run that cannot reach it reports "could not be audited", never a pass.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..checks.test_dependencies import OsvStub

DISTRIBUTION = "flask-prodready"
#: Extras for the project's own tooling, not for apps that use it.
TOOLING_EXTRAS = frozenset({"example", "test", "bench"})
AUDIT_TIMEOUT = 180


def _wanted(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras or {""})


def dependency_closure(distribution: str) -> dict[str, str]:
    """{canonical name: installed version} of ``distribution``'s runtime and integration
    requirements and of everything they require."""
    metadata = importlib.metadata.metadata(distribution)
    extras = frozenset(metadata.get_all("Provides-Extra") or ()) - TOOLING_EXTRAS
    pending = [
        requirement
        for requirement in map(Requirement, importlib.metadata.requires(distribution) or [])
        if _wanted(requirement, extras)
    ]
    found: dict[str, str] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = importlib.metadata.version(name)
        for nested in map(Requirement, importlib.metadata.requires(name) or []):
            if _wanted(nested, frozenset(requirement.extras)):
                pending.append(nested)
    return found


def test_every_dependency_is_audited(tmp_path: Path) -> None:
    """pip-audit on the pinned dependency closure audits every package, skips none, and
    finds no known vulnerability in the stub's data."""
    closure = dependency_closure(DISTRIBUTION)
    assert {"flask", "werkzeug", "jinja2", "itsdangerous", "click", "markupsafe"} <= set(closure)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{name}=={version}\n" for name, version in closure.items()))
    pip_audit = Path(sys.executable).parent / "pip-audit"

    with OsvStub() as osv:
        done = subprocess.run(
            [
                str(pip_audit),
                *("-r", str(requirements), "--no-deps", "--disable-pip", "--strict"),
                *("-s", "osv", "--osv-url", osv.url, "-f", "json", "--progress-spinner", "off"),
            ],
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT,
            check=False,
        )

    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    audited = {canonicalize_name(d["name"]): d for d in report["dependencies"]}
    assert set(audited) == set(closure)
    assert [name for name, d in audited.items() if "skip_reason" in d] == []
    assert {name: d["version"] for name, d in audited.items()} == closure
    assert [name for name, d in audited.items() if d["vulns"]] == []
    asked = {canonicalize_name(q["package"]["name"]) for q in osv.queries}
    assert asked == set(closure)
