"""PRODREADY_* keys: defaults with setdefault, and a ValueError naming a bad key."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from flask_prodready import ProdReady
from flask_prodready.engine.state import get_state


def test_defaults(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key gets its documented default; the token comes from the environment."""
    monkeypatch.setenv("PRODREADY_TOKEN", "from-the-environment-123")
    app = Flask("plain")
    ProdReady(app)
    settings = get_state(app).settings
    assert settings.token == "from-the-environment-123"
    assert (settings.healthz_path, settings.readiness_path) == ("/healthz", "/_readiness")
    assert settings.healthz_checks == ()
    assert dict(settings.silenced) == {}
    assert (settings.check_timeout, settings.cache_seconds) == (2.0, 5.0)
    assert (settings.upload_folder, settings.backup_path) == (None, None)
    assert settings.backup_max_age == 26
    assert settings.pip_audit_args == ()


def test_app_value_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the app set is kept (setdefault)."""
    monkeypatch.setenv("PRODREADY_TOKEN", "from-the-environment-123")
    app = Flask("plain")
    app.config["PRODREADY_TOKEN"] = None
    ProdReady(app)
    assert get_state(app).settings.token is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "PRODREADY_CHECK_TIMEOUT",
            "soon",
            "PRODREADY_CHECK_TIMEOUT must be a number of seconds > 0, got 'soon'",
        ),
        (
            "PRODREADY_CHECK_TIMEOUT",
            0,
            "PRODREADY_CHECK_TIMEOUT must be a finite number > 0, got 0",
        ),
        (
            "PRODREADY_CHECK_TIMEOUT",
            True,
            "PRODREADY_CHECK_TIMEOUT must be a number of seconds > 0, got True",
        ),
        (
            "PRODREADY_CHECK_TIMEOUT",
            1000,
            "PRODREADY_CHECK_TIMEOUT must be at most 300 seconds, got 1000.0",
        ),
        (
            "PRODREADY_CACHE_SECONDS",
            -1,
            "PRODREADY_CACHE_SECONDS must be a finite number >= 0, got -1",
        ),
        (
            "PRODREADY_CACHE_SECONDS",
            float("inf"),
            "PRODREADY_CACHE_SECONDS must be a finite number >= 0, got inf",
        ),
        ("PRODREADY_HEALTHZ_PATH", "//", "PRODREADY_HEALTHZ_PATH must be a URL path"),
        (
            "PRODREADY_READINESS_PATH",
            "/_readiness/",
            "PRODREADY_READINESS_PATH must be a URL path starting with '/', without a trailing",
        ),
        (
            "PRODREADY_BACKUP_MAX_AGE",
            "1d",
            "PRODREADY_BACKUP_MAX_AGE must be a number of hours > 0, got '1d'",
        ),
        (
            "PRODREADY_HEALTHZ_PATH",
            "healthz",
            "PRODREADY_HEALTHZ_PATH must be a URL path starting with '/'",
        ),
        (
            "PRODREADY_READINESS_PATH",
            "/healthz",
            "PRODREADY_HEALTHZ_PATH and PRODREADY_READINESS_PATH must differ",
        ),
        (
            "PRODREADY_HEALTHZ_CHECKS",
            "database.unreachable",
            "PRODREADY_HEALTHZ_CHECKS must be a list of strings, got 'database.unreachable'",
        ),
        (
            "PRODREADY_HEALTHZ_CHECKS",
            ["database.unreachabel"],
            "PRODREADY_HEALTHZ_CHECKS names 'database.unreachabel', which is neither a check id",
        ),
        (
            "PRODREADY_SILENCED",
            ["config.debug"],
            "PRODREADY_SILENCED must be a dict of {check_id: reason}",
        ),
        (
            "PRODREADY_SILENCED",
            {"config.debug": ""},
            "PRODREADY_SILENCED must be a dict of {check_id: reason} with a non-empty reason",
        ),
        ("PRODREADY_UPLOAD_FOLDER", 3, "PRODREADY_UPLOAD_FOLDER must be None or a folder path"),
        ("PRODREADY_PIP_AUDIT_ARGS", [1], "PRODREADY_PIP_AUDIT_ARGS must be a list of non-empty"),
        ("PRODREADY_TOKEN", "short", "PRODREADY_TOKEN must be at least 16 characters"),
        (
            "PRODREADY_TOKEN",
            12345678901234567,
            "PRODREADY_TOKEN must be None or a string, got <hidden>",
        ),
    ],
)
def test_bad_values_fail_init_app(key: str, value: object, message: str) -> None:
    """A wrong type or range fails init_app with a ValueError naming the key."""
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        ProdReady(app)


def test_short_token_is_not_echoed() -> None:
    """The token's value never appears in the error, even when it is refused."""
    app = Flask("bad")
    app.config["PRODREADY_TOKEN"] = "hunter2-hunter2"
    with pytest.raises(ValueError, match="PRODREADY_TOKEN must be at least") as excinfo:
        ProdReady(app)
    assert "hunter2" not in str(excinfo.value)


@pytest.mark.parametrize(
    "token",
    [
        "Tökén-0123456789abcdef",
        "token with spaces 0123",
        'quoted"token-0123456789',
        "tok=en-0123456789ab",
    ],
)
def test_token_outside_rfc_6750_characters_fails_naming_the_rule(token: str) -> None:
    """A token a client could never send in a header (non-ASCII, a space, a quote, '=' before
    the end) fails init_app with a ValueError naming the rule, without the token."""
    app = Flask("bad")
    app.config["PRODREADY_TOKEN"] = token
    with pytest.raises(ValueError, match="RFC 6750 bearer token") as excinfo:
        ProdReady(app)
    assert token not in str(excinfo.value)
    assert "'-', '.', '_', '~', '+', '/', then '=' at the end" in str(excinfo.value)


def test_base64_token_with_padding_is_accepted() -> None:
    """A token made of RFC 6750's characters, '=' padding included, is accepted."""
    app = Flask("good")
    app.config["PRODREADY_TOKEN"] = "Zm9vYmFy-._~+/0123456789=="
    ProdReady(app)
