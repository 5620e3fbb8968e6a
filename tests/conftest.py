"""Shared fixtures: app factories in known-good and known-bad shapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator

from flask_prodready import ProdReady
from flask_prodready.checks._source_scan import clear_cache
from flask_prodready.engine.findings import Report
from flask_prodready.render.json import report_schema

from .stacks import add_stack_marks
from .support import GOOD_CONFIG, TOKEN

#: requests (under pip-audit) and urllib send through these, which would carry requests
#: meant for the suite's loopback servers off the machine.
PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy") for name in (base, base.upper())
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs of the installed libraries (tests/stacks.py)."""
    for item in items:
        add_stack_marks(item)


@pytest.fixture(autouse=True, scope="session")
def _reports_match_their_schema() -> Iterator[None]:
    """Every report body built in the suite's process validates against the JSON Schema
    shipped in the package (compiled once; a body that does not match fails its test)."""
    validator = Draft202012Validator(report_schema())
    to_dict = Report.to_dict

    def validated(report: Report) -> dict[str, Any]:
        body = to_dict(report)
        validator.validate(body)
        return body

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Report, "to_dict", validated)
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the process's FLASK_*/PRODREADY_* and proxy variables and
    without the scan cache."""
    for name in (
        "FLASK_DEBUG",
        "FLASK_CONFIG",
        "FLASK_ENV",
        "APP_ENV",
        "ENV",
        "ENVIRONMENT",
        "PRODREADY_TOKEN",
        "SECRET_KEY",
        "APP_CONFIG",
        "APP_SETTINGS",
        "CONFIG_NAME",
        "APP_ENVIRONMENT",
        "PRODREADY_RELEASE",
        "SENTRY_RELEASE",
        *PROXY_VARIABLES,
    ):
        monkeypatch.delenv(name, raising=False)
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def make_app(tmp_path: Any) -> Callable[..., Flask]:
    """Build an app with GOOD_CONFIG overridden by keyword arguments, ProdReady installed.

    The app's root and instance folders are in a temporary folder so that the source scan
    of ``config.secret_key_in_source`` sees only what the test puts there.
    """

    def factory(extension: ProdReady | None = None, **overrides: Any) -> Flask:
        root = tmp_path / "project" / "app"
        root.mkdir(parents=True, exist_ok=True)
        app = Flask("testapp", root_path=str(root), instance_path=str(tmp_path / "instance"))
        app.config.update(GOOD_CONFIG)
        app.config.update(overrides)
        (extension or ProdReady()).init_app(app)
        return app

    return factory


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
