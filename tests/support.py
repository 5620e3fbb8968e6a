"""Constants shared by the tests: a token and a configuration every check accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from flask_prodready.engine.findings import CheckOutcome
from flask_prodready.engine.state import get_state

TOKEN = "test-token-" + "x" * 24
STRONG_KEY = "8c1f0f6b3b1d4e0a9f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2910"

#: A configuration that every config.* and cookies.* check accepts.
GOOD_CONFIG: dict[str, Any] = {
    "SECRET_KEY": STRONG_KEY,
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "PREFERRED_URL_SCHEME": "https",
    "TRUSTED_HOSTS": ["localhost", "127.0.0.1"],
    "PRODREADY_TOKEN": TOKEN,
    # The suite may run as root (CI does), and starts its servers itself: accepted here,
    # still reported.
    "PRODREADY_SILENCED": {
        "server.root": "the test suite may run as root",
        "supervision.unsupervised": "the test suite starts its servers itself",
    },
}


def outcome_of(app: Flask, check_id: str, mode: str = "cli", **kwargs: Any) -> CheckOutcome:
    """Run one check on ``app`` through the real runner and return its outcome.

    ``kwargs`` go to ``build_report`` (``server_software=``, ``gunicorn=`` ...).
    """
    state = get_state(app)
    check = state.registry.get(check_id)
    assert check is not None, check_id
    return state.build_report(app, mode=mode, checks=[check], **kwargs).outcomes[check_id]


def messages_of(
    app: Flask, check_id: str, mode: str = "cli", **kwargs: Any
) -> list[tuple[str, str]]:
    """(level, message) of each finding of one check; an empty list means it passed."""
    outcome = outcome_of(app, check_id, mode, **kwargs)
    assert outcome.status.value in {"pass", "fail"}, (outcome.status, outcome.reason)
    return [(f.level.value, f.message) for f in outcome.findings]


def check_of(body: Mapping[str, Any], check_id: str) -> dict[str, Any]:
    """The entry of one check in a JSON report body (the one object of its list)."""
    (entry,) = body["checks"][check_id]
    return dict(entry)


def result_of(body: Mapping[str, Any], check_id: str) -> str:
    """How one check ended in a JSON report body: pass, fail, skipped or error."""
    return str(check_of(body, check_id)["result"])


def results_of(body: Mapping[str, Any]) -> dict[str, str]:
    """How every check of a JSON report body ended, by id."""
    return {check_id: result_of(body, check_id) for check_id in body["checks"]}
