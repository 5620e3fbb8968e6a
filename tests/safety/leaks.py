"""What the secret-leak tests share: the secrets' generator, a hostile extension that tries
to print every secret it can reach, every output surface of one app, and the forms a
leaked secret would take in them.

The generator
-------------
A secret is 8 to 32 characters, half the time from the first two pools only, else from
all three mixed in one string:

- ``string.printable``: ASCII letters, digits, punctuation and whitespace (tab, newline,
  vertical tab, form feed included);
- the characters URLs, JSON, HTML and XML escape (``:/@?#%&=+;,[]'"\\<>`` and space),
  drawn more often than their share of ``printable`` would give;
- any Unicode character that UTF-8 can encode, except lone surrogates (no config file,
  environment or header can hold one) and control characters outside ``printable``.

Eight characters at least, because values shorter than ``MIN_TEXT_SECRET_LENGTH`` (and
common words) are deliberately masked only where they stand as a whole value, not inside
free text (docs/configuration.md); :func:`leaks` leaves such weak secrets out (the
reference set's ``changeme``), and ``config.weak_secret`` reports them instead. A drawn
secret can still occur in the reports' fixed text by chance (eight spaces are JSON
indentation, ``"secret_key"`` is part of a check id): the test then rejects the example
with ``hypothesis.assume`` against :func:`vocabulary`, the text the same app prints when
it holds placeholder secrets.
"""

from __future__ import annotations

import html
import json
import logging
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit
from xml.sax.saxutils import escape as xml_escape

import sentry_sdk
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from hypothesis import strategies as st

from flask_prodready import CheckContext, Finding, ProdReady
from flask_prodready.cli import FORMATS as CLI_FORMATS
from flask_prodready.engine.findings import Level
from flask_prodready.engine.redaction import secret_weakness
from flask_prodready.engine.registry import CLI
from flask_prodready.engine.state import get_state
from flask_prodready.render import render
from flask_prodready.render.openmetrics import escape_label_value
from flask_prodready.render.sarif import SourceLocations

from ..support import TOKEN

#: Characters that URLs, JSON, HTML and XML escape, drawn often.
SPECIAL = ":/@?#%&=+;,[]'\"\\<> "
ASCII_CHARACTERS = st.sampled_from(string.printable + SPECIAL)
ANY_CHARACTERS = st.one_of(
    ASCII_CHARACTERS, st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
)
#: Half the secrets stay in ASCII, where the URL-special characters are.
secret_values = st.one_of(
    st.text(ASCII_CHARACTERS, min_size=8, max_size=32),
    st.text(ANY_CHARACTERS, min_size=8, max_size=32),
)
HTTP_FORMATS = ("json", "html", "openmetrics")


@dataclass(frozen=True)
class Secrets:
    """One value for every place an app holds a secret."""

    secret_key: str
    fallback_old: str
    fallback_older: str
    mail_password: str
    api_token: str
    db_password: str
    sentry_key: str

    def values(self) -> tuple[str, ...]:
        return astuple(self)


secret_sets = st.builds(Secrets, *(secret_values for _ in range(len(Secrets.__dataclass_fields__))))

#: Placeholder secrets whose reports make up the vocabulary: a strong key, then keys that
#: are weak in each way config.secret_key_weak words differently.
REFERENCE_SECRETS = [
    Secrets(
        secret_key=f"reference-{label}-key",
        fallback_old="reference-fallback-old",
        fallback_older="reference-fallback-older",
        mail_password="reference-mail-password",
        api_token="reference-api-token",
        db_password="reference-db-password",
        sentry_key="reference-sentry-key",
    )
    for label in ("s" * 40, "short", "z")
] + [
    Secrets(*(["Q" * 40] + [f"reference-{n}-value" for n in range(6)])),
    Secrets(*(["changeme"] + [f"reference-{n}-value" for n in range(6)])),
]


def forms(secret: str) -> set[str]:
    """The ways a leaked ``secret`` could be written in an output: as is, URL-quoted,
    JSON-, repr-, HTML-, XML- and OpenMetrics-escaped."""
    return {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        xml_escape(secret, {'"': "&quot;"}),
        escape_label_value(secret),
    }


def leaks(secrets: Secrets, outputs: dict[str, str]) -> list[tuple[str, str]]:
    """(surface, secret) for each secret safe to mask in prose found, in any of its forms,
    in an output (a weak one is masked only where it stands alone, by design)."""
    return [
        (surface, secret)
        for secret in (*secrets.values(), TOKEN)
        if secret_weakness(secret) is None
        for surface, text in outputs.items()
        if any(form in text for form in forms(secret))
    ]


def sentry_dsn(secrets: Secrets, port: int) -> str:
    """A DSN whose key is the drawn secret (URL-quoted, as a DSN must be)."""
    return f"http://{quote(secrets.sentry_key, safe='')}@127.0.0.1:{port}/42"


def database_url(secrets: Secrets, port: int) -> str:
    """A PostgreSQL URL on a closed loopback port, its password quoted as a URL needs."""
    return f"postgresql+psycopg://app:{quote(secrets.db_password, safe='')}@127.0.0.1:{port}/app"


def app_config(secrets: Secrets, port: int) -> dict[str, Any]:
    """The config of an app holding ``secrets`` everywhere a secret can be held.

    The Sentry DSN is not here: it goes to ``sentry_sdk.init`` only, as apps do.
    """
    return {
        "SECRET_KEY": secrets.secret_key,
        "SECRET_KEY_FALLBACKS": [secrets.fallback_old, secrets.fallback_older],
        "MAIL_PASSWORD": secrets.mail_password,
        "API_TOKEN": secrets.api_token,
        "SQLALCHEMY_DATABASE_URI": database_url(secrets, port),
        "PRODREADY_SILENCED": {
            "server.root": "the test suite may run as root",
            "leaky.silenced": f"accepted, the API token is {secrets.api_token}",
        },
    }


@contextmanager
def sentry_client(dsn: str) -> Iterator[None]:
    """A real Sentry client with ``dsn`` (a closed port: nothing can be sent), closed and
    replaced by a non-recording one afterwards."""
    sentry_sdk.init(dsn=dsn, default_integrations=False, release="test", environment="test")
    try:
        yield
    finally:
        sentry_sdk.get_client().close(timeout=1)
        sentry_sdk.get_global_scope().set_client(None)


def reachable_secrets(ctx: CheckContext) -> list[str]:
    """Every secret a hostile check can find: config values, the URL's password, the DSN."""
    config = ctx.config
    url = config["SQLALCHEMY_DATABASE_URI"]
    dsn = sentry_sdk.get_client().dsn or ""
    found = [
        config["SECRET_KEY"],
        *config["SECRET_KEY_FALLBACKS"],
        config["MAIL_PASSWORD"],
        config["API_TOKEN"],
        config["PRODREADY_TOKEN"],
        url,
        unquote(urlsplit(url).password or ""),
        dsn,
        unquote(urlsplit(dsn).username or ""),
    ]
    return [value for value in found if value]


def leaky_extension() -> ProdReady:
    """ProdReady with checks that try to print every secret they reach: in a finding's
    message, hint and observed value, in a silenced finding, in a skip reason, and in the
    message of an exception (which also goes to the log with its traceback)."""
    ext = ProdReady()

    def spelled_out(values: list[str]) -> list[str]:
        return [
            form
            for value in values
            for form in (value, repr(value), json.dumps(value), quote(value), quote_plus(value))
        ]

    def echo(ctx: CheckContext) -> Iterator[Finding]:
        values = reachable_secrets(ctx)
        yield ctx.finding(
            "found " + " ".join(spelled_out(values)),
            hint=f"values: {values!r}",
            observed={
                "values": values,
                "json": json.dumps(values),
                "by_value": {v: v for v in values},
            },
        )

    for check_id, level in (("leaky.echo", "warning"), ("leaky.silenced", "error")):
        ext.check(check_id, title="Prints every secret it reaches", level=level)(echo)

    @ext.check("leaky.crash", title="Raises with the secrets in its message")
    def crash(ctx: CheckContext) -> None:
        raise ConnectionError(f"login refused: {reachable_secrets(ctx)!r}")

    @ext.check("leaky.skip", title="Skips with the secrets in its reason")
    def skip(ctx: CheckContext) -> None:
        ctx.skip("cannot judge with " + " ".join(reachable_secrets(ctx)))

    return ext


def make_leaky_app(
    make_app: Callable[..., Flask], secrets: Secrets, port: int
) -> tuple[Flask, SQLAlchemy]:
    """An app holding ``secrets``, with Flask-SQLAlchemy on a database that is down."""
    app = make_app(leaky_extension(), **app_config(secrets, port))
    db = SQLAlchemy()
    db.init_app(app)
    return app, db


def outputs(app: Flask, records: Callable[[], list[logging.LogRecord]]) -> dict[str, str]:
    """Every output of ``app``: the CLI's four formats of a CLI-mode report, the HTTP
    report in each format, the HTTP errors that echo their input, /healthz, and the
    flask_prodready log records (``records()``) written meanwhile."""
    state = get_state(app)
    found: dict[str, str] = {}
    with app.app_context():
        report = state.build_report(app, mode=CLI)
    for fmt in CLI_FORMATS:
        found[f"cli {fmt}"] = render(
            report,
            fmt,
            threshold=Level.ERROR,
            registry=state.registry,
            locations=SourceLocations.for_app(app),
        )
    client = app.test_client()

    def get(path: str, expected: set[int], **kwargs: Any) -> str:
        response = client.get(path, **kwargs)
        assert response.status_code in expected, (path, response.status_code)
        return response.text

    auth = {"Authorization": f"Bearer {TOKEN}"}
    for fmt in HTTP_FORMATS:
        found[f"http {fmt}"] = get(f"/_readiness?format={fmt}", {200, 503}, headers=auth)
    secret_key = app.config["SECRET_KEY"]
    for name in ("tag", "exclude", "format"):  # errors that repeat what they were sent
        found[f"http 400 {name}"] = get(
            "/_readiness", {400}, query_string={name: secret_key}, headers=auth
        )
    found["http 401"] = get("/_readiness", {401})
    found["healthz"] = get("/healthz", {200})
    found["log"] = "\n".join(
        record.getMessage() + "\n" + (logging.Formatter().formatException(record.exc_info))
        if record.exc_info
        else record.getMessage()
        for record in records()
    )
    return found
