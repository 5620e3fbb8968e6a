"""Redaction by value: every secret the process holds is masked in every output.

Masking by *value* rather than by field means a secret is hidden wherever it turns up:
in a finding's message, in ``observed``, in the text of an exception a driver raised
with the database URL in it. The secrets are collected from the app's config (every
key that names a secret, at any depth, ``SECRET_KEY_FALLBACKS``, the passwords and
secret-named query parameters of URLs, DSNs), from the environment and from the active
Sentry client (whose DSN may be given to ``sentry_sdk.init`` in code), then matched in
every spelling libraries print them in: URL-quoted as ``urllib`` and SQLAlchemy quote,
``repr`` and JSON escaped, ``str()`` of their bytes.

What is masked is values, never structure: the keys of JSON bodies, ids, levels and
titles are left alone. A secret too short or too common to mask safely inside prose
(under :data:`MIN_TEXT_SECRET_LENGTH` characters, or a common word) is masked only where
it stands as a whole value: a whole string, a quoted one, a ``name=value``, a URL's
password. Masking the word ``password`` everywhere would both garble the report and tell
its readers the secret; ``config.weak_secret`` reports such a secret instead.

Besides the known secrets, the password of any URL in a text and the value of any of its
secret-named query parameters (``?password=``, ``?token=`` ...) are masked too.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from .findings import Finding

MASK = "***"
#: Values shorter than this are never masked: masking every ``a`` would wreck the report
#: while protecting nothing (a secret setting that short is reported as weak).
MIN_SECRET_LENGTH = 3
#: Values shorter than this, or common words, are masked only where they stand as a
#: whole value, never inside prose (and a setting holding one is reported as weak).
MIN_TEXT_SECRET_LENGTH = 8
#: Deepest nesting of a value redacted (an ``observed`` value, a remote body's); deeper is
#: refused rather than walked (a cycle, or a body built to exhaust the stack).
MAX_VALUE_DEPTH = 32

_SECRET_NAME = re.compile(
    r"KEY|SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|DSN|CREDENTIAL|PRIVATE|PASS$|PWD$", re.I
)
#: Keys whose name contains a secret word but whose value is a setting, not a secret
#: (``JWT_TOKEN_LOCATION``, ``SECURITY_PASSWORD_HASH``, ``SESSION_KEY_PREFIX`` ...).
_NOT_SECRET_SUFFIX = re.compile(
    r"_(LOCATION|LOCATIONS|HASH|HASHES|SCHEMES|EXPIRES|TYPE|TYPES|NAME|HEADER|LENGTH|MIN|MAX"
    r"|ALGORITHM|ALGORITHMS|FIELD|PREFIX|ENABLED|REQUIRED|ROUNDS|SIZE|MODE|FUNC|ROLE|AGE)$",
    re.I,
)
#: Environment variables that end like a secret but are the shell's working directories.
_NOT_SECRET_VARIABLES = frozenset({"PWD", "OLDPWD"})
#: Names whose last word says the whole value is a credential (``ADMIN_PASSWORD``,
#: ``STRIPE_API_KEY``, ``DB_PASS``), as opposed to settings about one
#: (``SECURITY_PASSWORD_COMPLEXITY_CHECKER``): these are judged by ``config.weak_secret``.
_CREDENTIAL_NAME = re.compile(
    r"(KEY|KEYS|SECRET|SECRETS|PASSWORD|PASSWORDS|PASSWD|PASSPHRASE|TOKEN|TOKENS|DSN"
    r"|CREDENTIAL|CREDENTIALS|PASS|PWD)$",
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
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: A URL inside free text: up to whitespace or a character that ends a quoted value.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>\"'`]+")
_QUERY_PAIR = re.compile(r"([?&;])([^=&;#?]+)=([^&;#]*)")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-F])([0-9A-F])")


class UnsafeValue(ValueError):
    """A value that cannot be made safe to show (a cycle, too deep, a key that is no name)."""


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Common passwords and words of eight characters or more (``common_words.txt``)."""
    text = importlib.resources.files(__package__).joinpath("common_words.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def secret_weakness(secret: str) -> str | None:
    """Why ``secret`` is too weak to mask inside prose (never quoting it), else ``None``."""
    if len(secret) < MIN_TEXT_SECRET_LENGTH:
        return f"it is shorter than {MIN_TEXT_SECRET_LENGTH} characters"
    if secret.lower() in common_words():
        return "it is a common word or password"
    return None


def is_secret_name(name: str) -> bool:
    """Whether a config or environment key names a secret (``*KEY*``, ``*TOKEN*``, ``*PWD``
    ...)."""
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_SUFFIX.search(name)


def names_a_credential(name: str) -> bool:
    """Whether a secret-named key holds a credential as its whole value (its last word is
    the secret word: ``ADMIN_PASSWORD``, ``API_KEY``, ``password``)."""
    return is_secret_name(name) and bool(_CREDENTIAL_NAME.search(name.strip()))


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


def url_credentials(text: str) -> Iterator[tuple[str, str]]:
    """``(where, value)`` for each credential of the URLs in ``text``, raw as written:
    ``("user", ...)`` and ``("password", ...)`` for ``scheme://user:password@``, and
    ``("query parameter 'token'", ...)`` for a secret-named query parameter.

    Read as SQLAlchemy reads a URL: the password runs to the first ``@`` after the user
    (spaces and ``/`` included). When the line has a later ``@``, the text up to that one
    is given too, for a password written with a raw ``@``.
    """
    for match in _SCHEME.finditer(text):
        rest = text[match.end() :]
        first_at = rest.find("@")
        if first_at >= 0:
            user, colon, password = rest[:first_at].partition(":")
            if not re.search(r"[/\s?#]", user):  # else this "@" is not the userinfo's
                yield "user", user
                if colon:
                    yield "password", password
                    last_at = rest.rfind("@", 0, len(rest.split("\n", 1)[0]))
                    if last_at > first_at:
                        yield "password", rest[len(user) + 1 : last_at]
        query_start = rest.find("?")
        if query_start >= 0:
            query = re.split(r"[\s#]", rest[query_start:], maxsplit=1)[0]
            for pair in _QUERY_PAIR.finditer(query):
                name = unquote_plus(pair.group(2)).strip()
                if is_secret_name(name) and pair.group(3):
                    yield f"query parameter {name!r}", pair.group(3)


def _url_secrets(text: str, *, with_user: bool) -> Iterable[str]:
    """Passwords and secret query values inside URLs (and for DSNs the user part, which is
    the key), as written and decoded."""
    for where, value in url_credentials(text):
        if where == "user" and not with_user:
            continue
        yield value
        yield unquote(value)
        if where.startswith("query"):
            yield unquote_plus(value)


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
            named_secret = is_secret_name(key) and not (
                source is environ and key in _NOT_SECRET_VARIABLES
            )
            for text in _strings(value):
                if named_secret and not (source is environ and text.lower() in _SETTING_WORDS):
                    secrets.add(text)
                secrets.update(_url_secrets(text, with_user="DSN" in key.upper()))
            if source is config and not named_secret:
                secrets.update(_nested_secrets(value))
    return {s for s in secrets if s}


def _nested_secrets(value: Any, depth: int = 0) -> Iterable[str]:
    """Values under secret-named keys inside a config value (``SQLALCHEMY_ENGINE_OPTIONS``'
    ``connect_args={"password": ...}``, a dict of API clients' tokens)."""
    if depth > MAX_VALUE_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key):
                yield from _strings(item)
            else:
                yield from _nested_secrets(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _nested_secrets(item, depth + 1)


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


def _quote_reserved(secret: str) -> str:
    """SQLAlchemy 1.4's quoting of a password: only ``:``, ``@`` and ``/``."""
    return re.sub(r"[:@/]", lambda m: f"%{ord(m.group(0)):X}", secret)


def _quoted_forms(secret: str) -> tuple[str, str]:
    """The secret as ``repr`` writes it inside single and inside double quotes: inside a
    longer string, the quotes ``repr`` picks depend on the rest of it."""
    single = repr(secret + "\"'")[1:-4]  # both quotes present: repr uses ' and escapes it
    double = single.replace("\\'", "'").replace('"', '\\"')
    return single, double


def _variants(secret: str) -> set[str]:
    """The spellings of a secret: as written, percent-encoded as ``urllib`` and SQLAlchemy
    (1.4 and 2.x) encode it, ``repr``- and JSON-escaped, and ``str()`` of its bytes."""
    forms = {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote(secret, safe=" +"),  # SQLAlchemy 2.x's render_as_string
        quote(secret, safe=" +/"),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        _quote_reserved(secret),
        repr(secret)[1:-1],
        *_quoted_forms(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    for encoding in ("utf-8", "latin-1"):
        with contextlib.suppress(UnicodeEncodeError):  # lone surrogates, or not Latin-1
            raw = secret.encode(encoding)
            forms.add(repr(raw)[2:-1])  # str(b"...") without the b'...'
            forms.add(raw.decode("latin-1"))  # UTF-8 read as Latin-1
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _pattern_of(form: str) -> str:
    """``form`` as a regular expression, its percent-escapes matching in either case."""

    def either_case(match: re.Match[str]) -> str:
        return "%" + "".join(
            f"[{c}{c.lower()}]" if c.isalpha() else c for c in (match.group(1), match.group(2))
        )

    return _PERCENT_ESCAPE.sub(either_case, re.escape(form))


def _alternatives(forms: Iterable[str]) -> str:
    # Longest first, so a secret that contains another is masked whole.
    return "|".join(_pattern_of(f) for f in sorted(set(forms), key=lambda s: (-len(s), s)))


def _mask_pair(pair: re.Match[str]) -> str:
    name = unquote_plus(pair.group(2)).strip()
    if pair.group(3) and is_secret_name(name):
        return f"{pair.group(1)}{pair.group(2)}={MASK}"
    return pair.group(0)


def _mask_url(match: re.Match[str]) -> str:
    """One URL of a text with its password and secret-named query values masked.

    The authority is read as RFC 3986 writes it (up to the first ``/``, ``?`` or ``#``),
    so that ``http://host:8080/path?mail=a@b`` keeps its port.
    """
    url = match.group(0)
    scheme_end = url.index("://") + 3
    rest = url[scheme_end:]
    authority_end = len(re.split(r"[/?#]", rest, maxsplit=1)[0])
    userinfo_end = rest.rfind("@", 0, authority_end)
    colon = rest.find(":", 0, userinfo_end)
    if 0 <= colon < userinfo_end - 1:
        rest = rest[: colon + 1] + MASK + rest[userinfo_end:]
    query_start = rest.find("?")
    if query_start >= 0:
        rest = rest[:query_start] + _QUERY_PAIR.sub(_mask_pair, rest[query_start:])
    return url[:scheme_end] + rest


class Redactor:
    """Masks a fixed set of secret values in text and nested data."""

    def __init__(self, secrets: Iterable[str]) -> None:
        strong: set[str] = set()
        weak: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
                continue
            (weak if secret_weakness(secret) else strong).update(_variants(secret))
        weak -= strong
        self._strong = re.compile(_alternatives(strong)) if strong else None
        self._weak_values = frozenset(weak)
        if weak:
            either = _alternatives(weak)
            # Where a weak secret stands as a whole value inside text: quoted, or after
            # "=" up to the end of the value.
            self._weak: re.Pattern[str] | None = re.compile(
                rf"(?<=')(?:{either})(?=')|(?<=\")(?:{either})(?=\")"
                rf"|(?<==)(?:{either})(?=$|[\s&;,)\]}}'\"])"
            )
        else:
            self._weak = None

    @classmethod
    def for_config(cls, config: Mapping[str, Any], extra: Iterable[str] = ()) -> Redactor:
        return cls(collect_secrets(config) | sentry_secrets() | set(extra))

    def _masked(self, value: str, *, whole: bool) -> str:
        steps: list[Callable[[str], str]] = []
        if self._strong is not None:
            steps.append(functools.partial(self._strong.sub, MASK))
        if "://" in value:
            steps.append(functools.partial(_URL_IN_TEXT.sub, _mask_url))
        if whole and self._weak is not None:
            steps.append(functools.partial(self._weak.sub, MASK))
        # Again until nothing changes: a secret that ends in "*" could re-form from a mask
        # and what precedes it ("abcde" * 4 + "***" for the secret "abcde***"). Every pass
        # that changes the text shortens it or replaces a character other than "*", so
        # twice its length bounds the passes.
        for _ in range(2 * len(value) + 1):
            masked = value
            for step in steps:
                masked = step(masked)
            if whole and masked in self._weak_values:
                masked = MASK
            if masked == value:
                break
            value = masked
        return value

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by ``***``."""
        if not value:
            return value
        return self._masked(value, whole=True)

    def name(self, value: str) -> str:
        """A key of a mapping: masked only where it holds a secret that is safe to mask
        inside text (a key is structure, a weak secret is not looked for there)."""
        if not value:
            return value
        return self._masked(value, whole=False)

    def value(self, value: Any) -> Any:
        """``value`` as JSON-safe data with every string redacted: mappings with string keys,
        lists, strings, finite numbers, booleans and ``None``; anything else as its
        ``str()``. Raises :class:`UnsafeValue` for a cycle, nesting deeper than
        :data:`MAX_VALUE_DEPTH` or a key that is no name (a tuple), and whatever ``str()``
        of an object raises."""
        return self._value(value, 0, set())

    def _value(self, value: Any, depth: int, path: set[int]) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self.text(_printable(value))
        if isinstance(value, (bytes, bytearray)):
            return self.text(bytes(value).decode("utf-8", "backslashreplace"))
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            if id(value) in path:
                raise UnsafeValue("the value contains itself")
            if depth >= MAX_VALUE_DEPTH:
                raise UnsafeValue(f"the value is nested deeper than {MAX_VALUE_DEPTH} levels")
            path.add(id(value))
            try:
                if isinstance(value, Mapping):
                    return {
                        self.name(_key(k)): self._value(v, depth + 1, path)
                        for k, v in value.items()
                    }
                return [self._value(item, depth + 1, path) for item in value]
            finally:
                path.discard(id(value))
        return self.text(_printable(str(value)))

    def finding(self, finding: Finding) -> Finding:
        """A copy of ``finding`` whose free text and ``observed`` are redacted (``observed``
        made JSON-safe; :class:`UnsafeValue` when it cannot be)."""
        return replace(
            finding,
            message=self.text(_printable(finding.message)),
            hint=self.text(_printable(finding.hint)),
            observed=self.value(finding.observed),
            silence_reason=(
                None
                if finding.silence_reason is None
                else self.text(_printable(finding.silence_reason))
            ),
        )


def _printable(text: Any) -> str:
    """``text`` as a plain ``str`` that UTF-8 can encode (lone surrogates escaped)."""
    plain = str(text)
    try:
        plain.encode("utf-8")
    except UnicodeEncodeError:
        plain = plain.encode("utf-8", "backslashreplace").decode("utf-8")
    return plain


def _key(key: Any) -> str:
    """A mapping key as JSON writes it; a key that is no name (a tuple) is refused."""
    if isinstance(key, str):
        return _printable(key)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    raise UnsafeValue(f"a key of type {type(key).__name__} (JSON keys are names)")
