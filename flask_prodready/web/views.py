"""The HTTP front end: ``/healthz`` for monitors and the protected ``/_readiness`` report.

``/healthz`` is kept as cheap as a bare route: a constant body, no report, no I/O,
unless ``PRODREADY_HEALTHZ_CHECKS`` asks for checks. ``/_readiness`` answers 404 while
no token is configured, 401 to anything but the exact bearer token, and 400 with a JSON
error to any query it does not understand. Neither route ever sets a cookie.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request, url_for
from werkzeug.datastructures import MIMEAccept

from ..engine.findings import Report, Status
from ..engine.redaction import Redactor
from ..engine.settings import Settings
from ..engine.state import AppState, get_state
from ..render import render
from ..render.html import stylesheet_text
from ..render.openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .healthz import HEALTH_JSON, healthz_answer

logger = logging.getLogger("flask_prodready")

FORMATS = ("json", "html", "openmetrics")
OPENMETRICS = "application/openmetrics-text"
QUERY_PARAMETERS = frozenset({"tag", "exclude", "format"})
#: Query parameters that look like a token: refused, because URLs end up in logs.
TOKEN_PARAMETERS = frozenset({"token", "access_token", "bearer", "auth", "authorization"})
#: Rendered bodies kept for cached reports (one per format and stylesheet URL).
MAX_RENDERED = 16
#: Longest query value accepted; ids and tags are short.
MAX_VALUE_LENGTH = 200
#: Query values echoed back in an error are cut to this many characters.
SHOWN_VALUE_LENGTH = 60
#: Headers copied from the request environ into the run, for checks to read.
ENVIRON_KEYS = ("SERVER_SOFTWARE", "wsgi.multithread", "wsgi.multiprocess", "wsgi.url_scheme")
#: Distinct ``Accept`` headers whose negotiated format is remembered (monitors repeat one).
MAX_NEGOTIATED = 64
#: Headers of every report response.
REPORT_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))
HTML_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'"


class _BadRequest(Exception):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def _no_cookie_response_class(app: Flask) -> type[Response]:
    """The app's response class, made deaf to ``set_cookie``.

    A session interface adds its cookie after every after-request hook has run, so
    stripping the header in a hook is too early; a response that ignores the call is not.
    """

    def ignore(self: Response, *args: Any, **kwargs: Any) -> None:
        return None

    return type(
        "ProdReadyResponse",
        (app.response_class,),
        {"set_cookie": ignore, "delete_cookie": ignore, "__module__": __name__},
    )


def _without_parameters(accept: MIMEAccept) -> MIMEAccept:
    """``Accept`` with media-type parameters dropped, each type at its best quality.

    Prometheus asks for ``application/openmetrics-text;version=1.0.0``, which Werkzeug
    would not match against the bare type.
    """
    best: dict[str, float] = {}
    for value, quality in accept:
        media_type = value.partition(";")[0].strip().lower()
        best[media_type] = max(quality, best.get(media_type, 0.0))
    return MIMEAccept(list(best.items()))


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE_LENGTH else value[:SHOWN_VALUE_LENGTH] + "..."


def make_blueprint(app: Flask, settings: Settings) -> Blueprint:
    """The routes for one app, at the paths its config names."""
    blueprint = Blueprint("prodready", __name__)
    response_class = _no_cookie_response_class(app)

    # A cached report is one object for every hit: its rendered body is kept beside it,
    # so serving from the cache renders nothing. Bounded; a new report replaces the old.
    bodies: dict[tuple[str, ...], tuple[Report, bytes]] = {}
    # What each Accept header a client sent negotiated to (bounded).
    negotiated: dict[str, str] = {}

    def rendered(report: Report, variant: tuple[str, ...], make: Callable[[], str]) -> bytes:
        kept = bodies.get(variant)
        if kept is not None and kept[0] is report:
            return kept[1]
        body = make().encode("utf-8")
        if report.cached:  # only cached reports come back; a fresh one is rendered once
            if len(bodies) >= MAX_RENDERED:
                bodies.clear()
            bodies[variant] = (report, body)
        return body

    def respond(body: str | bytes, status: int, content_type: str, **headers: str) -> Response:
        return response_class(
            body,
            status=status,
            headers=[*REPORT_HEADERS, *headers.items()],
            content_type=content_type,
        )

    def error(status: int, message: str, **extra: Any) -> Response:
        # Values echoed from the query go through redaction like every other output.
        redactor = Redactor.for_config(current_app.config)
        payload = redactor.value({"error": message, **extra})
        body = json.dumps(payload, ensure_ascii=True) + "\n"
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="prodready"'
        return respond(body, status, "application/json", **headers)

    def healthz() -> Response:
        # Normally answered by HealthzMiddleware before Flask; same answer here.
        app_obj = current_app._get_current_object()  # type: ignore[attr-defined]
        code, body = healthz_answer(
            app_obj, get_state(app_obj), request.environ.get("SERVER_SOFTWARE")
        )
        return respond(body, code, HEALTH_JSON)

    def parse_query(state: AppState) -> tuple[list[str], list[str], str | None]:
        unknown = sorted(set(request.args) - QUERY_PARAMETERS)
        if unknown:
            raise _BadRequest(
                f"unknown query parameter {_shown(unknown[0])!r}; use tag=, exclude= or format=",
                parameter=_shown(unknown[0]),
            )
        values: dict[str, list[str]] = {}
        for name in ("tag", "exclude", "format"):
            values[name] = request.args.getlist(name)
            for value in values[name]:
                if not value.strip():
                    raise _BadRequest(f"empty {name}= value", parameter=name)
                if len(value) > MAX_VALUE_LENGTH or "\ufffd" in value:
                    raise _BadRequest(
                        f"{name}= value is too long or not valid UTF-8",
                        parameter=name,
                        value=_shown(value),
                    )
        for tag in state.registry.unknown_tags(values["tag"]):
            raise _BadRequest(
                f"unknown tag {tag!r}",
                parameter="tag",
                value=tag,
                known=sorted(state.registry.tags),
            )
        for check_id in state.registry.unknown_ids(values["exclude"]):
            raise _BadRequest(f"unknown check id {check_id!r}", parameter="exclude", value=check_id)
        if len(values["format"]) > 1:
            raise _BadRequest("format= given more than once", parameter="format")
        fmt = values["format"][0] if values["format"] else None
        if fmt is not None and fmt not in FORMATS:
            raise _BadRequest(
                f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}",
                parameter="format",
                value=fmt,
            )
        return values["tag"], values["exclude"], fmt

    def negotiate(accept: str) -> str:
        chosen = negotiated.get(accept)
        if chosen is None:
            best = _without_parameters(request.accept_mimetypes).best_match(
                ["application/json", HEALTH_JSON, "text/html", OPENMETRICS],
                default="application/json",
            )
            chosen = {"text/html": "html", OPENMETRICS: "openmetrics"}.get(best, "json")
            if len(negotiated) >= MAX_NEGOTIATED:
                negotiated.clear()
            negotiated[accept] = chosen
        return chosen

    def authorised(state: AppState, environ: dict[str, Any]) -> bool:
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        # Only spaces and tabs (RFC 9110's whitespace): str.strip() would also drop a
        # no-break space or other Latin-1 bytes, and the token must be sent exactly.
        token = credentials.strip(" \t")
        return scheme.lower() == "bearer" and bool(token) and state.token_matches(token)

    def readiness() -> Response:
        # Kept lean: a monitor polling a cached report should cost about a bare route.
        state = get_state(app)
        if state.settings.token is None:
            return error(404, "not found")
        environ: dict[str, Any] = request.environ
        tags: list[str] = []
        exclude: list[str] = []
        fmt: str | None = None
        query = environ.get("QUERY_STRING")
        if query:
            try:
                names = list(request.args)
            except UnicodeDecodeError:  # raw bytes that are not UTF-8: Werkzeug is strict
                return error(400, "the query string is not valid UTF-8; percent-encode it")
            if TOKEN_PARAMETERS.intersection(k.lower() for k in names):
                return error(
                    400,
                    "the token is never accepted in the query string (URLs are "
                    "logged); send it as 'Authorization: Bearer <token>'",
                )
        if not authorised(state, environ):
            return error(401, "a valid 'Authorization: Bearer <token>' header is required")
        if query:
            try:
                tags, exclude, fmt = parse_query(state)
            except _BadRequest as bad:
                return error(400, bad.message, **bad.details)

        seen = {k: environ[k] for k in ENVIRON_KEYS if k in environ}
        try:
            report: Report = state.cached_report(
                app,
                key=("readiness", tuple(sorted(set(tags))), tuple(sorted(set(exclude)))),
                checks=lambda: state.registry.select(tags, exclude),
                server_software=seen.get("SERVER_SOFTWARE"),
                environ=seen,
            )
        except Exception as exc:  # the report endpoint answers, whatever happened
            logger.error("flask-prodready could not build the report: %s", type(exc).__name__)
            return error(503, "the report could not be built; see the server log")
        code = 503 if report.status is Status.FAIL else 200
        accept = environ.get("HTTP_ACCEPT")
        chosen = fmt if fmt is not None else negotiate(accept) if accept else "json"
        if chosen == "openmetrics":
            # Always 200: a scraper drops the body of any other answer, and the status
            # is in the metrics (prodready_status).
            body = rendered(report, ("openmetrics",), lambda: render(report, "openmetrics"))
            return respond(body, 200, OPENMETRICS_CONTENT_TYPE)
        if chosen == "html":
            stylesheet = url_for("prodready.stylesheet")  # honours SCRIPT_NAME
            page = rendered(
                report,
                ("html", stylesheet),
                lambda: render(report, "html", stylesheet_url=stylesheet, registry=state.registry),
            )
            return respond(
                page,
                code,
                "text/html; charset=utf-8",
                **{"Content-Security-Policy": HTML_CSP},
            )
        return respond(
            rendered(report, ("json",), lambda: render(report, "json")), code, HEALTH_JSON
        )

    def stylesheet() -> Response:
        state = get_state(current_app)
        if state.settings.token is None:
            return error(404, "not found")
        response = respond(stylesheet_text(), 200, "text/css; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    blueprint.add_url_rule(settings.healthz_path, "healthz", healthz, methods=["GET", "HEAD"])
    blueprint.add_url_rule(settings.readiness_path, "readiness", readiness, methods=["GET", "HEAD"])
    blueprint.add_url_rule(
        f"{settings.readiness_path}/report.css", "stylesheet", stylesheet, methods=["GET", "HEAD"]
    )
    return blueprint
