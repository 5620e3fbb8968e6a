"""``config.*``: the app's configuration as loaded — debug, testing, the secret key, limits."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.project import project_root
from ..engine.redaction import names_a_credential, secret_weakness, url_credentials
from ..engine.registry import check
from ._code_use import code_use
from ._provenance import EnvValue, Provenance
from ._source_scan import find_secret_in_files, hit_findings, reads_as_words

#: A text key shorter than this is guessable or a leftover (``secrets.token_hex()`` gives 64).
MIN_KEY_LENGTH = 32
#: A bytes key is raw randomness: 16 bytes are 128 bits, as much as 32 hex characters.
MIN_KEY_BYTES = 16
#: Fewer distinct characters than this means a pattern, not randomness ("aaaa...").
MIN_DISTINCT_CHARACTERS = 8
#: Keys copied from tutorials and templates (compared without case, spaces, - or _).
PLACEHOLDER_KEYS = frozenset(
    {
        "dev",
        "devkey",
        "development",
        "developmentkey",
        "changeme",
        "changethis",
        "change",
        "secret",
        "secretkey",
        "mysecret",
        "mysecretkey",
        "yoursecretkey",
        "supersecret",
        "supersecretkey",
        "topsecret",
        "notsecret",
        "notasecret",
        "password",
        "default",
        "test",
        "testing",
        "testkey",
        "key",
        "flask",
        "flasksecret",
        "flaskkey",
        "insecure",
        "example",
        "placeholder",
        "replaceme",
        "todo",
        "xxx",
        "12345",
        "123456",
        "1234567890",
        "secretkeyhere",
        "yoursecretkeyhere",
        "putyoursecretkeyhere",
        "thisisasecret",
        "thisisasecretkey",
        "hardtoguessstring",
        "youwillneverguess",
        "sosecret",
    }
)
#: Words that mark a longer key as a template value ("dev-key-change-me-in-production").
PLACEHOLDER_WORDS = (
    "changeme",
    "changethis",
    "replaceme",
    "insecure",
    "yoursecret",
    "placeholder",
    "notsecret",
    "secretkeyhere",
    "example",
)
#: The key the Flask documentation once printed as an example.
FLASK_DOCS_KEY = b'_5#y2L"F4Q8z\n\xec]/'
#: Shortest key searched for in files: a shorter value matches unrelated text.
MIN_SEARCHABLE_LENGTH = 8

#: Settings judged by checks of their own (config.secret_key_weak, _fallbacks), with
#: stricter rules: left out of config.weak_secret.
OWN_CHECK_SETTINGS = frozenset({"SECRET_KEY", "SECRET_KEY_FALLBACKS"})
#: Deepest nesting of a config value looked into for secret-named keys.
MAX_SETTING_DEPTH = 8

#: Names of settings that pick an environment, in the config or in the process environment.
ENVIRONMENT_SETTINGS = (
    "FLASK_CONFIG",
    "APP_ENV",
    "APP_ENVIRONMENT",
    "ENVIRONMENT",
    "ENV",
    "FLASK_ENV",
    "APP_CONFIG",
    "APP_SETTINGS",
    "CONFIG_NAME",
)
#: Words in such a setting that name a non-production environment. ``staging`` is not one:
#: a staging deploy should look like production and pass.
NON_PRODUCTION_WORDS = frozenset(
    {"dev", "devel", "develop", "development", "test", "testing", "local", "debug", "ci"}
)

_KEY_HINT = (
    "Generate one with: python -c 'import secrets; print(secrets.token_hex())' and "
    "load it from the environment (app.config.from_prefixed_env()) or a secrets file."
)


def _normalised(key: str) -> str:
    return re.sub(r"[\s_\-.]+", "", key.lower())


def key_weakness(key: Any) -> str | None:
    """Why ``key`` is weak (never quoting it), or ``None`` when it is strong enough."""
    if isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
        if raw == FLASK_DOCS_KEY:
            return "it is the example key printed in the Flask documentation"
        if len(raw) < MIN_KEY_BYTES:
            return f"it is {len(raw)} bytes long; a random bytes key needs {MIN_KEY_BYTES}"
        if len(set(raw)) < MIN_DISTINCT_CHARACTERS:
            return f"it has only {len(set(raw))} distinct bytes"
        text = raw.decode("latin-1")
    elif isinstance(key, str):
        text = key
    else:
        return f"it is a {type(key).__name__}, not a string or bytes"
    squashed = _normalised(text)
    if squashed in PLACEHOLDER_KEYS or any(word in squashed for word in PLACEHOLDER_WORDS):
        return "it is a well-known placeholder value"
    if isinstance(key, str):
        if len(text) < MIN_KEY_LENGTH:
            return f"it is {len(text)} characters long; at least {MIN_KEY_LENGTH} are needed"
        if len(set(text)) < MIN_DISTINCT_CHARACTERS:
            return f"it has only {len(set(text))} distinct characters"
    return None


def _has_key(value: Any) -> bool:
    return value is not None and value != "" and value != b""


@check(
    "config.debug",
    level=Level.CRITICAL,
    tags=["security"],
    title="Debug mode is off",
    hint="Set DEBUG = False (and unset FLASK_DEBUG): the debugger lets anyone who reaches "
    "an error page run code on the server.",
)
def check_debug(ctx: CheckContext) -> Iterator[Finding]:
    flag = Provenance.for_run(ctx).debug_flag()  # Flask's own reading of FLASK_DEBUG
    if flag is not None and flag.dotenv_file is not None:
        # Only a dotenv file of the flask command asks for debug. Flask seeded DEBUG from
        # it and reset app.debug from it after the factory: a DEBUG the factory set
        # itself to the same value cannot be told apart (docs/checks.md says so).
        yield ctx.finding(
            f"{flag} comes from {flag.dotenv_file}, which the flask command loads: it runs "
            "the app in debug mode (and so does anything run through it, like flask run), "
            "but gunicorn and uWSGI do not read that file.",
            level=Level.WARNING,
            hint=_dotenv_hint(flag),
            observed=flag.observed,
        )
        return
    # From the CLI, Flask resets app.debug from FLASK_DEBUG after the factory ran, so the
    # DEBUG the factory configured is read from the config as init_app saw it.
    if ctx.app.debug or ctx.config_at_init.get("DEBUG"):
        yield ctx.finding("The app runs in debug mode (DEBUG is true).", observed=True)
    if flag is not None:
        yield ctx.finding(f"{flag} is set in the environment.", observed=flag.value)


def _dotenv_hint(source: EnvValue) -> str:
    return (
        f"Keep {source.dotenv_file} for development and {source.name} out of the production "
        "server's environment. Here the value hides what the app's own config would set: "
        "the server's /_readiness report judges what it really runs with. Never serve "
        "production through the flask command."
    )


@check(
    "config.testing",
    level=Level.ERROR,
    title="TESTING is off",
    hint="Set TESTING = False: it makes Flask and extensions skip protections "
    "(CSRF, login) meant for tests only.",
)
def check_testing(ctx: CheckContext) -> Iterator[Finding]:
    testing = ctx.config.get("TESTING")
    if not testing:
        return
    source = Provenance.for_run(ctx).config_from_dotenv("TESTING", testing)
    if source is not None:
        yield ctx.finding(
            f"TESTING is true, as {source} from {source.dotenv_file} makes it "
            "(from_prefixed_env()); the flask command loads that file, but gunicorn and "
            "uWSGI do not read it.",
            level=Level.WARNING,
            hint=_dotenv_hint(source),
            observed=source.observed,
        )
    else:
        yield ctx.finding("TESTING is true.", observed=True)


@check(
    "config.secret_key_missing",
    level=Level.CRITICAL,
    tags=["security"],
    title="SECRET_KEY is set",
    hint="Set SECRET_KEY from the environment. " + _KEY_HINT,
)
def check_secret_key_missing(ctx: CheckContext) -> Iterator[Finding]:
    if not _has_key(ctx.config.get("SECRET_KEY")):
        yield ctx.finding("SECRET_KEY is not set: sessions and signed values cannot be trusted.")


@check(
    "config.secret_key_weak",
    level=Level.ERROR,
    tags=["security"],
    title="SECRET_KEY is long, random and not a placeholder",
    hint="Replace it with a random key. " + _KEY_HINT,
)
def check_secret_key_weak(ctx: CheckContext) -> Iterator[Finding]:
    key = ctx.config.get("SECRET_KEY")
    if _has_key(key):
        weakness = key_weakness(key)
        if weakness is not None:
            yield ctx.finding(f"SECRET_KEY is weak: {weakness}.")


@check(
    "config.secret_key_fallbacks",
    level=Level.ERROR,
    tags=["security"],
    title="Every SECRET_KEY_FALLBACKS entry is strong",
    hint="Remove weak old keys from SECRET_KEY_FALLBACKS: anything they signed can be forged.",
)
def check_secret_key_fallbacks(ctx: CheckContext) -> Iterator[Finding]:
    fallbacks = ctx.config.get("SECRET_KEY_FALLBACKS") or []
    if not isinstance(fallbacks, (list, tuple)):
        yield ctx.finding(
            f"SECRET_KEY_FALLBACKS is a {type(fallbacks).__name__}, not a list of old keys: "
            "Flask cannot use it.",
            hint="Set SECRET_KEY_FALLBACKS to a list of the previous keys, newest first.",
        )
        return
    for index, key in enumerate(fallbacks):
        weakness = key_weakness(key) if _has_key(key) else "it is empty"
        if weakness is not None:
            yield ctx.finding(
                f"SECRET_KEY_FALLBACKS[{index}] is weak: {weakness}.", observed={"index": index}
            )


@check(
    "config.secret_key_in_source",
    level=Level.ERROR,
    tags=["security"],
    title="SECRET_KEY's value is not written in the app's source",
    hint="Move the key to the environment or to a secrets file git ignores "
    "(instance/config.py, mode 600), then rotate it: anyone with the source can "
    "sign sessions. Keep the old key in SECRET_KEY_FALLBACKS until sessions expire.",
    blocking=True,
)
def check_secret_key_in_source(ctx: CheckContext) -> Iterator[Finding]:
    key = ctx.config.get("SECRET_KEY")
    if not isinstance(key, (str, bytes)) or not _has_key(key):
        ctx.skip("no SECRET_KEY to look for")
    if len(key) < MIN_SEARCHABLE_LENGTH:
        ctx.skip(
            f"SECRET_KEY is shorter than {MIN_SEARCHABLE_LENGTH} characters and would match "
            "unrelated text; config.secret_key_weak reports it"
        )
    root = project_root(ctx.app.root_path)
    # A short or wordy key ("secret key") also occurs in prose: only a string literal or
    # an assignment of it counts (config.secret_key_weak reports such a key anyway).
    literal_only = key_weakness(key) is not None or reads_as_words(key)
    result = find_secret_in_files(
        key,
        root,
        Path(ctx.app.instance_path),
        deadline=ctx.deadline - 0.05,
        literal_only=literal_only,
    )
    # Source ships with the code: remove and rotate (the check's hint), never chmod.
    yield from hit_findings(
        ctx, result.hits, result.how(), written="SECRET_KEY's value", kept="SECRET_KEY"
    )
    if not result.complete and not result.hits:
        ctx.skip(
            f"scanned {result.scanned} files under {result.root} before the time limit "
            f"without finishing (method: {result.method})"
        )


def _environment_words(value: str) -> set[str]:
    # "config.DevelopmentConfig" -> {"config", "development"}
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", value)
    return set(re.split(r"[^a-z0-9]+", spaced.lower())) - {""}


@check(
    "config.environment",
    level=Level.WARNING,
    title="No setting names a non-production environment",
    hint="Load the production configuration (FLASK_CONFIG=production or equivalent).",
)
def check_environment(ctx: CheckContext) -> Iterator[Finding]:
    provenance = Provenance.for_run(ctx)
    for source, values in (("config", ctx.config), ("environment", os.environ)):
        for name in ENVIRONMENT_SETTINGS:
            value = values.get(name)
            if isinstance(value, str) and _environment_words(value) & NON_PRODUCTION_WORDS:
                loaded = (
                    provenance.config_from_dotenv(name, value)
                    if source == "config"
                    else provenance.variable(name)
                )
                if loaded is None or loaded.dotenv_file is None:
                    yield ctx.finding(
                        f"{name}={value!r} in the {source} names a non-production environment.",
                        observed={name: value},
                    )
                    continue
                origin = "" if loaded.name == name else f", as {loaded} makes it,"
                yield ctx.finding(
                    f"{name}={value!r} in the {source}{origin} names a non-production "
                    f"environment; it comes from {loaded.dotenv_file}, which the flask "
                    "command loads, but gunicorn and uWSGI do not read that file.",
                    observed={name: value, "file": loaded.dotenv_file},
                )


@check(
    "config.max_content_length",
    level=Level.WARNING,
    tags=["security"],
    title="MAX_CONTENT_LENGTH bounds request bodies",
    hint="Set MAX_CONTENT_LENGTH (for example 16 * 1024 * 1024) so one request cannot fill "
    "memory or disk; match it with nginx's client_max_body_size.",
)
def check_max_content_length(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.config.get("MAX_CONTENT_LENGTH") is None:
        yield ctx.finding("MAX_CONTENT_LENGTH is not set: request bodies are unbounded.")


@check(
    "config.preferred_url_scheme",
    level=Level.WARNING,
    title="PREFERRED_URL_SCHEME is https",
    hint="Set PREFERRED_URL_SCHEME = 'https' so url_for(..., _external=True) outside a "
    "request builds https links.",
    blocking=True,
)
def check_preferred_url_scheme(ctx: CheckContext) -> Iterator[Finding]:
    scheme = ctx.config.get("PREFERRED_URL_SCHEME")
    if scheme == "https":
        return
    # Inside a request url_for takes the request's scheme: the setting only matters for
    # external URLs built in CLI commands, background jobs or at import time.
    use = code_use(project_root(ctx.app.root_path), wait=ctx.time_left() - 0.05)
    outside = [p for p in use.external_urls if p.outside_request and not p.literal_scheme]
    if outside:
        more = f" and {len(outside) - 1} more" if len(outside) > 1 else ""
        yield ctx.finding(
            f"PREFERRED_URL_SCHEME is {scheme!r}, not 'https', and the app builds external "
            f"URLs outside a request ({outside[0]}{more}), where this setting picks the "
            "scheme: those links say http.",
            observed={"PREFERRED_URL_SCHEME": scheme, "outside_request": str(outside[0])},
        )
        return
    yield ctx.finding(
        f"PREFERRED_URL_SCHEME is {scheme!r}, not 'https'. No url_for(_external=True) outside "
        f"request handlers was found in {use.describe_scope()}; inside a request the "
        "scheme comes from the request, so only links built elsewhere (a template rendered "
        "by a job, a library) would say http.",
        level=Level.INFO,
        observed=scheme,
    )


@check(
    "config.trusted_hosts",
    level=Level.INFO,
    tags=["security"],
    title="TRUSTED_HOSTS or SERVER_NAME is set",
    hint="Set TRUSTED_HOSTS (Flask 3.1+) to the hosts you serve, or SERVER_NAME, so a forged "
    "Host header cannot poison external URLs (password-reset links).",
    blocking=True,
)
def check_trusted_hosts(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.config.get("TRUSTED_HOSTS") or ctx.config.get("SERVER_NAME"):
        return
    # Without SERVER_NAME, url_for(_external=True) works only in a request and takes the
    # host from the Host header: every such URL the app sends out carries the client's.
    use = code_use(project_root(ctx.app.root_path), wait=ctx.time_left() - 0.05)
    from_host = [p for p in use.external_urls if p.maybe_in_request] + list(use.request_hosts)
    if from_host:
        # A link that leaves by e-mail (a password reset) is the one an attacker wants.
        first = sorted(from_host, key=lambda p: not p.sends_mail)[0]
        what = "in a function that sends e-mail, " if first.sends_mail else ""
        more = f" and {len(from_host) - 1} more" if len(from_host) > 1 else ""
        yield ctx.finding(
            "Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted, and the "
            f"app builds absolute URLs from it ({what}{first}{more}), so a forged Host "
            "header can point those links, such as a password reset, at another site.",
            level=Level.WARNING,
            observed={"absolute_url": str(first)},
        )
        return
    yield ctx.finding(
        "Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted (no absolute "
        f"URL built from the request's host was found in {use.describe_scope()}).",
    )


def _weak_credentials(where: str, value: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    """``(where, why)`` for each weak credential held under a credential-named key at
    ``where``: the value itself, or each string in a list of them."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if isinstance(value, str):
        why = secret_weakness(value) if value else None
        if why is not None:
            yield where, why
    elif (
        isinstance(value, (list, tuple))
        and depth < MAX_SETTING_DEPTH
        and _PLURAL_CREDENTIALS.search(where)
    ):
        # A list under a plural name (API_KEYS) holds credentials; a tuple under a
        # singular one is something else: Flask-Security's SECURITY_MSG_INVALID_PASSWORD
        # is a (message, category) pair, not two passwords.
        for index, item in enumerate(value):
            yield from _weak_credentials(f"{where}[{index}]", item, depth + 1)


#: Names under which a list holds credentials (``API_KEYS``, ``ADMIN_PASSWORDS``).
_PLURAL_CREDENTIALS = re.compile(r"(KEYS|SECRETS|PASSWORDS|TOKENS|CREDENTIALS)(\[\d+\])*$", re.I)


def _weak_in_value(where: str, value: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Weak credentials anywhere inside a setting: under credential-named keys of its dicts,
    and as the password or a secret-named query parameter of a URL in its strings."""
    if depth > MAX_SETTING_DEPTH:
        return
    if isinstance(value, str):
        for part, written in url_credentials(value):
            if part == "user":
                continue
            credential = unquote(written) if part == "password" else unquote_plus(written)
            why = secret_weakness(credential) if credential else None
            if why is not None:
                yield f"the {'password' if part == 'password' else part} in {where}", why
    elif isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}[{key!r}]"
            if isinstance(key, str) and names_a_credential(key):
                yield from _weak_credentials(inner, item, depth + 1)
            else:
                yield from _weak_in_value(inner, item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            yield from _weak_in_value(f"{where}[{index}]", item, depth + 1)


@check(
    "config.weak_secret",
    level=Level.ERROR,
    tags=["security"],
    title="No secret in the config is too short or too common",
    hint="Replace it with a long random value (python -c 'import secrets; "
    "print(secrets.token_urlsafe(32))'), set where the service that checks it expects it, "
    "and load it from the environment or a secrets file. A value that short or that common "
    "is guessed, and it is masked in reports only where it stands alone.",
)
def check_weak_secret(ctx: CheckContext) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for name, value in ctx.config.items():
        if not isinstance(name, str) or name in OWN_CHECK_SETTINGS:
            continue
        found = (
            _weak_credentials(name, value)
            if names_a_credential(name)
            else _weak_in_value(name, value)
        )
        for where, why in found:
            if (where, why) in seen:
                continue
            seen.add((where, why))
            yield ctx.finding(
                f"{where} holds a secret too weak to keep: {why}.", observed={"setting": where}
            )
