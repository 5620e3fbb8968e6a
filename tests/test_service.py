"""Which service a report describes: serviceId, version and releaseId."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.engine import service
from flask_prodready.engine.findings import ServiceInfo
from flask_prodready.engine.service import distribution_of, release_id, service_info


@pytest.fixture(autouse=True)
def _fresh_versions() -> Iterator[None]:
    """Each test looks distributions up anew."""
    distribution_of.cache_clear()
    yield
    distribution_of.cache_clear()


def app_named(import_name: str, tmp_path: Path) -> Flask:
    return Flask(import_name, root_path=str(tmp_path))


def test_version_of_the_distribution_of_the_top_level_package(tmp_path: Path) -> None:
    """An app in a package installed by a distribution gets that distribution's version."""
    app = app_named("jinja2.sandbox", tmp_path)
    assert service_info(app, {}) == ServiceInfo(
        name="jinja2.sandbox", version=metadata.version("jinja2")
    )


def test_a_package_outside_site_packages_reads_no_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app run from its checkout (its package not under site-packages, no distribution
    of its name) is answered without mapping every installed distribution."""

    def not_called() -> dict[str, list[str]]:
        raise AssertionError("mapped every distribution for a package of a checkout")

    monkeypatch.setattr(service.metadata, "packages_distributions", not_called)
    assert service_info(app_named("tests.test_service", tmp_path), {}).version is None


@pytest.mark.parametrize("import_name", ["__main__", "testapp", "no_such_package.web"])
def test_no_version_without_a_distribution(import_name: str, tmp_path: Path) -> None:
    """A script, or a package no distribution installed, has no version."""
    assert service_info(app_named(import_name, tmp_path), {}).version is None


def test_broken_metadata_gives_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Metadata that cannot be read leaves the version out; the report is still built."""

    def broken(*args: object) -> dict[str, list[str]]:
        raise OSError("unreadable RECORD")

    monkeypatch.setattr(service.metadata, "distribution", broken)
    monkeypatch.setattr(service.metadata, "packages_distributions", broken)
    assert service_info(app_named("jinja2", tmp_path), {}).version is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PRODREADY_RELEASE": "v1.2.3", "SENTRY_RELEASE": "abc123"}, "v1.2.3"),
        ({"SENTRY_RELEASE": "abc123"}, "abc123"),
        ({"PRODREADY_RELEASE": "  ", "SENTRY_RELEASE": "abc123"}, "abc123"),
        ({"PRODREADY_RELEASE": " v1.2.3\n"}, "v1.2.3"),
        ({"PRODREADY_RELEASE": "x" * 201}, None),
        ({"PRODREADY_RELEASE": "v1\x1b[2J"}, None),
        ({}, None),
    ],
)
def test_release_from_the_environment(environ: dict[str, str], expected: str | None) -> None:
    """PRODREADY_RELEASE wins over SENTRY_RELEASE; blank, over-long or unprintable values
    are no release."""
    assert release_id(environ) == expected


def test_service_info_as_json() -> None:
    """serviceId always, version and releaseId only when known."""
    assert ServiceInfo("shop").to_dict() == {"serviceId": "shop"}
    assert ServiceInfo("shop", "1.0", "abc").to_dict() == {
        "serviceId": "shop",
        "version": "1.0",
        "releaseId": "abc",
    }
