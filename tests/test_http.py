"""HTTP behaviour of /healthz and /_readiness (SPEC §5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, session

from flask_prodready import CheckContext, Finding, ProdReady

from .stacks import needs_flask_31
from .support import TOKEN, result_of

BAD = {"DEBUG": True, "SECRET_KEY": "dev", "SESSION_COOKIE_HTTPONLY": False}


class TestHealthz:
    def test_get(self, make_app: Callable[..., Flask]) -> None:
        """/healthz answers 200 {"status": "pass"}, health+json, no-store, without auth."""
        response = make_app().test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json(force=True) == {"status": "pass"}
        assert response.headers["Content-Type"] == "application/health+json"
        assert response.headers["Cache-Control"] == "no-store"

    def test_head(self, make_app: Callable[..., Flask]) -> None:
        """HEAD /healthz answers 200 with no body."""
        response = make_app().test_client().head("/healthz")
        assert response.status_code == 200
        assert response.data == b""

    def test_says_nothing_even_on_a_bad_app(self, make_app: Callable[..., Flask]) -> None:
        """/healthz is liveness: a misconfigured app still answers pass, with no details."""
        response = make_app(**BAD).test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json(force=True) == {"status": "pass"}

    def test_never_sets_a_cookie(self, make_app: Callable[..., Flask]) -> None:
        """Even when the app writes the session in before_request, /healthz sets no cookie."""
        app = make_app()

        @app.before_request
        def touch_session() -> None:
            session["seen"] = True
            session.permanent = True

        @app.route("/page")
        def page() -> str:
            return "ok"

        client = app.test_client()
        assert "Set-Cookie" not in client.get("/healthz").headers
        assert "Set-Cookie" in client.get("/page").headers  # the hook does set one elsewhere

    def test_configured_checks_fail_with_503(self, make_app: Callable[..., Flask]) -> None:
        """A failing check named in PRODREADY_HEALTHZ_CHECKS makes /healthz 503 fail."""
        ext = ProdReady()
        healthy = {"value": False}

        @ext.check("demo.dependency", title="Dependency answers", level="critical")
        def dependency(ctx: CheckContext) -> Iterator[Finding]:
            if not healthy["value"]:
                yield ctx.finding("dependency down")

        app = make_app(ext, PRODREADY_HEALTHZ_CHECKS=["demo.dependency"], PRODREADY_CACHE_SECONDS=0)
        client = app.test_client()
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.get_json(force=True) == {"status": "fail"}
        healthy["value"] = True
        response = client.get("/healthz")
        assert (response.status_code, response.get_json(force=True)) == (200, {"status": "pass"})

    def test_configured_hanging_check_answers_within_timeout(
        self, make_app: Callable[..., Flask]
    ) -> None:
        """A hanging check named in PRODREADY_HEALTHZ_CHECKS gives 503 within the timeout."""
        ext = ProdReady()
        release = threading.Event()

        @ext.check("demo.hangs", title="Hangs")
        def hangs(ctx: CheckContext) -> None:
            release.wait(10)

        app = make_app(ext, PRODREADY_HEALTHZ_CHECKS=["demo"], PRODREADY_CHECK_TIMEOUT=0.5)
        started = time.monotonic()
        response = app.test_client().get("/healthz")
        release.set()
        assert time.monotonic() - started < 0.5 + 0.5
        assert response.status_code == 503

    def test_report_with_a_check_hanging_for_ever_answers_within_timeout(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """/_readiness with a blocking check that never returns answers 503 within the check
        timeout plus 2 s, naming check_timeout, every time it is asked."""
        ext = ProdReady()
        forever = threading.Event()

        @ext.check("demo.forever", title="Never returns", blocking=True)
        def never(ctx: CheckContext) -> None:
            forever.wait()

        app = make_app(ext, PRODREADY_CHECK_TIMEOUT=0.5, PRODREADY_CACHE_SECONDS=0)
        client = app.test_client()
        for _ in range(3):
            started = time.monotonic()
            response = client.get("/_readiness?tag=demo", headers=auth)
            assert time.monotonic() - started < 0.5 + 2.0
            assert response.status_code == 503
            assert [f["id"] for f in response.get_json(force=True)["findings"]] == [
                "prodready.check_timeout"
            ]

    def test_custom_path(self, make_app: Callable[..., Flask]) -> None:
        """PRODREADY_HEALTHZ_PATH moves the endpoint."""
        client = make_app(PRODREADY_HEALTHZ_PATH="/livez").test_client()
        assert client.get("/livez").status_code == 200
        assert client.get("/healthz").status_code == 404


class TestReadinessAuth:
    def test_no_token_configured_is_404(self, make_app: Callable[..., Flask]) -> None:
        """Without PRODREADY_TOKEN the report does not exist: 404, even with a header."""
        client = make_app(PRODREADY_TOKEN=None).test_client()
        assert client.get("/_readiness").status_code == 404
        assert client.get("/_readiness", headers={"Authorization": "Bearer x"}).status_code == 404
        assert client.get("/_readiness/report.css").status_code == 404

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Bearer",
            "Bearer ",
            f"Basic {TOKEN}",
            f"Token {TOKEN}",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            "Bearer " + "x" * 5000,
            "Bearer wrong-token-of-decent-length",
        ],
    )
    def test_anything_but_the_token_is_401(
        self, make_app: Callable[..., Flask], header: str | None
    ) -> None:
        """Missing, malformed, Basic or wrong credentials: 401 with WWW-Authenticate: Bearer."""
        headers = {} if header is None else {"Authorization": header}
        response = make_app().test_client().get("/_readiness", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.get_data(as_text=True)

    def test_scheme_is_case_insensitive(self, make_app: Callable[..., Flask]) -> None:
        """The auth scheme is case-insensitive (RFC 7235): 'bearer <token>' opens the report."""
        response = (
            make_app()
            .test_client()
            .get("/_readiness", headers={"Authorization": f"bearer {TOKEN}"})
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("param", ["token", "access_token", "TOKEN"])
    def test_token_in_query_string_is_refused(
        self, make_app: Callable[..., Flask], param: str
    ) -> None:
        """The token is never accepted in the query string, even when it is right."""
        response = make_app().test_client().get(f"/_readiness?{param}={TOKEN}")
        assert response.status_code == 400
        assert "query string" in response.get_json()["error"]
        assert TOKEN not in response.get_data(as_text=True)

    @pytest.mark.parametrize(
        "query", ["api_key=x", "apikey=x", "key=x", "API-Key=x", "%61pi_key=x", "Bearer=x"]
    )
    def test_key_like_query_parameters_are_refused_like_token(
        self, make_app: Callable[..., Flask], auth: dict[str, str], query: str
    ) -> None:
        """api_key=, apikey=, key= (any case, '-' for '_', percent-encoded) answer the 400 that
        token= gets, with or without the header, instead of 401."""
        client = make_app().test_client()
        expected = client.get("/_readiness?token=x").get_json()
        for headers in ({}, auth):
            response = client.get(f"/_readiness?{query}", headers=headers)
            assert response.status_code == 400
            assert response.get_json() == expected

    def test_good_app_is_200(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """With the token, a well-configured app's report is 200 pass or warn."""
        response = make_app().test_client().get("/_readiness", headers=auth)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/health+json"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.get_json(force=True)["status"] in {"pass", "warn"}


class TestReadinessReport:
    def test_bad_app_is_503_with_findings_and_no_secret(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """A bad app's report is 503 fail, names its findings, and shows no key or token."""
        app = make_app(**{**BAD, "SECRET_KEY": "dev-key-change-me-0123456789abcdef"})
        response = app.test_client().get("/_readiness", headers=auth)
        assert response.status_code == 503
        body = response.get_json(force=True)
        assert body["status"] == "fail"
        ids = {f["id"] for f in body["findings"]}
        assert {"config.debug", "config.secret_key_weak", "cookies.session_httponly"} <= ids
        assert set(body) >= {
            "status",
            "findings",
            "checks",
            "summary",
            "worker",
            "generated_at",
            "cached",
        }
        assert result_of(body, "config.debug") == "fail"
        assert result_of(body, "tls.http_redirect") == "skipped"
        assert body["summary"]["critical"] >= 1
        assert body["worker"]["pid"] > 0
        assert body["worker"]["hostname"]
        text = response.get_data(as_text=True)
        assert "dev-key-change-me-0123456789abcdef" not in text
        assert TOKEN not in text

    def test_worker_names_the_server(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """The report's worker carries the SERVER_SOFTWARE the request came through."""
        response = (
            make_app()
            .test_client()
            .get("/_readiness", headers=auth, environ_base={"SERVER_SOFTWARE": "gunicorn/23.0.0"})
        )
        assert response.get_json(force=True)["worker"]["server"] == "gunicorn/23.0.0"

    def test_tag_and_exclude_narrow_the_run(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """?tag= selects checks by tag; ?exclude= drops ids."""
        client = make_app(**BAD).test_client()
        body = client.get(
            "/_readiness?tag=cookies&exclude=cookies.session_secure", headers=auth
        ).get_json(force=True)
        assert set(body["checks"]) == {
            "cookies.session_httponly",
            "cookies.session_samesite",
            "cookies.remember_secure",
            "cookies.observed_insecure",
        }

    @pytest.mark.parametrize(
        ("query", "needle"),
        [
            ("tag=nope", "unknown tag 'nope'"),
            ("tag=", "empty tag= value"),
            ("exclude=config.nope", "unknown check id 'config.nope'"),
            ("format=xml", "unknown format 'xml'"),
            ("format=json&format=html", "format= given more than once"),
            ("tag=" + "a" * 500, "too long"),
            ("tag=%ff%fe", "unknown tag"),  # Werkzeug keeps undecodable escapes as text
            ("verbose=1", "unknown query parameter 'verbose'"),
        ],
    )
    def test_bad_query_is_400_json(
        self, make_app: Callable[..., Flask], auth: dict[str, str], query: str, needle: str
    ) -> None:
        """Unknown, empty, undecodable or oversized query values answer 400 naming the problem."""
        response = (
            make_app()
            .test_client()
            .get("/_readiness", environ_overrides={"QUERY_STRING": query}, headers=auth)
        )
        assert response.status_code == 400
        assert response.headers["Content-Type"] == "application/json"
        assert needle in response.get_json()["error"]

    def test_html_for_browsers(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """Accept: text/html gives the report as a page linking its own stylesheet."""
        client = make_app(**BAD).test_client()
        response = client.get("/_readiness", headers={**auth, "Accept": "text/html,*/*;q=0.8"})
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = response.get_data(as_text=True)
        assert "config.debug" in page
        assert "cookies.session_httponly" in page
        assert '<link rel="stylesheet" href="/_readiness/report.css">' in page
        assert "<script" not in page
        assert "style=" not in page
        assert "<style" not in page
        css = client.get("/_readiness/report.css")
        assert css.status_code == 200
        assert css.headers["Content-Type"] == "text/css; charset=utf-8"

    def test_html_under_a_strict_app_csp(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """The page carries its own strict CSP (the app's after_request hook does not run
        for it) and needs nothing inline."""
        app = make_app()

        @app.after_request
        def strict_csp(response):  # type: ignore[no-untyped-def]
            response.headers["Content-Security-Policy"] = "default-src 'self'"
            return response

        response = app.test_client().get("/_readiness?format=html", headers=auth)
        assert response.headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'"
        )
        page = response.get_data(as_text=True)
        assert "<script" not in page
        assert "style=" not in page
        assert "<style" not in page

    def test_json_is_the_default_for_curl(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """Accept: */* (curl) gets JSON."""
        response = make_app().test_client().get("/_readiness", headers={**auth, "Accept": "*/*"})
        assert response.headers["Content-Type"] == "application/health+json"

    def test_no_cookie_on_the_report(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """The report never sets a cookie either."""
        app = make_app()

        @app.before_request
        def touch_session() -> None:
            session["seen"] = True

        assert "Set-Cookie" not in app.test_client().get("/_readiness", headers=auth).headers


class TestSharedRuns:
    def test_concurrent_requests_share_one_run(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """Twelve concurrent requests run a slow check once and all get the report."""
        ext = ProdReady()
        runs: list[int] = []

        @ext.check("demo.slow", title="Slow")
        def slow(ctx: CheckContext) -> None:
            runs.append(1)
            time.sleep(0.5)

        app = make_app(ext, PRODREADY_CACHE_SECONDS=30)
        barrier = threading.Barrier(12)
        codes: list[tuple[int, bool]] = []

        def ask() -> None:
            client = app.test_client()
            barrier.wait()
            response = client.get("/_readiness?tag=demo", headers=auth)
            codes.append((response.status_code, response.get_json(force=True)["cached"]))

        threads = [threading.Thread(target=ask) for _ in range(12)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert time.monotonic() - started < 2.0 + 1.0
        assert len(runs) == 1
        assert [code for code, _ in codes] == [200] * 12
        assert sum(1 for _, cached in codes if not cached) == 1

    def test_cache_expires(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """With PRODREADY_CACHE_SECONDS = 0 every request runs the checks again."""
        app = make_app(PRODREADY_CACHE_SECONDS=0)
        client = app.test_client()
        first = client.get("/_readiness", headers=auth).get_json(force=True)
        second = client.get("/_readiness", headers=auth).get_json(force=True)
        assert first["cached"] is False
        assert second["cached"] is False

    def test_cached_report_is_marked(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """A second request within the cache period gets the same report, marked cached."""
        client = make_app(PRODREADY_CACHE_SECONDS=30).test_client()
        first = client.get("/_readiness", headers=auth).get_json(force=True)
        second = client.get("/_readiness", headers=auth).get_json(force=True)
        assert (first["cached"], second["cached"]) == (False, True)
        assert first["generated_at"] == second["generated_at"]


def test_app_routes_survive_a_crashing_check(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    """A crashing check shows as check_crashed in the report, with no traceback over HTTP."""
    ext = ProdReady()

    @ext.check("demo.crashes", title="Crashes")
    def crashes(ctx: CheckContext) -> None:
        raise ZeroDivisionError("division by zero")

    app = make_app(ext)

    @app.route("/page")
    def page() -> str:
        return "ok"

    client = app.test_client()
    response = client.get("/_readiness", headers=auth)
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "prodready.check_crashed" in text
    assert "Traceback" not in text
    assert 'File "' not in text
    assert client.get("/page").data == b"ok"


@needs_flask_31
def test_healthz_answers_probes_outside_trusted_hosts(make_app: Callable[..., Flask]) -> None:
    """A probe whose Host is the pod IP gets /healthz even with TRUSTED_HOSTS set, while the
    app's own routes still refuse that Host."""
    app = make_app(TRUSTED_HOSTS=["app.example.com"])

    @app.route("/page")
    def page() -> str:
        return "ok"

    client = app.test_client()
    probe = client.get("/healthz", headers={"Host": "10.1.2.3:8000"})
    assert probe.status_code == 200
    assert probe.get_json(force=True) == {"status": "pass"}
    assert client.get("/page", headers={"Host": "10.1.2.3:8000"}).status_code == 400


def test_healthz_other_methods_reach_flask(make_app: Callable[..., Flask]) -> None:
    """POST /healthz is not answered by the liveness shortcut: Flask says 405."""
    assert make_app().test_client().post("/healthz").status_code == 405


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_no_secret_in_any_body(
    make_app: Callable[..., Flask], auth: dict[str, str], fmt: str
) -> None:
    """Secrets a check tries to print (key, DB password, token) are masked in JSON and HTML."""
    key = "k3y-" + "Zq9" * 12
    password = "db-pa55word-xyz"
    ext = ProdReady()

    @ext.check("demo.chatty", title="Prints everything")
    def chatty(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding(
            f"key={ctx.config['SECRET_KEY']} token={ctx.config['PRODREADY_TOKEN']}",
            hint=f"url={ctx.config['SQLALCHEMY_DATABASE_URI']}",
            observed={"password": password},
        )
        raise RuntimeError(f"and the crash says {password}")

    app = make_app(
        ext, SECRET_KEY=key, SQLALCHEMY_DATABASE_URI=f"postgresql://app:{password}@127.0.0.1/db"
    )
    client = app.test_client()
    bodies = [
        client.get(f"/_readiness?format={fmt}", headers=auth).get_data(as_text=True),
        client.get(f"/_readiness?format={fmt}&tag={key}", headers=auth).get_data(as_text=True),
        client.get("/_readiness").get_data(as_text=True),
        client.get("/healthz").get_data(as_text=True),
    ]
    assert "demo.chatty" in bodies[0]
    assert "prodready.check_crashed" in bodies[0]
    for body in bodies:
        for secret in (key, password, TOKEN):
            assert secret not in body


def test_stylesheet_link_honours_script_name(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    """Mounted under a prefix, the page links its stylesheet under that prefix."""
    response = (
        make_app()
        .test_client()
        .get("/_readiness?format=html", headers=auth, environ_overrides={"SCRIPT_NAME": "/shop"})
    )
    assert 'href="/shop/_readiness/report.css"' in response.get_data(as_text=True)


def test_report_that_cannot_be_built_is_503_json(
    make_app: Callable[..., Flask], auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If building the report itself fails, /_readiness answers 503 JSON, not a 500."""
    app = make_app()
    state = app.extensions["prodready"]

    def broken(*args: object, **kwargs: object) -> None:
        raise TimeoutError

    monkeypatch.setattr(state, "build_report", broken)
    response = app.test_client().get("/_readiness", headers=auth)
    assert response.status_code == 503
    assert response.get_json() == {"error": "the report could not be built; see the server log"}


def test_remote_check_in_healthz_checks_is_logged(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """Naming a remote-only check (tls.*) in PRODREADY_HEALTHZ_CHECKS logs a warning at start;
    a tag that also selects one does not."""
    with caplog.at_level("WARNING", logger="flask_prodready"):
        make_app(PRODREADY_HEALTHZ_CHECKS=["tls.http_redirect", "security"])
    assert caplog.messages == [
        "PRODREADY_HEALTHZ_CHECKS names tls.http_redirect, which cannot judge in the running "
        "server (see `flask readiness --list`): /healthz reports them as skipped and cannot "
        "fail on them"
    ]


def test_followers_wait_as_long_as_the_slowest_check(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    """A request joining a run whose check has a long timeout of its own gets the report,
    not a 503, even though PRODREADY_CHECK_TIMEOUT is short."""
    ext = ProdReady()

    @ext.check("demo.deliberate", title="Slow by nature", timeout=10.0)
    def deliberate(ctx: CheckContext) -> None:
        time.sleep(1.5)  # longer than PRODREADY_CHECK_TIMEOUT plus the waiting margin

    app = make_app(ext, PRODREADY_CHECK_TIMEOUT=0.2, PRODREADY_CACHE_SECONDS=30)
    codes: list[int] = []
    barrier = threading.Barrier(3)

    def ask() -> None:
        client = app.test_client()
        barrier.wait()
        codes.append(client.get("/_readiness?tag=demo", headers=auth).status_code)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert codes == [200, 200, 200]


def test_html_links_only_catalogue_checks(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    """The page links built-in checks to their reference; a custom check has no dead link."""
    ext = ProdReady()

    @ext.check("myapp.thing", title="Mine")
    def thing(ctx: CheckContext) -> Iterator[Finding]:
        yield ctx.finding("custom finding")

    app = make_app(ext, DEBUG=True)
    page = app.test_client().get("/_readiness?format=html", headers=auth).get_data(as_text=True)
    assert "checks.md#configdebug" in page
    assert '<span class="check-id">myapp.thing</span>' in page
    assert "#myappthing" not in page


def test_cached_hits_reuse_the_rendered_body(
    make_app: Callable[..., Flask], auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report served from the cache is rendered once, not on every hit."""
    import flask_prodready.web.views as views

    calls: list[int] = []
    real = views.render

    def counting(report, output_format, **options):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(report, output_format, **options)

    monkeypatch.setattr(views, "render", counting)
    client = make_app(PRODREADY_CACHE_SECONDS=30).test_client()
    bodies = [client.get("/_readiness", headers=auth).get_data() for _ in range(5)]
    assert len(calls) == 2  # the fresh report, then the cached copy once
    assert len(set(bodies[1:])) == 1
    assert b'"cached": true' in bodies[-1]
