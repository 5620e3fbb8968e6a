"""No secret value appears in any output (SPEC §8), whatever the secret is.

Each example of the property test builds one app holding drawn secrets in ``SECRET_KEY``,
``SECRET_KEY_FALLBACKS``, a ``*_PASSWORD`` and a ``*_TOKEN`` key, the password of a
database URL whose server is down, and a Sentry DSN given to ``sentry_sdk.init`` only,
with checks that try to print all of them (see ``leaks.py`` for the generator and the
hostile checks). It then reads every output: the CLI's four formats, the HTTP report in
its three formats and the errors that echo their input, ``/healthz``, and the
``flask_prodready`` log. A real ``flask readiness`` run does the same from a subprocess.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings

from flask_prodready import CheckContext, ProdReady
from flask_prodready.engine.redaction import MASK, Redactor, secret_weakness
from flask_prodready.engine.registry import CLI
from flask_prodready.engine.runner import MAX_EXCEPTION_MESSAGE
from flask_prodready.engine.state import get_state

from ..support import GOOD_CONFIG, result_of
from ..test_cli import run_flask
from .leaks import (
    REFERENCE_SECRETS,
    Secrets,
    forms,
    leaks,
    make_leaky_app,
    outputs,
    secret_sets,
    sentry_client,
    sentry_dsn,
)

MakeApp = Callable[..., Flask]


def prodready_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records of the ``flask_prodready`` logger captured so far."""
    return [r for r in caplog.records if r.name.startswith("flask_prodready")]


def app_outputs(
    make_app: MakeApp, secrets: Secrets, port: int, caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    """Every output of a new app holding ``secrets``, its log included (``caplog`` is
    cleared first, so only this app's records are read)."""
    caplog.clear()
    app, _ = make_leaky_app(make_app, secrets, port)
    with sentry_client(sentry_dsn(secrets, port)):
        return outputs(app, lambda: prodready_records(caplog))


def assert_hostile_checks_ran(found: dict[str, str]) -> None:
    """The hostile checks ran and tried: their findings, crash, skip and log are there."""
    body = json.loads(found["http json"])
    ids = {f["id"] for f in body["findings"]}
    assert {"leaky.echo", "leaky.silenced", "prodready.check_crashed"} <= ids
    assert "database.unreachable" in ids  # the driver's own error, quoted in the finding
    assert result_of(body, "leaky.skip") == "skipped"
    assert "leaky.crash crashed" in found["log"]
    assert MASK in found["cli text"]


@pytest.fixture
def vocabulary(make_app: MakeApp, closed_port: int, caplog: pytest.LogCaptureFixture) -> str:
    """Everything the same app prints when it holds placeholder secrets: the text a drawn
    secret may match by chance (indentation, ids, hints), not because it leaked."""
    caplog.set_level(logging.INFO, logger="flask_prodready")
    found: list[str] = []
    for secrets in REFERENCE_SECRETS:
        texts = app_outputs(make_app, secrets, closed_port, caplog)
        assert leaks(secrets, texts) == []
        found.extend(texts.values())
    return "\n".join(found)


def test_no_secret_in_any_output(
    make_app: MakeApp, closed_port: int, caplog: pytest.LogCaptureFixture, vocabulary: str
) -> None:
    """Whatever the secrets (printable, URL-special, Unicode), no CLI format, HTTP format,
    HTTP error or log record shows any of them, in any encoding."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(secrets=secret_sets)
    def example(secrets: Secrets) -> None:
        for secret in secrets.values():
            assume(secret_weakness(secret) is None)
            assume(not any(form in vocabulary for form in forms(secret)))
        found = app_outputs(make_app, secrets, closed_port, caplog)
        assert_hostile_checks_ran(found)
        assert leaks(secrets, found) == []

    example()


#: Secrets written to be awkward for every format at once.
NASTY = Secrets(
    secret_key="k\"e'y\\<&>%2F/@:?#é€😀 \tend",
    fallback_old="old+fall back/1?x=y&z",
    fallback_older="ölder-fällback-ключ-鍵",
    mail_password="p@ss:w/rd#?%zz",
    api_token="tok\u2028en\"}{][' OR 1=1",
    db_password="db pa$$/w@rd:é%20x",
    sentry_key="sentry+key/=ü&x",
)

LEAKY_APP = """
import json, os, sys

sys.path.insert(0, {root!r})

from flask import Flask

from tests.safety.leaks import Secrets, make_leaky_app, sentry_client, sentry_dsn

secrets = Secrets(**json.loads(os.environ["LEAKY_APP_VALUES"]))
port = int(os.environ["LEAKY_APP_PORT"])
_sentry = sentry_client(sentry_dsn(secrets, port))
_sentry.__enter__()


def make_app(extension, **config):
    app = Flask(__name__)
    app.config.update({good!r})
    app.config.update(config)
    extension.init_app(app)
    return app


app, db = make_leaky_app(make_app, secrets, port)
"""


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif"])
def test_flask_readiness_prints_no_secret(tmp_path: Path, closed_port: int, fmt: str) -> None:
    """A real `flask readiness` run of the hostile app shows no secret on stdout or stderr."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "leakyapp.py").write_text(
        textwrap.dedent(LEAKY_APP).format(root=str(root), good=GOOD_CONFIG)
    )
    env = {
        "LEAKY_APP_VALUES": json.dumps(NASTY.__dict__),
        "LEAKY_APP_PORT": str(closed_port),
    }
    done = run_flask(tmp_path, "leakyapp", "--format", fmt, env=env)
    assert done.returncode == 1, done.stderr
    assert "leaky.echo" in done.stdout
    assert "Traceback" not in done.stdout
    assert leaks(NASTY, {"stdout": done.stdout, "stderr": done.stderr}) == []


def test_psycopg_error_for_a_closed_port(closed_port: int) -> None:
    """psycopg's error for a refused connection names the host and port, not the password:
    the reports mask the password whether a driver repeats it or not."""
    password = "closed-port-password-0123"
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(
            f"postgresql://app:{password}@127.0.0.1:{closed_port}/app", connect_timeout=2
        )
    assert f"port {closed_port} failed: Connection refused" in str(caught.value)
    assert password not in str(caught.value)


def test_driver_error_repeating_the_password_is_masked(
    make_app: MakeApp, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver error that does repeat the password (psycopg on a bad escape in the URL)
    is masked in the crash finding and in the logged traceback."""
    password = "pa55-%zz-word"  # "%zz" is no URL escape: psycopg quotes the password back
    url = f"postgresql://app:{password}@127.0.0.1:{closed_port}/app"
    ext = ProdReady()

    @ext.check("leaky.driver", title="Connects with the driver and lets its error out")
    def driver(ctx: CheckContext) -> None:
        psycopg.connect(ctx.config["APP_DATABASE_URL"], connect_timeout=2)

    with pytest.raises(psycopg.ProgrammingError) as caught:
        psycopg.connect(url, connect_timeout=2)
    assert password in str(caught.value)  # the driver does repeat it

    app = make_app(ext, APP_DATABASE_URL=url)
    with caplog.at_level(logging.ERROR, logger="flask_prodready"):
        report = get_state(app).build_report(app, mode=CLI, tags=["leaky"])
    [crash] = report.findings
    assert crash.message.startswith("check leaky.driver raised ProgrammingError: ")
    assert MASK in crash.message
    assert password not in crash.message
    assert password not in caplog.text


def test_long_crash_message_is_masked_before_it_is_cut(make_app: MakeApp) -> None:
    """A secret that straddles the cut of a long exception message leaves no piece behind."""
    key = "straddling-secret-key-" + "Zq7" * 10
    ext = ProdReady()

    @ext.check("leaky.long", title="Raises a long message")
    def long(ctx: CheckContext) -> None:
        raise RuntimeError("x" * (MAX_EXCEPTION_MESSAGE - 10) + ctx.config["SECRET_KEY"])

    app = make_app(ext, SECRET_KEY=key)
    report = get_state(app).build_report(app, mode=CLI, tags=["leaky"])
    [crash] = report.findings
    assert key[:10] not in crash.message
    assert crash.message.endswith("x" + MASK)


def test_mask_cannot_form_a_secret_again() -> None:
    """A secret ending in '*' cannot re-form from the masks of its own repeated prefix."""
    secret = "abcde***"
    text = "abcde" * 6 + "***"
    assert secret not in Redactor([secret]).text(text)


def test_dsn_given_only_to_sentry_init_is_masked(make_app: MakeApp, closed_port: int) -> None:
    """The DSN of the active Sentry client is a secret even when no config key or
    environment variable holds it (sentry_sdk.init(dsn="...") in the app's code)."""
    key = "dsn-key-only-in-init-0123"
    ext = ProdReady()

    @ext.check("leaky.dsn", title="Prints the DSN")
    def dsn(ctx: CheckContext) -> None:
        import sentry_sdk

        raise RuntimeError(f"events go to {sentry_sdk.get_client().dsn}")

    app = make_app(ext)
    with sentry_client(f"http://{key}@127.0.0.1:{closed_port}/42"):
        report = get_state(app).build_report(app, mode=CLI, tags=["leaky"])
    [crash] = report.findings
    assert crash.message == f"check leaky.dsn raised RuntimeError: events go to {MASK}"


def test_secret_named_keys_inside_config_values_are_masked(make_app: MakeApp) -> None:
    """A password under a secret-named key inside a config value (the driver's
    connect_args) is a secret too."""
    password = "connect-args-password-0123"
    options = {"connect_args": {"password": password, "sslmode": "require"}}
    ext = ProdReady()

    @ext.check("leaky.options", title="Prints the engine options")
    def engine_options(ctx: CheckContext) -> None:
        raise RuntimeError(f"options: {ctx.config['SQLALCHEMY_ENGINE_OPTIONS']}")

    app = make_app(ext, SQLALCHEMY_ENGINE_OPTIONS=options)
    report = get_state(app).build_report(app, mode=CLI, tags=["leaky"])
    [crash] = report.findings
    assert password not in crash.message
    assert "'sslmode': 'require'" in crash.message


def test_url_password_with_a_slash_is_masked(make_app: MakeApp) -> None:
    """A base64 password written into a URL unquoted (SQLAlchemy accepts '/' and '+' there)
    is masked in text that repeats the URL."""
    password = "b64/pass+word=="
    url = f"postgresql://app:{password}@db.internal/app"
    ext = ProdReady()

    @ext.check("leaky.url", title="Prints the URL")
    def print_url(ctx: CheckContext) -> None:
        raise RuntimeError(f"cannot reach {ctx.config['SQLALCHEMY_DATABASE_URI']}")

    app = make_app(ext, SQLALCHEMY_DATABASE_URI=url)
    report = get_state(app).build_report(app, mode=CLI, tags=["leaky"])
    [crash] = report.findings
    assert (
        crash.message
        == f"check leaky.url raised RuntimeError: cannot reach postgresql://app:{MASK}@db.internal/app"
    )
