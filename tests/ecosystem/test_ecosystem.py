"""The ecosystem check: real applications from PyPI, deployed as their docs say, report
what their reviewed expectations say (tests/ecosystem/expected/<app>.toml).

Each application is installed into its own virtualenv under ``.ecosystem/`` (made once,
then reused), served by gunicorn behind nginx with TLS on loopback, visited, and asked
for its live report and ``flask readiness``. ``python -m tests.ecosystem`` prints the
same differences without pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):  # the applications need 3.11, the expectations tomllib
    pytest.skip("the ecosystem check needs Python 3.11 or later", allow_module_level=True)

from .__main__ import save
from .apps import APPS
from .deploy import CACHE, build_prodready_wheel, deploy_and_report
from .expected import compare, load

pytestmark = [pytest.mark.ecosystem, pytest.mark.integration]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flask-prodready built once from this checkout, for every application."""
    folder = tmp_path_factory.mktemp("prodready-wheel")
    return build_prodready_wheel(folder, folder / "build.log")


@pytest.mark.parametrize("name", sorted(APPS))
def test_real_application_reports_its_reviewed_expectations(
    name: str, wheel: Path, tmp_path: Path
) -> None:
    """A real app reports exactly its reviewed findings: no crash, no error, no change."""
    CACHE.mkdir(exist_ok=True)
    log = tmp_path / "install.log"
    outcome = deploy_and_report(APPS[name], wheel, log)
    report = save(outcome)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.timings.items())
    print(f"{name}: {timings}")
    differences = compare(outcome, load(name))
    assert not differences, (
        f"{name} differs from tests/ecosystem/expected/{name}.toml (reports in {report}, "
        f"logs in {outcome.logs}):\n" + "\n".join(map(str, differences))
    )


def test_expectations_name_known_checks_once() -> None:
    """Every expected file is well formed: known modes, no check in two tables."""
    for name in APPS:
        expected = load(name)
        assert expected["app"] == name
        for mode in ("live", "cli"):
            tables = expected.get(mode, {})
            seen: list[str] = []
            for section in ("findings", "quiet", "skipped"):
                seen += list(tables.get(section, []))
            assert len(seen) == len(set(seen)), f"{name} [{mode}] lists a check twice"
        for defect in expected.get("known_defects", []):
            assert defect["mode"] in ("live", "cli"), defect
            assert {"check", "reported", "right", "why"} <= set(defect), defect
