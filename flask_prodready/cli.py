"""``flask readiness``: the same checks from the command line, with a gate exit code.

Exit codes: 0 when no unsilenced finding is at or above ``--fail-level``, 1 when one
is, 2 for a usage error (unknown tag, id, format or level), always one line on stderr.
With ``--url`` (remote mode) the command hands off to :mod:`flask_prodready.remote`
before any app is loaded; the ``prodready`` console script is the same command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import NoAppException, ScriptInfo

from .extension import EXTENSION_KEY, AppState
from .findings import Level, Report
from .redaction import Redactor
from .registry import CLI, Registry
from .render.json import render_json
from .render.text import render_catalogue, render_text
from .server import load_gunicorn_config

FORMATS = ("text", "json", "junit", "sarif")
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageFailure(click.ClickException):
    """A usage error shown as one line, ``Error: <message>``, exiting 2.

    click's own ``UsageError`` prints the whole usage block first; a CI log wants the
    one line that says what was wrong.
    """

    exit_code = EXIT_USAGE


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


def _usage(message: str) -> UsageFailure:
    return UsageFailure(message)


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
            raise _usage(exc.format_message()) from None
        except Exception as exc:
            text = Redactor.for_config({}).text(str(exc).splitlines()[0] if str(exc) else "")
            raise _usage(f"the app failed to load: {type(exc).__name__}: {text}") from None
        ctx.with_resource(app.app_context())
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise _usage(
            f"ProdReady is not installed on the app {app.name!r}: "
            "call ProdReady(app) or prodready.init_app(app) in its factory"
        )
    return app, state


def render_report(
    report: Report,
    output_format: str,
    threshold: Level,
    *,
    registry: Registry,
    app: Flask | None = None,
) -> str:
    """``report`` in one of :data:`FORMATS`: the dispatch ``flask readiness`` and remote mode
    (``--url``, ``prodready``) share. Without an app (remote mode), SARIF results point at
    the current folder."""
    if output_format == "json":
        return render_json(report)
    # JUnit and SARIF are imported when asked for: this module loads with every app.
    if output_format == "junit":
        from .render.junit import render_junit

        return render_junit(report, threshold)
    if output_format == "sarif":
        from .render.sarif import SourceLocations, render_sarif

        locations = (
            SourceLocations.for_app(app)
            if app is not None
            else SourceLocations(Path.cwd().resolve(), ".")
        )
        return render_sarif(report, registry=registry, locations=locations)
    return render_text(report)


@click.command("readiness", cls=ReadinessCommand)
@click.option(
    "--format",
    "output_format",
    default="text",
    show_default=True,
    help="Output format: text (for people), json (the /_readiness body), junit (JUnit XML "
    "for CI test reports) or sarif (SARIF 2.1.0 for code scanning).",
)
@click.option(
    "--fail-level",
    default="error",
    show_default=True,
    help="Exit 1 when an unsilenced finding is at or above this level "
    "(critical, error, warning, info).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Only run checks with this tag (repeatable); an area name is a tag.",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="ID",
    help="Do not run the check with this id (repeatable).",
)
@click.option(
    "--gunicorn-config",
    "gunicorn_config",
    metavar="FILE",
    help="Judge the server.* gunicorn checks against this gunicorn config file "
    "(read with gunicorn's own loader).",
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
@click.option(
    "--url",
    metavar="URL",
    help="Remote mode: fetch and gate the report of a live instance at this URL instead of "
    "loading the app (a URL without a path gets /_readiness).",
)
@click.option(
    "--token-env",
    metavar="NAME",
    help="With --url: the environment variable holding the token "
    "(default PRODREADY_TOKEN). The token is never taken from the command line.",
)
@click.option(
    "--cafile",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="With --url: trust the CA certificates in this PEM file instead of the system's "
    "(a private CA).",
)
@click.option(
    "--timeout",
    type=float,
    metavar="SECONDS",
    help="With --url: seconds for connecting and for the answer (default 10).",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="With --url: the port tls.http_redirect asks plain http:// on (default 80).",
)
def readiness_command(
    output_format: str,
    fail_level: str,
    tags: tuple[str, ...],
    excludes: tuple[str, ...],
    gunicorn_config: str | None,
    audit: bool,
    list_only: bool,
    url: str | None,
    token_env: str | None,
    cafile: str | None,
    timeout: float | None,
    http_port: int | None,
) -> None:
    """Check this app's production readiness and exit non-zero when it is not ready."""
    output_format = output_format.lower()
    if output_format not in FORMATS:
        raise _usage(f"unknown format {output_format!r}; use one of {', '.join(FORMATS)}")
    try:
        threshold = Level.parse(fail_level)
    except ValueError as exc:
        raise _usage(f"--fail-level: {exc}") from None
    if url is not None:  # remote mode: the local app is not loaded at all
        local = {"--list": list_only, "--gunicorn-config": gunicorn_config, "--audit": audit}
        for name, given in local.items():
            if given:
                raise _usage(f"{name} is about the local app and cannot be combined with --url")
        from .remote import run_remote

        run_remote(
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
            raise _usage(f"{name} only applies with --url URL (remote mode)")
    app, state = _load_app()

    if list_only:
        if output_format == "json":
            click.echo(json.dumps(state.registry.describe(), indent=2))
        else:
            click.echo(render_catalogue(state.registry), nl=False)
        return

    for tag in state.registry.unknown_tags(tags):
        raise _usage(f"unknown tag {tag!r}; see `flask readiness --list` for the tags")
    for check_id in state.registry.unknown_ids(excludes):
        raise _usage(f"unknown check id {check_id!r} in --exclude; see `flask readiness --list`")

    gunicorn = None
    if gunicorn_config is not None:
        try:
            gunicorn = load_gunicorn_config(gunicorn_config)
        except ValueError as exc:
            raise _usage(str(exc)) from None
    report = state.build_report(
        app, mode=CLI, tags=tags, exclude=excludes, gunicorn=gunicorn, options={"audit": audit}
    )
    click.echo(
        render_report(report, output_format, threshold, registry=state.registry, app=app),
        nl=False,
    )
    sys.exit(EXIT_FINDINGS if report.failing(threshold) else EXIT_OK)
