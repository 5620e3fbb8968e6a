"""Redaction by value: every secret the process holds is masked in every output.

Masking by *value* rather than by field means a secret is hidden wherever it turns up:
in a finding's message, in ``observed``, in the text of an exception a driver raised
with the database URL in it. The secrets are collected from the app's config (every
key that names a secret, at any depth, ``SECRET_KEY_FALLBACKS``, passwords inside URLs,
DSNs), from the environment and from the active Sentry client (whose DSN may be given
to ``sentry_sdk.init`` in code), then matched in their common encodings (URL-quoted,
``repr`` and JSON escaped).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from .findings import Finding

MASK = "***"
#: Values shorter than this are not masked inside free text: masking every ``a`` would
#: wreck the report while protecting nothing (such a key is reported as weak anyway).
MIN_SECRET_LENGTH = 3

_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|DSN|CREDENTIAL|PRIVATE", re.I)
#: Keys whose name contains a secret word but whose value is a setting, not a secret
#: (``JWT_TOKEN_LOCATION``, ``SECURITY_PASSWORD_HASH``, ``SESSION_KEY_PREFIX`` ...).
_NOT_SECRET_SUFFIX = re.compile(
    r"_(LOCATION|LOCATIONS|HASH|HASHES|SCHEMES|EXPIRES|TYPE|TYPES|NAME|HEADER|LENGTH|MIN|MAX"
    r"|ALGORITHM|ALGORITHMS|FIELD|PREFIX|ENABLED|REQUIRED|ROUNDS|SIZE|MODE|FUNC|ROLE|AGE)$",
    re.I,
)
#: Values of secret-named *environment* variables that are settings words, not secrets
#: (``PIP_KEYRING_PROVIDER=import``). Config values are always masked.
_SETTING_WORDS = frozenset(
    {
        "true",
        "false",
        "none",
        "null",
        "auto",
        "yes",
        "no",
        "on",
        "off",
        "import",
        "subprocess",
        "disabled",
        "enabled",
    }
)
#: ``scheme://user:password@``. The password may hold "/" (SQLAlchemy takes a base64
#: password written unquoted); the user may not, or every "a://b/c@d" would match.
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://([^:/@\s]*)(?::([^@\s]*))?@")


def is_secret_name(name: str) -> bool:
    """Whether a config or environment key names a secret (``*KEY*``, ``*TOKEN*`` ...)."""
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_SUFFIX.search(name)


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a config value (lists, tuples, dicts, bytes decoded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("utf-8", "backslashreplace")
        yield bytes(value).decode("latin-1")
        yield repr(bytes(value))[2:-1]
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item)


def _url_secrets(text: str, *, with_user: bool) -> Iterable[str]:
    """Passwords (and for DSNs the user part, which is the key) inside URLs."""
    for match in _URL_CREDENTIALS.finditer(text):
        user, password = match.group(1), match.group(2)
        if password:
            yield password
            yield unquote(password)
        if with_user and user:
            yield user
            yield unquote(user)


def collect_secrets(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> set[str]:
    """Every secret value the app's config and the process environment hold."""
    environ = os.environ if environ is None else environ
    secrets: set[str] = set()
    for source in (config, environ):
        for key, value in source.items():
            if not isinstance(key, str):
                continue
            named_secret = is_secret_name(key)
            for text in _strings(value):
                if named_secret and not (source is environ and text.lower() in _SETTING_WORDS):
                    secrets.add(text)
                secrets.update(_url_secrets(text, with_user="DSN" in key.upper()))
            if source is config and not named_secret:
                secrets.update(_nested_secrets(value))
    return {s for s in secrets if s}


def _nested_secrets(value: Any) -> Iterable[str]:
    """Values under secret-named keys inside a config value (``SQLALCHEMY_ENGINE_OPTIONS``'
    ``connect_args={"password": ...}``, a dict of API clients' tokens)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key):
                yield from _strings(item)
            else:
                yield from _nested_secrets(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _nested_secrets(item)


def sentry_secrets() -> set[str]:
    """The DSN of the process's active Sentry client and the key inside it.

    Apps often pass the DSN to ``sentry_sdk.init`` in code, where neither the config nor
    the environment shows it. sentry-sdk is not imported here: if the app has not
    imported it, no client exists.
    """
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None:
        return set()
    try:
        get_client = getattr(sentry_sdk, "get_client", None)
        client = get_client() if get_client is not None else sentry_sdk.Hub.current.client
        dsn = getattr(client, "dsn", None)
    except Exception:  # an SDK this code does not know: nothing to add
        return set()
    if not isinstance(dsn, str) or not dsn:
        return set()
    return {dsn, *_url_secrets(dsn, with_user=True)}


def _variants(secret: str) -> set[str]:
    """The forms a secret takes when a library prints it."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    with contextlib.suppress(UnicodeEncodeError):  # lone surrogates: the plain form will do
        forms.add(secret.encode("utf-8").decode("latin-1"))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Masks a fixed set of secret values in text and nested data."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH:
                forms.update(_variants(secret))
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=lambda s: (-len(s), s))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def for_config(cls, config: Mapping[str, Any], extra: Iterable[str] = ()) -> Redactor:
        return cls(collect_secrets(config) | sentry_secrets() | set(extra))

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by ``***``."""
        if self._pattern is None or not value:
            return value
        # Again until nothing changes: a secret that ends in "*" could re-form from a mask
        # and what precedes it ("abcde" * 4 + "***" for the secret "abcde***"). Every pass
        # that changes the text shortens it or replaces a character other than "*", so
        # twice its length bounds the passes.
        for _ in range(2 * len(value) + 1):
            masked = self._pattern.sub(MASK, value)
            if masked == value:
                break
            value = masked
        return value

    def value(self, value: Any) -> Any:
        """Redact every string inside ``value`` (dict keys too); other types pass through."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray)):
            return self.text(bytes(value).decode("utf-8", "backslashreplace"))
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(item) for item in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.text(str(value))

    def finding(self, finding: Finding) -> Finding:
        """A copy of ``finding`` whose free text and ``observed`` are redacted."""
        return replace(
            finding,
            message=self.text(finding.message),
            hint=self.text(finding.hint),
            observed=self.value(finding.observed),
            silence_reason=(
                None if finding.silence_reason is None else self.text(finding.silence_reason)
            ),
        )
