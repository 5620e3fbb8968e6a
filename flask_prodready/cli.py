"""The command line: ``flask readiness`` (the app as loaded) and ``prodready`` (a live
instance, from outside), with a gate exit code.

Exit codes: 0 when no unsilenced finding is at or above ``--fail-level``, 1 when one
is (and for nothing else), 2 for a usage error (unknown tag, id, format or level, an app
or gunicorn config that fails to load, an unreadable remote answer) and for anything
that went wrong, always one line on stderr, redacted, without a traceback. Each command
takes exactly its own options: ``flask readiness`` the app's (``--gunicorn-config``,
``--audit``, ``--list``) and, with ``--url``, remote mode's; ``prodready`` needs no app
code and takes only remote mode's.
Both render through :func:`flask_prodready.render.render`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from flask import Flask, current_app
from flask.cli import NoAppException, ScriptInfo

from .engine.findings import CheckOutcome, Level, Report, Status
from .engine.redaction import Redactor, UnsafeValue
from .engine.registry import CLI, REMOTE, Registry
from .engine.state import EXTENSION_KEY, AppState
from .render import render

if TYPE_CHECKING:
    from .engine.project_settings import ProjectSettings
    from .render.sarif import SourceLocations

#: The formats of the command line (``/_readiness`` adds html and openmetrics).
FORMATS = ("text", "json", "junit", "sarif", "github")
LEVELS = tuple(level.value for level in Level)
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
#: Seconds remote mode waits for the report unless ``--timeout`` says otherwise, and most.
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 120.0
#: Seconds the remote checks get beyond the connection timeout before they time out.
CHECK_MARGIN = 2.0

FC = TypeVar("FC", bound=Callable[..., Any])


def _current_redactor() -> Redactor:
    """The redactor of the app being checked, or, before one is loaded (or in remote mode),
    of the environment and the Sentry client alone."""
    config = current_app.config if current_app else {}
    return Redactor.for_config(config)


def _lines(text: str) -> list[str]:
    """The non-blank lines of ``text`` after masking (masked whole first, so that no line
    keeps a piece of a secret that spans lines)."""
    return [line.strip() for line in _current_redactor().text(text).splitlines() if line.strip()]


def _first_line(text: str) -> str:
    lines = _lines(text)
    return lines[0] if lines else ""


class UsageFailure(click.ClickException):
    """A usage error shown as one line, ``Error: <message>``, exiting 2.

    click's own ``UsageError`` prints the whole usage block first; a CI log wants the
    one line that says what was wrong. The message is redacted here, with the loaded
    app's secrets when there is one: it may quote an option, a file or an exception.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        redactor = _current_redactor()
        # Masked, put on one line, and masked again: joining lines could form a secret.
        super().__init__(redactor.text(" ".join(redactor.text(message).split())))


class _FirstLineHandler(logging.Handler):
    """Writes the first line of each record to stderr: a crashed check's traceback stays
    out of the command's output (the report names the exception)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(_current_redactor().text(_first_line(record.getMessage())), err=True)
        except Exception:
            self.handleError(record)


#: Loggers whose records a command shows as one line: the extension's own, and remote
#: mode's HTTP client (which logs a server's malformed headers with a traceback).
ONE_LINE_LOGGERS = ("flask_prodready", "urllib3")


@contextlib.contextmanager
def _log_lines_only() -> Iterator[None]:
    """For the duration of a command, :data:`ONE_LINE_LOGGERS` write one line per record
    to stderr instead of passing records (and tracebacks) on."""
    handler = _FirstLineHandler(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ONE_LINE_LOGGERS]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate


class ReadinessCommand(click.Command):
    """A click command whose option-parsing errors are one line too."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            message = exc.format_message()
            if "unexpected extra argument" in message:
                # click would echo the argument, which may be a token typed by mistake.
                message = (
                    "unexpected argument (not shown); the token is read from the environment "
                    "(PRODREADY_TOKEN or --token-env NAME), never from the command line"
                )
            raise UsageFailure(message) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; anything unexpected becomes one line and exit 2, never a
        traceback, and never exit 1 (which means findings)."""
        with _log_lines_only():
            try:
                return super().invoke(ctx)
            except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
                raise
            except Exception as exc:
                detail = _first_line(_safe_str(exc))
                raise UsageFailure(
                    f"flask-prodready failed: {type(exc).__name__}"
                    + (f": {detail}" if detail else "")
                ) from None


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose str() raises still has a type to name
        return ""


def _report_options(func: FC) -> FC:
    """What both commands take: the format, the gate level and the selection."""
    for option in reversed(
        [
            click.option(
                "--format",
                "output_format",
                type=click.Choice(FORMATS, case_sensitive=False),
                default="text",
                show_default=True,
                help="Output format: text (for people), json (the /_readiness body), junit "
                "(JUnit XML for CI test reports), sarif (SARIF 2.1.0 for code scanning) or "
                "github (GitHub Actions annotations).",
            ),
            click.option(
                "--fail-level",
                type=click.Choice(LEVELS, case_sensitive=False),
                default="error",
                show_default=True,
                help="Exit 1 when an unsilenced finding is at or above this level.",
            ),
            click.option(
                "--tag",
                "tags",
                multiple=True,
                metavar="TAG",
                help="Only run checks with this tag (repeatable); an area name is a tag, and "
                "live, cli and remote select the checks that can only judge there.",
            ),
            click.option(
                "--exclude",
                "excludes",
                multiple=True,
                metavar="ID",
                help="Do not run the check with this id (repeatable).",
            ),
        ]
    ):
        func = option(func)
    return func


def _remote_options(func: FC) -> FC:
    """What remote mode takes: where the report is, the token's variable and the TLS setup."""
    for option in reversed(
        [
            click.option(
                "--url",
                metavar="URL",
                help="Remote mode: fetch and gate the report of a live instance at this URL "
                "(a URL without a path gets /_readiness).",
            ),
            click.option(
                "--token-env",
                metavar="NAME",
                help="With --url: the environment variable holding the token "
                "(default PRODREADY_TOKEN). The token is never taken from the command line.",
            ),
            click.option(
                "--cafile",
                metavar="FILE",
                type=click.Path(exists=True, dir_okay=False),
                help="With --url: trust the CA certificates in this PEM file instead of the "
                "system's (a private CA).",
            ),
            click.option(
                "--timeout",
                type=float,
                metavar="SECONDS",
                help=f"With --url: seconds for the whole exchange (default {DEFAULT_TIMEOUT:g}).",
            ),
            click.option(
                "--http-port",
                type=click.IntRange(1, 65535),
                metavar="PORT",
                help="With --url: the port tls.http_redirect asks plain http:// on (default 80).",
            ),
        ]
    ):
        func = option(func)
    return func


def _load_app() -> tuple[Flask, AppState]:
    """The app named by ``--app`` and its ProdReady state, or a one-line error (exit 2).

    The command loads the app itself, rather than through ``with_appcontext``, so that a
    factory that raises (a bad ``PRODREADY_*`` value, a missing variable) is reported as
    one line, redacted, that CI can tell apart from "findings" (exit 1).
    """
    ctx = click.get_current_context()
    if current_app:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        try:
            app = ctx.ensure_object(ScriptInfo).load_app()
        except NoAppException as exc:
            # Flask puts a whole traceback in the message of an import that failed: its
            # first line says what failed, its last line with what exception.
            lines = _lines(exc.format_message())
            shown = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"
            raise UsageFailure(shown) from None
        except Exception as exc:
            text = _first_line(_safe_str(exc))
            raise UsageFailure(
                f"the app failed to load: {type(exc).__name__}" + (f": {text}" if text else "")
            ) from None
        ctx.with_resource(app.app_context())
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise UsageFailure(
            f"ProdReady is not installed on the app {app.name!r}: "
            "call ProdReady(app) or prodready.init_app(app) in its factory"
        )
    return app, state


def _project_settings() -> ProjectSettings:
    """``[tool.prodready]`` of the nearest ``pyproject.toml``, or a one-line error (exit 2)."""
    from .engine.project_settings import ProjectSettingsError, load_project_settings

    try:
        return load_project_settings()
    except ProjectSettingsError as exc:
        raise UsageFailure(str(exc)) from None


def _given(name: str) -> bool:
    """Whether the option ``name`` was given (so it wins over ``[tool.prodready]``)."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source is not ParameterSource.DEFAULT


def _gate(
    report: Report,
    output_format: str,
    threshold: Level,
    *,
    registry: Registry,
    locations: SourceLocations | None = None,
) -> NoReturn:
    """Print the report and exit with the gate's code.

    A run in which no check could judge, or the check it asked for (``--audit``) could
    not, prints its report (status ``unknown``) and exits 2 with the reason on stderr: it
    is neither a pass nor a finding.
    """
    click.echo(
        render(report, output_format, threshold=threshold, registry=registry, locations=locations),
        nl=False,
    )
    if report.status is Status.UNKNOWN:
        click.echo(f"Error: {_first_line(report.unjudged_reason())}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if report.failing(threshold) else EXIT_OK)


def _remote_registry() -> Registry:
    """The catalogue as remote mode knows it: the built-in checks and the engine's own."""
    from .checks import builtin_checks
    from .engine.runner import ENGINE_CHECKS

    return Registry([*ENGINE_CHECKS, *builtin_checks()])


def _redacted(outcome: CheckOutcome, redactor: Redactor) -> CheckOutcome:
    reason = None if outcome.reason is None else redactor.text(outcome.reason)
    findings = tuple(redactor.finding(f) for f in outcome.findings)
    return replace(outcome, findings=findings, reason=reason)


def remote_report(
    url: str,
    *,
    tags: Iterable[str] = (),
    exclude: Iterable[str] = (),
    token_env: str | None = None,
    cafile: str | None = None,
    timeout: float | None = None,
    http_port: int | None = None,
) -> Report:
    """The live report at ``url`` with the remote checks' outcomes added (mode ``remote``).

    The remote checks (``tls.*``) run here through a bare app's state, so they get the
    runner's timeout, isolation and redaction like any other. Raises
    :class:`UsageFailure` (one line, exit 2) when the report cannot be had.
    """
    from .engine.context import RemoteTarget
    from .engine.settings import load_settings, set_defaults
    from .remote.client import RemoteError, fetch_report, parse_url, read_token

    seconds = DEFAULT_TIMEOUT if timeout is None else timeout
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise UsageFailure(f"--timeout must be a number of seconds > 0 and at most {MAX_TIMEOUT:g}")
    tags, exclude = list(tags), list(exclude)
    try:
        target = parse_url(url)
        token, token_env_shown = read_token(token_env)
        redactor = Redactor.for_config({}, extra=[token])
        fetched = fetch_report(
            target,
            token=token,
            token_env=token_env_shown,
            redactor=redactor,
            cafile=cafile,
            timeout=seconds,
            tags=tags,
            exclude=exclude,
        )
    except RemoteError as exc:
        raise UsageFailure(exc.message) from None

    app = Flask(__name__)  # the remote checks read no app: a bare one stands in
    app.config["PRODREADY_TOKEN"] = None  # the client's token is not this app's setting
    app.config["PRODREADY_CHECK_TIMEOUT"] = seconds + CHECK_MARGIN
    set_defaults(app.config)
    checks = [c for c in _remote_registry().select(tags, exclude) if REMOTE in c.modes]
    state = AppState(load_settings(app.config), Registry(checks))
    added = state.build_report(
        app,
        mode=REMOTE,
        checks=checks,
        remote=RemoteTarget(url=target.url, cafile=cafile, timeout=seconds, http_port=http_port),
    ).outcomes
    try:
        outcomes = {
            cid: _redacted(outcome, redactor)
            for cid, outcome in {**fetched.outcomes, **added}.items()
        }
    except UnsafeValue as exc:  # an observed value nested too deep to show
        raise UsageFailure(f"{target.url} answered a report that cannot be shown: {exc}") from None
    return Report(
        outcomes=outcomes,
        worker=fetched.worker,
        generated_at=fetched.generated_at,
        mode=REMOTE.value,
        cached=fetched.cached,
        evidence=fetched.evidence,
        service=None if fetched.service is None else fetched.service.redacted(redactor.text),
        notes=tuple(redactor.text(note) for note in fetched.notes),
        fingerprint=None
        if fetched.fingerprint is None
        else replace(fetched.fingerprint, app=redactor.text(fetched.fingerprint.app)),
    )


def _run_remote(
    url: str,
    *,
    output_format: str,
    threshold: Level,
    tags: Iterable[str],
    exclude: Iterable[str],
    token_env: str | None,
    cafile: str | None,
    timeout: float | None,
    http_port: int | None,
) -> NoReturn:
    report = remote_report(
        url,
        tags=tags,
        exclude=exclude,
        token_env=token_env,
        cafile=cafile,
        timeout=timeout,
        http_port=http_port,
    )
    _gate(report, output_format, threshold, registry=_remote_registry())


@click.command("readiness", cls=ReadinessCommand)
@_report_options
@click.option(
    "--gunicorn-config",
    "gunicorn_config",
    metavar="FILE",
    help="Judge the server.* gunicorn checks against this gunicorn config file "
    "(read with gunicorn's own loader).",
)
@click.option(
    "--nginx-config",
    "nginx_config",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="Judge the nginx.* checks against this nginx configuration (includes followed) "
    "instead of PRODREADY_NGINX_CONFIG or /etc/nginx/nginx.conf.",
)
@click.option(
    "--systemd-unit",
    "systemd_unit",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="Judge the supervision.* checks against this systemd unit file (before a release).",
)
@click.option(
    "--audit",
    is_flag=True,
    help="Also run dependencies.vulnerable (pip-audit on this environment).",
)
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Print the catalogue of checks (id, level, tags, title) and exit.",
)
@_remote_options
def readiness_command(
    output_format: str,
    fail_level: str,
    tags: tuple[str, ...],
    excludes: tuple[str, ...],
    gunicorn_config: str | None,
    nginx_config: str | None,
    systemd_unit: str | None,
    audit: bool,
    list_only: bool,
    url: str | None,
    token_env: str | None,
    cafile: str | None,
    timeout: float | None,
    http_port: int | None,
) -> None:
    """Check this app's production readiness and exit non-zero when it is not ready.

    Options not given on the command line default to [tool.prodready] of the nearest
    pyproject.toml (fail-level, tags, exclude, gunicorn-config, silenced)."""
    project = _project_settings()
    if project.fail_level is not None and not _given("fail_level"):
        fail_level = project.fail_level.value
    listed_tags, listed_excludes = tags, excludes  # --list: the catalogue, unless narrowed
    if project.tags is not None and not _given("tags"):
        tags = project.tags
    if project.exclude is not None and not _given("excludes"):
        excludes = project.exclude
    from_file = f" (from [tool.prodready] of {project.path})" if project.path else ""
    threshold = Level.parse(fail_level)
    if url is not None:  # remote mode: the local app is not loaded at all
        local = {
            "--list": list_only,
            "--gunicorn-config": gunicorn_config,
            "--nginx-config": nginx_config,
            "--systemd-unit": systemd_unit,
            "--audit": audit,
        }
        for name, given in local.items():
            if given:
                raise UsageFailure(
                    f"{name} is about the local app and cannot be combined with --url"
                )
        _run_remote(
            url,
            output_format=output_format,
            threshold=threshold,
            tags=tags,
            exclude=excludes,
            token_env=token_env,
            cafile=cafile,
            timeout=timeout,
            http_port=http_port,
        )
    remote = {
        "--token-env": token_env,
        "--cafile": cafile,
        "--timeout": timeout,
        "--http-port": http_port,
    }
    for name, value in remote.items():
        if value is not None:
            raise UsageFailure(f"{name} only applies with --url URL (remote mode)")
    app, state = _load_app()
    tags_from = "" if _given("tags") else from_file
    excludes_from = "--exclude" if _given("excludes") or not from_file else "exclude" + from_file
    for tag in state.registry.unknown_tags(tags):
        raise UsageFailure(
            f"unknown tag {tag!r}{tags_from}; see `flask readiness --list` for the tags"
        )
    for check_id in state.registry.unknown_ids(excludes):
        raise UsageFailure(
            f"unknown check id {check_id!r} in {excludes_from}; see `flask readiness --list`"
        )

    if list_only:
        tags, excludes = listed_tags, listed_excludes
        # The whole catalogue (the runner's own entries included) unless narrowed.
        listed = state.registry.select(tags, excludes) if tags or excludes else state.registry
        if output_format == "json":
            click.echo(json.dumps(Registry(listed).describe(), indent=2))
        else:
            from .render.text import render_catalogue

            click.echo(render_catalogue(listed), nl=False)
        return

    if gunicorn_config is None:
        gunicorn_config = project.gunicorn_config  # relative to its pyproject.toml
    gunicorn = None
    if gunicorn_config is not None:
        from .engine.server import GunicornConfigError, load_gunicorn_config

        try:
            gunicorn = load_gunicorn_config(gunicorn_config)
        except GunicornConfigError as exc:
            # gunicorn's output may quote a value of the file (a password given as the
            # timeout): masked whole with the app's secrets, then its last line is shown.
            lines = _lines(exc.output)
            raise UsageFailure(
                f"could not read the gunicorn config {exc.path}: {lines[-1] if lines else ''}"
            ) from None
        except ValueError as exc:
            raise UsageFailure(str(exc)) from None
    settings = None
    if project.silenced:  # the file's silences join the app's; PRODREADY_SILENCED wins
        silenced = {**project.silenced, **state.settings.silenced}
        settings = replace(state.settings, silenced=silenced)
    report = state.build_report(
        app,
        mode=CLI,
        tags=tags,
        exclude=excludes,
        gunicorn=gunicorn,
        audit=audit,
        nginx_config=nginx_config,
        systemd_unit=systemd_unit,
        settings=settings,
    )
    locations = None
    if output_format in ("sarif", "github"):
        from .render.sarif import SourceLocations

        locations = SourceLocations.for_app(app)
    _gate(report, output_format, threshold, registry=state.registry, locations=locations)


@click.command("prodready", cls=ReadinessCommand)
@_report_options
@_remote_options
def prodready_command(
    output_format: str,
    fail_level: str,
    tags: tuple[str, ...],
    excludes: tuple[str, ...],
    url: str | None,
    token_env: str | None,
    cafile: str | None,
    timeout: float | None,
    http_port: int | None,
) -> None:
    """Fetch a live instance's readiness report, add the checks only an outside client can
    make (tls.*), print it and exit non-zero when it is not ready. Needs no app code: the
    token comes from PRODREADY_TOKEN (or the variable --token-env names)."""
    if url is None:
        raise UsageFailure(
            "--url is required: the URL of a live instance's report, like https://host/_readiness"
        )
    _run_remote(
        url,
        output_format=output_format,
        threshold=Level.parse(fail_level),
        tags=tags,
        exclude=excludes,
        token_env=token_env,
        cafile=cafile,
        timeout=timeout,
        http_port=http_port,
    )


#: The ``prodready`` console script.
main = prodready_command
