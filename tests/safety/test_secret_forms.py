"""Secrets in the forms the second round of attacks used (SPEC §8): database passwords
in every URL form, against a real PostgreSQL that accepts them; secret-holding
environment names; a common word as a secret; and every error path of the command line,
driven by a property test with the secret anywhere in the message.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flask_prodready import CheckContext, Finding, ProdReady
from flask_prodready import cli as cli_module
from flask_prodready.engine.redaction import MASK, secret_weakness
from flask_prodready.engine.registry import CLI
from flask_prodready.engine.state import get_state

from ..postgres import HOST, PostgresServer
from ..stub_server import Canned, StubServer
from ..support import GOOD_CONFIG, STRONG_KEY, TOKEN
from ..test_cli import run_flask
from .leaks import ASCII_CHARACTERS, forms, outputs, secret_values

MakeApp = Callable[..., Flask]
ROOT = Path(__file__).resolve().parents[2]

#: Each URL form of the attacks, with a password it is tried with: the URL in the config
#: as an app would write it.
URL_FORMS: dict[str, tuple[str, Callable[[str, str, int, str], str]]] = {
    "spaces-in-userinfo": (
        "correct horse battery staple",
        lambda role, pw, port, db: f"postgresql+psycopg://{role}:{pw}@{HOST}:{port}/{db}",
    ),
    "query-password": (
        "query pass+word/&=42",
        lambda role, pw, port, db: (
            f"postgresql+psycopg://{role}@{HOST}:{port}/{db}?password={quote_plus(pw)}"
        ),
    ),
    "percent-encoded": (
        "100% s:e@c/r+et ok",
        lambda role, pw, port, db: (
            f"postgresql+psycopg://{role}:{quote(pw, safe='')}@{HOST}:{port}/{db}"
        ),
    ),
    "non-ascii": (
        "pässwört-ключ-鍵-42",
        lambda role, pw, port, db: f"postgresql+psycopg://{role}:{pw}@{HOST}:{port}/{db}",
    ),
}


def password_forms(password: str) -> set[str]:
    """How a leaked password could be written: :func:`leaks.forms`, plus SQLAlchemy's
    renderings and ``str()`` of its bytes."""
    return {
        *forms(password),
        quote(password, safe=" +"),
        password.replace(":", "%3A").replace("@", "%40").replace("/", "%2F"),
        str(password.encode())[2:-1],
    }


def engine_url_extension(db: SQLAlchemy) -> ProdReady:
    """ProdReady with a check that connects with the app's engine and prints its URL (and
    the password in it, and str() of its bytes) in its message and observed value, and one
    that raises with the URL, so that it is in the logged traceback too."""
    ext = ProdReady()

    @ext.check("leaky.engine_url", title="Prints the engine URL")
    def engine_url(ctx: CheckContext) -> Iterator[Finding]:
        from sqlalchemy import text

        engine = db.engine
        with engine.connect() as connection:
            user = connection.execute(text("SELECT current_user")).scalar()
        url = engine.url
        password = str(url.password or url.query.get("password"))
        rendered = url.render_as_string(hide_password=False)
        configured = ctx.config["SQLALCHEMY_DATABASE_URI"]
        yield ctx.finding(
            f"connected as {user} with {rendered} (configured as {configured}); the password "
            f"is {password!r}, its bytes {password.encode()!s}",
            observed={
                "rendered": rendered,
                "configured": configured,
                "password": password,
                "bytes": str(password.encode()),
            },
        )

    @ext.check("leaky.engine_crash", title="Raises with the engine URL")
    def engine_crash(ctx: CheckContext) -> None:
        raise ConnectionError(
            f"gave up on {db.engine.url.render_as_string(hide_password=False)} "
            f"({ctx.config['SQLALCHEMY_DATABASE_URI']})"
        )

    return ext


@pytest.fixture
def url_of_form(
    postgres: PostgresServer, pg_database: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], tuple[str, str, str]]]:
    """Makes, for a URL form, a login role whose password is that form's, and returns
    (role, password, URL); the roles are dropped afterwards."""
    made: list[str] = []

    def make(form: str) -> tuple[str, str, str]:
        password, build = URL_FORMS[form]
        role = f"leaky_{len(made)}_{os.getpid()}"
        literal = password.replace("'", "''")
        postgres.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'")
        made.append(role)
        return role, password, build(role, password, postgres.port, pg_database)

    yield make
    for role in made:
        postgres.admin(f"DROP OWNED BY {role}", pg_database)
        postgres.admin(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_engine_url_password_is_in_no_output(
    make_app: MakeApp,
    url_of_form: Callable[[str], tuple[str, str, str]],
    caplog: pytest.LogCaptureFixture,
    form: str,
) -> None:
    """A custom check that logs in to PostgreSQL with the app's engine and prints its URL,
    for each URL form of the password: the password is in none of JSON, HTML, OpenMetrics,
    text, JUnit, SARIF, the 400 bodies or the log."""
    role, password, url = url_of_form(form)
    db = SQLAlchemy()
    app = make_app(engine_url_extension(db), SQLALCHEMY_DATABASE_URI=url)
    db.init_app(app)
    caplog.set_level(logging.INFO, logger="flask_prodready")
    try:
        found = outputs(
            app, lambda: [r for r in caplog.records if r.name.startswith("flask_prodready")]
        )
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()  # the pool's connections, closed before the test ends
    body = json.loads(found["http json"])
    [echo] = [f for f in body["findings"] if f["id"] == "leaky.engine_url"]
    assert echo["message"].startswith(f"connected as {role} with postgresql+psycopg://")
    assert echo["observed"]["password"] == MASK
    assert "leaky.engine_crash crashed" in found["log"]
    assert [
        (surface, shown)
        for shown in password_forms(password)
        for surface, text in found.items()
        if shown in text
    ] == []


ENGINE_URL_APP = """
import os, sys

sys.path.insert(0, {root!r})

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from tests.safety.test_secret_forms import engine_url_extension
from tests.support import GOOD_CONFIG

db = SQLAlchemy()
app = Flask(__name__)
app.config.update(GOOD_CONFIG)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["LEAKY_DATABASE_URL"]
db.init_app(app)
engine_url_extension(db).init_app(app)
"""


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_flask_readiness_prints_no_engine_url_password(
    tmp_path: Path, url_of_form: Callable[[str], tuple[str, str, str]], form: str
) -> None:
    """The same check under a real `flask readiness`: the password is on neither stdout
    nor stderr (where the crash's log line goes)."""
    role, password, url = url_of_form(form)
    (tmp_path / "engineapp.py").write_text(textwrap.dedent(ENGINE_URL_APP).format(root=str(ROOT)))
    done = run_flask(tmp_path, "engineapp", "--tag", "leaky", env={"LEAKY_DATABASE_URL": url})
    assert done.returncode == 1, done.stderr
    assert f"connected as {role}" in done.stdout
    assert "leaky.engine_crash crashed" in done.stderr
    shown = done.stdout + done.stderr
    assert [form for form in password_forms(password) if form in shown] == []


def test_secret_environment_variables_are_masked(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MYSQL_PWD and DB_PASS in the environment, echoed by a custom check in its message,
    observed value and exception, are masked in every output."""
    values = {"MYSQL_PWD": "mysql-pwd-Zq7+x9/w", "DB_PASS": "db pass Ü-41;ok"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    ext = ProdReady()

    @ext.check("leaky.environment", title="Prints the database variables")
    def echo(ctx: CheckContext) -> Iterator[Finding]:
        shown = {name: os.environ[name] for name in values}
        yield ctx.finding(f"environment: {shown}", observed=shown)
        raise RuntimeError(f"MYSQL_PWD={shown['MYSQL_PWD']} DB_PASS={shown['DB_PASS']}")

    @ext.check("leaky.environment_echo", title="Echoes the database variables")
    def echo_only(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding(" ".join(f"{n}={os.environ[n]}" for n in values))

    app = make_app(ext)
    caplog.set_level(logging.INFO, logger="flask_prodready")
    found = outputs(app, lambda: list(caplog.records))
    assert "MYSQL_PWD=*** DB_PASS=***" in found["http json"]
    assert [
        (surface, value)
        for value in values.values()
        for shown in forms(value)
        for surface, text in found.items()
        if shown in text
    ] == []


def test_common_admin_password_leaves_the_report_as_written(make_app: MakeApp) -> None:
    """ADMIN_PASSWORD = "password": every message and hint of the report reads as it does
    with a strong password (no *** inside words), and config.weak_secret names the
    setting."""

    def findings(password: str) -> dict[tuple[str, str], tuple[str, str]]:
        app = make_app(ADMIN_PASSWORD=password, DEBUG=True, TRUSTED_HOSTS=None)
        report = get_state(app).build_report(app, mode=CLI)
        return {(f.id, f.message): (f.message, f.hint) for f in report.findings}

    weak = findings("password")
    strong = findings(STRONG_KEY)
    [weak_secret] = [key for key in weak if key[0] == "config.weak_secret"]
    assert weak_secret[1] == (
        "ADMIN_PASSWORD holds a secret too weak to keep: it is a common word or password."
    )
    del weak[weak_secret]
    assert weak == strong
    assert any(
        check_id == "config.trusted_hosts"
        and message.startswith("Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted")
        for check_id, message in weak
    )
    assert not any(MASK in message + hint for message, hint in weak.values())


def test_secret_equal_to_a_body_key_leaves_the_body_readable(
    make_app: MakeApp, auth: dict[str, str]
) -> None:
    """A secret equal to "error" or "parameter" leaves the keys of a 400 body as they are,
    and is masked where it is the value."""
    app = make_app(API_TOKEN="error", MAIL_PASSWORD="parameter")
    client = app.test_client()
    body = client.get("/_readiness?tag=nope", headers=auth).get_json()
    assert body == {
        "error": "unknown tag 'nope'",
        "parameter": "tag",
        "value": "nope",
        "known": body["known"],
    }
    echoed = client.get("/_readiness?format=parameter", headers=auth).get_json()
    assert echoed == {
        "error": f"unknown format '{MASK}'; use one of json, html, openmetrics",
        "parameter": "format",
        "value": MASK,
    }


GUNICORN_CONFIGS = {
    "raises-with-the-dsn": (
        "import os\nraise RuntimeError('cannot start Sentry with ' + os.environ['SENTRY_DSN'])\n"
    ),
    "timeout-is-the-db-password": (
        "import os\nfrom urllib.parse import unquote, urlsplit\n"
        "timeout = unquote(urlsplit(os.environ['DATABASE_URL']).password)\n"
    ),
}

GUNICORN_APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update({good!r})
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SENTRY_DSN"] = os.environ["SENTRY_DSN"]
ProdReady(app)
"""


@pytest.mark.parametrize("config", sorted(GUNICORN_CONFIGS))
def test_gunicorn_config_errors_show_no_secret(tmp_path: Path, config: str) -> None:
    """`flask readiness --gunicorn-config F`, F raising with the Sentry DSN in its message or
    setting timeout to the database password: one line, exit 2, neither value shown."""
    dsn_key = "sentrykey0123456789abcdef"
    password = "db pa$$/w@rd:é-1234"
    env = {
        "SENTRY_DSN": f"https://{dsn_key}@o1.ingest.example/42",
        "DATABASE_URL": f"postgresql://app:{quote(password, safe='')}@{HOST}:9/app",
    }
    (tmp_path / "gunicornapp.py").write_text(GUNICORN_APP.format(good=GOOD_CONFIG))
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONFIGS[config])
    done = run_flask(tmp_path, "gunicornapp", "--gunicorn-config", "gunicorn.conf.py", env=env)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.startswith("Error: could not read the gunicorn config gunicorn.conf.py: ")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert MASK in done.stderr
    shown = done.stdout + done.stderr
    assert [s for s in (*forms(dsn_key), *password_forms(password)) if s in shown] == []


# --- every error path of the command line, with the secret anywhere in the message -----

LEAKY_IMPORT = """
import os
raise ImportError("cannot import the settings: " + os.environ["LEAKY_PAYLOAD"])
"""
GUNICORN_RAISES = "import os\nraise RuntimeError(os.environ['LEAKY_PAYLOAD'])\n"
#: Not a number whatever the payload is ("0000001" alone would be a valid timeout).
GUNICORN_TIMEOUT = "import os\ntimeout = 'seconds: ' + os.environ['LEAKY_PAYLOAD']\n"


def error_paths(folder: Path, server: StubServer) -> dict[str, Callable[[str], str]]:
    """Each error path of `flask readiness` and `prodready`, as a function of the text
    (holding the secret) that ends up in its message; each returns what the command printed
    (stdout and stderr) after asserting one line and exit 2."""
    (folder / "leaky_import_module.py").write_text(LEAKY_IMPORT)
    (folder / "raises.conf.py").write_text(GUNICORN_RAISES)
    (folder / "timeout.conf.py").write_text(GUNICORN_TIMEOUT)
    url = f"http://{HOST}:{server.port}/_readiness"

    def app() -> Flask:
        made = Flask("leakyapp", root_path=str(folder))
        made.config.update(GOOD_CONFIG)
        made.config["DB_PASSWORD"] = os.environ["APP_DB_PASSWORD"]
        ProdReady(made)
        return made

    def run(command: Any, args: list[str], info: ScriptInfo | None = None) -> str:
        result = CliRunner().invoke(command, args, obj=info or ScriptInfo(create_app=app))
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
        return result.output

    def flask(*args: str) -> Callable[[str], str]:
        return lambda payload: run(cli_module.readiness_command, [a.format(payload) for a in args])

    def failing_app(payload: str) -> str:
        def broken() -> Flask:
            raise RuntimeError(payload)

        return run(cli_module.readiness_command, [], ScriptInfo(create_app=broken))

    def failing_import(payload: str) -> str:
        return run(
            cli_module.readiness_command, [], ScriptInfo(app_import_path="leaky_import_module")
        )

    def remote(answer: Callable[[str], Canned], *args: str) -> Callable[[str], str]:
        def call(payload: str) -> str:
            server.answer = lambda path: answer(payload)
            return run(cli_module.prodready_command, ["--url", url, *args])

        return call

    def failing_render(payload: str) -> str:
        def render(*args: Any, **kwargs: Any) -> str:
            raise RuntimeError(payload)

        original = cli_module.render
        cli_module.render = render  # type: ignore[assignment]
        try:
            return run(cli_module.readiness_command, ["--tag", "config"])
        finally:
            cli_module.render = original

    json_type = {"Content-Type": "application/json"}
    return {
        "app-load": failing_app,
        "app-import": failing_import,
        "gunicorn-raises": flask("--gunicorn-config", str(folder / "raises.conf.py")),
        "gunicorn-timeout": flask("--gunicorn-config", str(folder / "timeout.conf.py")),
        "unknown-tag": flask("--tag", "{}"),
        "unknown-exclude": flask("--exclude", "{}"),
        "bad-format": flask("--format", "{}"),
        "bad-fail-level": flask("--fail-level", "{}"),
        "missing-cafile": lambda p: run(
            cli_module.prodready_command, ["--url", url, "--cafile", p]
        ),
        "remote-400": remote(lambda p: Canned(400, json.dumps({"error": p}).encode(), json_type)),
        "remote-503": remote(
            lambda p: Canned(
                503, json.dumps({"error": f"could not build: {p}"}).encode(), json_type
            )
        ),
        "remote-redirect": remote(
            lambda p: Canned(302, headers={"Location": f"https://elsewhere/{quote(p)}"})
        ),
        "remote-not-a-report": remote(
            lambda p: Canned(
                200,
                json.dumps({"findings": [{"id": p, "level": "fatal", "message": "m"}]}).encode(),
                json_type,
            )
        ),
        "internal-error": failing_render,
    }


def test_every_cli_error_path_masks_the_secret(tmp_path: Path) -> None:
    """Whatever the secret (held in the environment and the app's config) and wherever it
    stands in the text an error repeats, no error path of either command shows it: each
    prints one masked line and exits 2."""
    runner_env = {"PRODREADY_TOKEN": TOKEN, "LEAKY_PAYLOAD": "", "APP_DB_PASSWORD": ""}
    saved = {name: os.environ.get(name) for name in runner_env}
    os.environ.update(runner_env)
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with StubServer(Canned(200)) as server:
            paths = error_paths(tmp_path, server)

            def printed(secret: str, payload: str) -> dict[str, str]:
                os.environ["APP_DB_PASSWORD"] = secret
                os.environ["LEAKY_PAYLOAD"] = payload
                return {name: path(payload) for name, path in paths.items()}

            placeholder = "placeholder-secret-Zq7"
            reference = printed(placeholder, f"before {placeholder} after")
            assert all(MASK in text for name, text in reference.items()), reference
            vocabulary = "\n".join(reference.values())

            @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(
                secret=secret_values,
                before=st.text(ASCII_CHARACTERS, max_size=12),
                after=st.text(ASCII_CHARACTERS, max_size=12),
            )
            def example(secret: str, before: str, after: str) -> None:
                assume(secret_weakness(secret) is None)
                assume(not any(form in vocabulary for form in forms(secret)))
                found = printed(secret, before + secret + after)
                assert [
                    (name, form)
                    for name, text in found.items()
                    for form in forms(secret)
                    if form in text
                ] == []

            example()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("leaky_import_module", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
