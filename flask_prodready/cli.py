"""``flask readiness``: the same checks from the command line, with a gate exit code.

Exit codes: 0 when no unsilenced finding is at or above ``--fail-level``, 1 when one
is, 2 for a usage error (unknown tag, id, format or level), always one line on stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import NoAppException, ScriptInfo

from .extension import EXTENSION_KEY, AppState
from .findings import Level
from .redaction import Redactor
from .registry import CLI
from .render.json import render_json
from .render.text import render_catalogue, render_text
from .server import load_gunicorn_config

FORMATS = ("text", "json")
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
            raise UsageFailure(exc.format_message()) from None


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


@click.command("readiness", cls=ReadinessCommand)
@click.option(
    "--format",
    "output_format",
    default="text",
    show_default=True,
    help="Output format: text (for people) or json (the /_readiness body).",
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
def readiness_command(
    output_format: str,
    fail_level: str,
    tags: tuple[str, ...],
    excludes: tuple[str, ...],
    gunicorn_config: str | None,
    audit: bool,
    list_only: bool,
) -> None:
    """Check this app's production readiness and exit non-zero when it is not ready."""
    output_format = output_format.lower()
    if output_format not in FORMATS:
        raise _usage(f"unknown format {output_format!r}; use one of {', '.join(FORMATS)}")
    try:
        threshold = Level.parse(fail_level)
    except ValueError as exc:
        raise _usage(f"--fail-level: {exc}") from None
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
    if output_format == "json":
        click.echo(render_json(report), nl=False)
    else:
        click.echo(render_text(report), nl=False)
    sys.exit(EXIT_FINDINGS if report.failing(threshold) else EXIT_OK)
