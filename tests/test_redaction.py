"""Redaction by value: secrets are masked wherever they turn up."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from flask_prodready.engine.findings import Finding, Level
from flask_prodready.engine.redaction import (
    MASK,
    MAX_VALUE_DEPTH,
    MIN_TEXT_SECRET_LENGTH,
    Redactor,
    UnsafeValue,
    collect_secrets,
    common_words,
    is_secret_name,
    secret_weakness,
)

PACKAGE = Path(__file__).resolve().parent.parent / "flask_prodready"


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
        "DB_PASS",
        "MYSQL_PWD",
        "REDIS_PWD",
        "SMTP_PASS",
        "GPG_PASSPHRASE",
        "AZURE_CREDENTIAL_FILE",
        "SSH_PRIVATE_KEY",
        "STRIPE_API_KEY",
        "password",
        "pwd",
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
    redactor = Redactor(["Zq7-abc1", "Zq7-abc1-def2"])
    assert redactor.text("xZq7-abc1-def2x") == f"x{MASK}x"


def test_short_values_are_not_masked_in_text() -> None:
    """One- and two-character values are not masked inside text (they would wreck it)."""
    assert Redactor(["ab"]).text("table") == "table"
    assert Redactor(["ab"]).value("ab") == "ab"


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
    st.text(alphabet=string.printable, min_size=MIN_TEXT_SECRET_LENGTH, max_size=40),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_property_secret_never_survives(secret: str, before: str, after: str) -> None:
    """Whatever a secret safe to mask in prose and the text around it, the secret does not
    survive redaction."""
    assume(secret_weakness(secret) is None)
    redactor = Redactor.for_config({"API_TOKEN": secret})
    assert secret not in redactor.text(before + secret + after)


@given(
    secret=st.one_of(
        st.text(alphabet=string.printable, min_size=3, max_size=MIN_TEXT_SECRET_LENGTH - 1),
        st.sampled_from(sorted(common_words())),
    ),
    quote_mark=st.sampled_from(["'", '"']),
    before=st.text(max_size=20),
)
def test_property_weak_secret_is_masked_where_it_stands_alone(
    secret: str, quote_mark: str, before: str
) -> None:
    """A short or common secret is masked as a whole value, quoted in text, and after "="
    (and so in a URL), whatever it is and whatever comes before."""
    assume(MASK not in secret and "=" not in secret and quote_mark not in secret)
    redactor = Redactor.for_config({"ADMIN_PASSWORD": secret})
    assert redactor.value(secret) == MASK
    assert redactor.value([secret]) == [MASK]
    quoted = redactor.text(f"{before} {quote_mark}{secret}{quote_mark}")
    assert quoted.endswith(f"{quote_mark}{MASK}{quote_mark}")
    assert redactor.text(f"{before} ADMIN_PASSWORD={secret}").endswith(f"={MASK}")


#: One password, and each URL form it takes in the issue's attacks.
URL_PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("config_url", "printed"),
    [
        pytest.param(
            f"postgresql+psycopg://app:{URL_PASSWORD}@db/app",
            [URL_PASSWORD, f"postgresql+psycopg://app:{URL_PASSWORD}@db/app"],
            id="spaces-in-userinfo",
        ),
        pytest.param(
            f"postgresql+psycopg://app@db/app?password={quote_plus(URL_PASSWORD)}",
            [URL_PASSWORD, quote_plus(URL_PASSWORD)],
            id="query-password",
        ),
        pytest.param(
            f"redis://cache/0?pass={quote(URL_PASSWORD)}",
            [URL_PASSWORD, quote(URL_PASSWORD)],
            id="query-pass",
        ),
        pytest.param(
            f"mysql://app@db/app?PWD={quote(URL_PASSWORD)}&charset=utf8",
            [URL_PASSWORD],
            id="query-pwd",
        ),
        pytest.param(
            "postgresql+psycopg://app:" + quote("100% s:e@c/r+et", safe="") + "@db/app",
            [
                "100% s:e@c/r+et",
                quote("100% s:e@c/r+et", safe=" +"),  # SQLAlchemy 2's rendering
                "100% s%3Ae%40c%2Fr+et",  # SQLAlchemy 1.4's: only ":@/" re-quoted
                quote("100% s:e@c/r+et", safe="").lower(),
            ],
            id="percent-encoded",
        ),
        pytest.param(
            "postgresql+psycopg://app:pässwört-ключ-鍵@db/app",
            [
                "pässwört-ключ-鍵",
                str("pässwört-ключ-鍵".encode()),
                quote("pässwört-ключ-鍵"),
                "pässwört-ключ-鍵".encode().decode("latin-1"),
            ],
            id="non-ascii-bytes",
        ),
    ],
)
def test_every_url_form_of_a_password_is_masked(config_url: str, printed: list[str]) -> None:
    """The password of a URL in the config is masked in every spelling a library prints
    it in: SQLAlchemy's rendering of the URL, its parts, and str() of its bytes."""
    redactor = Redactor.for_config({"SQLALCHEMY_DATABASE_URI": config_url}, extra=())
    url = make_url(config_url)
    password = url.password or url.query.get("password") or ""
    shown = [
        *printed,
        config_url,
        url.render_as_string(hide_password=False),
        repr(url.password),
        str(str(password).encode()),
    ]
    for text in shown:
        masked = redactor.text(f"connecting with {text} failed")
        for piece in ("horse", "s:e@c", "s%3Ae", "ключ", "xc3", "+et"):
            assert piece not in masked, masked


def test_url_credentials_are_masked_even_when_unknown() -> None:
    """A URL in a text has its password and secret-named query values masked even when no
    config value holds them; its port, path and other parameters stay."""
    redactor = Redactor([])
    text = "https://ops:s3cr3t-unknown@api.example:8443/v1?api_key=AbC&Access_Token=x&page=2"
    assert redactor.text(f"calling {text}") == (
        f"calling https://ops:{MASK}@api.example:8443/v1?api_key={MASK}&Access_Token={MASK}&page=2"
    )
    assert redactor.text("http://host:8080/path?mail=a@b") == "http://host:8080/path?mail=a@b"


def test_environment_names_that_hold_secrets() -> None:
    """DB_PASS, MYSQL_PWD, *_CREDENTIALS, *PRIVATE_KEY* and *API_KEY* in the environment are
    secrets; the shell's PWD is not."""
    environ = {
        "DB_PASS": "db-pass-from-env-1",
        "MYSQL_PWD": "mysql-pwd-from-env-2",
        "GOOGLE_CREDENTIALS": "google-credentials-3",
        "SSH_PRIVATE_KEY_B64": "c3NoLXByaXZhdGUta2V5",
        "OPENAI_API_KEY": "sk-openai-api-key-4",
        "PWD": "/srv/app/current",
    }
    found = collect_secrets({}, environ=environ)
    assert found == set(environ.values()) - {"/srv/app/current"}


def test_weak_secret_leaves_prose_alone() -> None:
    """A common word as a secret is not masked inside prose: the hint reads as written, and
    a JSON key equal to the secret stays a key."""
    redactor = Redactor.for_config({"ADMIN_PASSWORD": "password", "API_TOKEN": "error"})
    hint = "so a forged Host header cannot poison external URLs (password-reset links)."
    assert redactor.text(hint) == hint
    assert redactor.value({"error": "error", "password": "password"}) == {
        "error": MASK,
        "password": MASK,
    }
    assert redactor.text("logged in with 'password'") == f"logged in with '{MASK}'"


@pytest.mark.parametrize(
    ("observed", "said"),
    [
        ("cyclic", "the value contains itself"),
        ("tuple-key", "a key of type tuple (JSON keys are names)"),
        ("deep", f"the value is nested deeper than {MAX_VALUE_DEPTH} levels"),
    ],
)
def test_values_that_cannot_be_made_safe_are_refused(observed: str, said: str) -> None:
    """A value that contains itself, has a tuple as a key, or nests too deep raises
    UnsafeValue naming why, instead of recursing for ever or rendering later."""
    value: Any
    if observed == "cyclic":
        value = {"a": []}
        value["a"].append(value)
    elif observed == "tuple-key":
        value = {("a", 1): "x"}
    else:
        value = "leaf"
        for _ in range(MAX_VALUE_DEPTH + 1):
            value = [value]
    with pytest.raises(UnsafeValue, match=re.escape(said)):
        Redactor([]).value(value)


def test_values_are_made_json_safe() -> None:
    """Tuples and sets become lists, number keys strings, non-finite floats and other
    objects their text, lone surrogates escapes."""
    redactor = Redactor([])
    assert redactor.value({1: (1, 2), None: {3}, "f": float("nan"), "p": Path("/x")}) == {
        "1": [1, 2],
        "null": [3],
        "f": "nan",
        "p": "/x",
    }
    assert redactor.value("a\ud800b") == "a\\ud800b"


def test_common_words_cover_the_reports_own_text() -> None:
    """Every word of eight letters or more in the package's own strings (titles, hints,
    messages) is a common word: a secret equal to one is never masked inside that text."""
    words = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words.update(w.lower() for w in re.findall(r"[A-Za-z]{8,}", node.value))
    missing = sorted(words - common_words())
    assert missing == [], f"add to flask_prodready/engine/common_words.txt: {missing}"
