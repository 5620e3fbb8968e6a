"""The HTTP front end: ``/healthz`` for monitors and the protected ``/_readiness`` report.

``/healthz`` is kept as cheap as a bare route: a constant body, no report, no I/O,
unless ``PRODREADY_HEALTHZ_CHECKS`` asks for checks. ``/_readiness`` answers 404 while
no token is configured, 401 to anything but the exact bearer token, and 400 with a JSON
error to any query it does not understand. Neither route ever sets a cookie.

Both are answered by the middleware in front of the app (see
:mod:`flask_prodready.web.middleware`), so that the app's own request hooks (a login
wall, a setup-wizard redirect, a rate limit, a forced-https redirect, a CSRF check) never
stand between the token holder and the report: :class:`ReportEndpoint` works on the WSGI
environ alone. The Flask routes of the same paths stay registered (``url_for``,
``flask routes``) and answer the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Request

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
#: Query parameter names that look like a token (compared URL-decoded, in lower case,
#: with "-" read as "_"): refused with a 400, because URLs end up in logs.
TOKEN_PARAMETERS = frozenset(
    {
        "token",
        "access_token",
        "bearer",
        "auth",
        "authorization",
        "api_key",
        "apikey",
        "key",
    }
)
#: Report statuses answered with 503: a failing report, and one no check could judge
#: (a readiness probe must not take "could not tell" for ready).
NOT_READY = frozenset({Status.FAIL, Status.UNKNOWN})
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


def _parameter_name(name: str) -> str:
    """A query parameter's name as compared with :data:`TOKEN_PARAMETERS` (Werkzeug has
    already URL-decoded it): ``API-Key`` and ``%61pi_key`` are both ``api_key``."""
    return name.strip().lower().replace("-", "_")


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE_LENGTH else value[:SHOWN_VALUE_LENGTH] + "..."


class ReportEndpoint:
    """``/_readiness`` and its stylesheet for one app, answered from the WSGI environ.

    It needs no request context, so it can answer in front of the app's hooks; what it
    keeps between requests is bounded (rendered bodies of cached reports, the format each
    ``Accept`` header negotiated to).
    """

    def __init__(self, app: Flask, state: AppState) -> None:
        self.app = app
        self.state = state
        self.response_class = _no_cookie_response_class(app)
        self.readiness_path = state.settings.readiness_path
        self.stylesheet_path = f"{state.settings.readiness_path}/report.css"
        # A cached report is one object for every hit: its rendered body is kept beside
        # it, so serving from the cache renders nothing. A new report replaces the old.
        self._bodies: dict[tuple[str, ...], tuple[Report, bytes]] = {}
        self._negotiated: dict[str, str] = {}

    def handles(self, path: str) -> bool:
        return path == self.readiness_path or path == self.stylesheet_path

    def answer(self, environ: dict[str, Any]) -> Response:
        """The answer to a GET or HEAD of the report or its stylesheet."""
        if environ.get("PATH_INFO") == self.stylesheet_path:
            return self.stylesheet()
        return self.readiness(environ)

    def _rendered(self, report: Report, variant: tuple[str, ...], make: Callable[[], str]) -> bytes:
        kept = self._bodies.get(variant)
        if kept is not None and kept[0] is report:
            return kept[1]
        body = make().encode("utf-8")
        if report.cached:  # only cached reports come back; a fresh one is rendered once
            if len(self._bodies) >= MAX_RENDERED:
                self._bodies.clear()
            self._bodies[variant] = (report, body)
        return body

    def respond(
        self, body: str | bytes, status: int, content_type: str, **headers: str
    ) -> Response:
        return self.response_class(
            body,
            status=status,
            headers=[*REPORT_HEADERS, *headers.items()],
            content_type=content_type,
        )

    def error(self, status: int, message: str, **extra: Any) -> Response:
        # Values echoed from the query go through redaction like every other output; the
        # keys are the body's structure and are never masked. The fixed answers (401,
        # 404) echo nothing and need no redactor.
        payload: dict[str, Any] = {"error": message, **extra}
        if status == 400:
            redactor = Redactor.for_config(self.app.config)
            payload = {key: redactor.value(value) for key, value in payload.items()}
        body = json.dumps(payload, ensure_ascii=True) + "\n"
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="prodready"'
        return self.respond(body, status, "application/json", **headers)

    def _parse_query(self, args: Any) -> tuple[list[str], list[str], str | None]:
        registry = self.state.registry
        unknown = sorted(set(args) - QUERY_PARAMETERS)
        if unknown:
            raise _BadRequest(
                f"unknown query parameter {_shown(unknown[0])!r}; use tag=, exclude= or format=",
                parameter=_shown(unknown[0]),
            )
        values: dict[str, list[str]] = {}
        for name in ("tag", "exclude", "format"):
            values[name] = args.getlist(name)
            for value in values[name]:
                if not value.strip():
                    raise _BadRequest(f"empty {name}= value", parameter=name)
                if len(value) > MAX_VALUE_LENGTH or "\ufffd" in value:
                    raise _BadRequest(
                        f"{name}= value is too long or not valid UTF-8",
                        parameter=name,
                        value=_shown(value),
                    )
        for tag in registry.unknown_tags(values["tag"]):
            raise _BadRequest(
                f"unknown tag {tag!r}", parameter="tag", value=tag, known=sorted(registry.tags)
            )
        for check_id in registry.unknown_ids(values["exclude"]):
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

    def _negotiate(self, accept: str) -> str:
        chosen = self._negotiated.get(accept)
        if chosen is None:
            best = _without_parameters(parse_accept_header(accept, MIMEAccept)).best_match(
                ["application/json", HEALTH_JSON, "text/html", OPENMETRICS],
                default="application/json",
            )
            chosen = {"text/html": "html", OPENMETRICS: "openmetrics"}.get(best, "json")
            if len(self._negotiated) >= MAX_NEGOTIATED:
                self._negotiated.clear()
            self._negotiated[accept] = chosen
        return chosen

    def _authorised(self, environ: dict[str, Any]) -> bool:
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        # Only spaces and tabs (RFC 9110's whitespace): str.strip() would also drop a
        # no-break space or other Latin-1 bytes, and the token must be sent exactly.
        token = credentials.strip(" \t")
        return scheme.lower() == "bearer" and bool(token) and self.state.token_matches(token)

    def readiness(self, environ: dict[str, Any]) -> Response:
        # Kept lean: a monitor polling a cached report should cost about a bare route.
        state = self.state
        if state.settings.token is None:
            return self.error(404, "not found")
        tags: list[str] = []
        exclude: list[str] = []
        fmt: str | None = None
        query = environ.get("QUERY_STRING")
        args: Any = None
        if query:
            try:
                args = Request(environ).args
                names = list(args)
            except UnicodeDecodeError:  # raw bytes that are not UTF-8: Werkzeug is strict
                return self.error(400, "the query string is not valid UTF-8; percent-encode it")
            if TOKEN_PARAMETERS.intersection(_parameter_name(k) for k in names):
                return self.error(
                    400,
                    "the token is never accepted in the query string (URLs are "
                    "logged); send it as 'Authorization: Bearer <token>'",
                )
        if not self._authorised(environ):
            return self.error(401, "a valid 'Authorization: Bearer <token>' header is required")
        if args is not None:
            try:
                tags, exclude, fmt = self._parse_query(args)
            except _BadRequest as bad:
                return self.error(400, bad.message, **bad.details)

        seen = {k: environ[k] for k in ENVIRON_KEYS if k in environ}
        try:
            report: Report = state.cached_report(
                self.app,
                key=("readiness", tuple(sorted(set(tags))), tuple(sorted(set(exclude)))),
                checks=lambda: state.registry.select(tags, exclude),
                server_software=seen.get("SERVER_SOFTWARE"),
                environ=seen,
            )
        except Exception as exc:  # the report endpoint answers, whatever happened
            logger.error("flask-prodready could not build the report: %s", type(exc).__name__)
            return self.error(503, "the report could not be built; see the server log")
        code = 503 if report.status in NOT_READY else 200
        accept = environ.get("HTTP_ACCEPT")
        chosen = fmt if fmt is not None else self._negotiate(accept) if accept else "json"
        if chosen == "openmetrics":
            # Always 200: a scraper drops the body of any other answer, and the status
            # is in the metrics (prodready_status).
            body = self._rendered(report, ("openmetrics",), lambda: render(report, "openmetrics"))
            return self.respond(body, 200, OPENMETRICS_CONTENT_TYPE)
        if chosen == "html":
            # Under the prefix the app is mounted at, as url_for would build it.
            stylesheet = environ.get("SCRIPT_NAME", "").rstrip("/") + self.stylesheet_path
            page = self._rendered(
                report,
                ("html", stylesheet),
                lambda: render(report, "html", stylesheet_url=stylesheet, registry=state.registry),
            )
            return self.respond(
                page,
                code,
                "text/html; charset=utf-8",
                **{"Content-Security-Policy": HTML_CSP},
            )
        body = self._rendered(report, ("json",), lambda: render(report, "json"))
        return self.respond(body, code, HEALTH_JSON)

    def stylesheet(self) -> Response:
        if self.state.settings.token is None:
            return self.error(404, "not found")
        response = self.respond(stylesheet_text(), 200, "text/css; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def make_blueprint(app: Flask, settings: Settings, endpoint: ReportEndpoint) -> Blueprint:
    """The routes for one app, at the paths its config names.

    The middleware answers GET and HEAD of these paths before the app; the routes answer
    the same way when reached otherwise, and make ``url_for("prodready.readiness")`` work.
    """
    blueprint = Blueprint("prodready", __name__)

    def healthz() -> Response:
        app_obj = current_app._get_current_object()  # type: ignore[attr-defined]
        code, body = healthz_answer(
            app_obj, get_state(app_obj), request.environ.get("SERVER_SOFTWARE")
        )
        return endpoint.respond(body, code, HEALTH_JSON)

    def readiness() -> Response:
        return endpoint.readiness(request.environ)

    def stylesheet() -> Response:
        return endpoint.stylesheet()

    blueprint.add_url_rule(settings.healthz_path, "healthz", healthz, methods=["GET", "HEAD"])
    blueprint.add_url_rule(settings.readiness_path, "readiness", readiness, methods=["GET", "HEAD"])
    blueprint.add_url_rule(
        f"{settings.readiness_path}/report.css", "stylesheet", stylesheet, methods=["GET", "HEAD"]
    )
    return blueprint
