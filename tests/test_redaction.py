"""Redaction by value: secrets are masked wherever they turn up."""

from __future__ import annotations

import string
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from flask_prodready.engine.findings import Finding, Level
from flask_prodready.engine.redaction import MASK, Redactor, collect_secrets, is_secret_name


def test_secret_names() -> None:
    """Names with KEY/SECRET/PASSWORD/TOKEN/DSN are secrets; settings about them are not."""
    for name in (
        "SECRET_KEY",
        "MAIL_PASSWORD",
        "API_TOKEN",
        "SENTRY_DSN",
        "AWS_ACCESS_KEY_ID",
        "SECURITY_PASSWORD_SALT",
        "PRODREADY_TOKEN",
        "GITHUB_CREDENTIALS",
    ):
        assert is_secret_name(name), name
    for name in (
        "JWT_TOKEN_LOCATION",
        "SECURITY_PASSWORD_HASH",
        "SESSION_KEY_PREFIX",
        "DEBUG",
        "SQLALCHEMY_ECHO",
    ):
        assert not is_secret_name(name), name


def test_collects_config_values_urls_and_dsns() -> None:
    """Secret-named values, fallbacks, URL passwords and a DSN's key are collected."""
    config = {
        "SECRET_KEY": "k" * 40,
        "SECRET_KEY_FALLBACKS": ["old-key-1", b"old-key-2"],
        "SQLALCHEMY_DATABASE_URI": "postgresql://app:p%40ss@db/app",
        "SQLALCHEMY_BINDS": {"users": "mysql://u:bindpw@h/db"},
        "SENTRY_DSN": "https://publickey123@o1.ingest.sentry.io/42",
        "DEBUG": False,
        "MAX_CONTENT_LENGTH": 1024,
    }
    found = collect_secrets(
        config, environ={"OTHER_TOKEN": "env-token-value", "PIP_KEYRING_PROVIDER": "import"}
    )
    assert {
        "k" * 40,
        "old-key-1",
        "old-key-2",
        "p%40ss",
        "p@ss",
        "bindpw",
        "publickey123",
        "env-token-value",
    } <= found
    assert "import" not in found


def test_masks_every_encoding() -> None:
    """A secret is masked as written, URL-quoted, repr-escaped and JSON-escaped."""
    secret = 'pa ss/"word'
    redactor = Redactor([secret])
    for form in (secret, quote(secret, safe=""), repr(secret)[1:-1], 'pa ss/\\"word'):
        assert redactor.text(f"before {form} after") == f"before {MASK} after"


def test_longest_secret_wins() -> None:
    """A secret containing another is masked whole."""
    redactor = Redactor(["abc", "abcdef"])
    assert redactor.text("xabcdefx") == f"x{MASK}x"


def test_short_values_are_not_masked_in_text() -> None:
    """One- and two-character values are not masked inside text (they would wreck it)."""
    assert Redactor(["ab"]).text("table") == "table"


def test_finding_is_redacted_throughout() -> None:
    """Message, hint, observed (keys and nested values) and silence reason are redacted."""
    redactor = Redactor(["s3cr3t-value"])
    finding = Finding(
        id="demo.x",
        level=Level.ERROR,
        message="saw s3cr3t-value",
        hint="not s3cr3t-value",
        observed={"s3cr3t-value": ["s3cr3t-value", 1, None]},
        silence_reason="s3cr3t-value",
    )
    clean = redactor.finding(finding)
    assert "s3cr3t-value" not in repr(clean)
    assert clean.observed == {MASK: [MASK, 1, None]}


@given(
    st.text(alphabet=string.printable, min_size=3, max_size=40),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_property_secret_never_survives(secret: str, before: str, after: str) -> None:
    """Whatever the secret and the text around it, the secret does not survive redaction."""
    redactor = Redactor.for_config({"API_TOKEN": secret})
    assert secret not in redactor.text(before + secret + after)
