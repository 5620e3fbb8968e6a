"""headers.*: the security headers the app's responses carry, observed or probed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, Response, request

from flask_prodready.engine.observation import clear_probes

from ..support import messages_of

MakeApp = Callable[..., Flask]

STRICT = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
IDS = (
    "headers.hsts",
    "headers.csp",
    "headers.nosniff",
    "headers.framing",
    "headers.referrer_policy",
)


@pytest.fixture(autouse=True)
def _fresh_probes() -> None:
    clear_probes()


def with_headers(app: Flask, headers: dict[str, str]) -> Flask:
    """The app adds ``headers`` to every response in an after_request hook."""

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(headers)
        return response

    return app


class TestFromTheProbe:
    """From the CLI (and live before any traffic) one probe request is judged."""

    def test_naked_app_fires_all_five(self, make_app: MakeApp) -> None:
        """An app that sends no security header gets every headers.* finding."""
        app = make_app()
        for check_id in IDS:
            [(_, message)] = messages_of(app, check_id)
            assert "a probe response through the app's whole stack" in message, check_id

    def test_after_request_headers_are_seen(self, make_app: MakeApp) -> None:
        """Headers added by an after_request hook count: nothing fires."""
        app = with_headers(make_app(), STRICT)
        for check_id in IDS:
            assert messages_of(app, check_id) == [], check_id

    def test_wsgi_middleware_headers_are_seen(self, make_app: MakeApp) -> None:
        """Headers added by WSGI middleware around the app count too."""
        app = make_app()
        inner = app.wsgi_app

        def add_headers(environ, start_response):  # type: ignore[no-untyped-def]
            def start(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
                return start_response(status, [*headers, *STRICT.items()], exc_info)

            return inner(environ, start)

        app.wsgi_app = add_headers  # type: ignore[method-assign]
        assert messages_of(app, "headers.csp") == []


class TestHsts:
    def test_short_max_age_fires(self, make_app: MakeApp) -> None:
        """max-age of a day is under 180 days."""
        app = with_headers(make_app(), {**STRICT, "Strict-Transport-Security": "max-age=86400"})
        assert messages_of(app, "headers.hsts") == [
            ("warning", "Strict-Transport-Security has max-age=86400, under 180 days (15552000).")
        ]


class TestCsp:
    def test_unsafe_inline_scripts_fire(self, make_app: MakeApp) -> None:
        """'unsafe-inline' scripts defeat the policy."""
        app = with_headers(
            make_app(), {**STRICT, "Content-Security-Policy": "default-src 'self' 'unsafe-inline'"}
        )
        assert messages_of(app, "headers.csp") == [
            (
                "warning",
                "The Content-Security-Policy allows 'unsafe-inline' scripts: it does "
                "not stop injected scripts.",
            )
        ]

    def test_unsafe_inline_with_a_nonce_is_quiet(self, make_app: MakeApp) -> None:
        """A nonce makes browsers ignore 'unsafe-inline' (the usual fallback)."""
        app = with_headers(
            make_app(),
            {
                **STRICT,
                "Content-Security-Policy": "script-src 'nonce-abc' 'unsafe-inline'; "
                "frame-ancestors 'self'",
            },
        )
        assert messages_of(app, "headers.csp") == []


class TestFraming:
    def test_x_frame_options_alone_is_quiet(self, make_app: MakeApp) -> None:
        """X-Frame-Options: DENY without frame-ancestors passes."""
        app = with_headers(
            make_app(),
            {**STRICT, "Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "DENY"},
        )
        assert messages_of(app, "headers.framing") == []

    def test_csp_without_frame_ancestors_fires(self, make_app: MakeApp) -> None:
        """A CSP without frame-ancestors and no X-Frame-Options: framing allowed."""
        app = with_headers(make_app(), {**STRICT, "Content-Security-Policy": "default-src 'self'"})
        assert len(messages_of(app, "headers.framing")) == 1


class TestObservedTraffic:
    def test_judges_the_html_pages_served(self, make_app: MakeApp) -> None:
        """Live, the pages actually served are judged, naming how many lacked the header."""
        app = make_app()

        @app.route("/bare")
        def bare() -> Response:
            return Response("<p>hi</p>", content_type="text/html", headers={"X-Raw": "1"})

        @app.after_request  # registered first, so it runs after the hook adding headers
        def strip(response: Response) -> Response:
            if response.headers.get("X-Raw"):
                del response.headers["Content-Security-Policy"]
            return response

        with_headers(app, STRICT)

        client = app.test_client()
        for _ in range(4):
            client.get("/bare")
        for _ in range(8):
            client.get("/missing")  # a 404 page, with the header
        assert messages_of(app, "headers.csp", "live") == [
            ("warning", "No Content-Security-Policy on 4 of 12 HTML responses (for example /bare).")
        ]
        assert messages_of(app, "headers.hsts", "live") == []

    def test_one_strict_page_does_not_hide_weak_values(self, make_app: MakeApp) -> None:
        """100 pages with 'unsafe-inline' scripts and HSTS of 300 s, then one page with strict
        values: both still reported, naming the share."""
        app = make_app()
        weak = {
            **STRICT,
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'",
            "Strict-Transport-Security": "max-age=300",
        }

        @app.route("/page")
        def page() -> Response:
            strict = request.args.get("strict")
            return Response(
                "<p>hi</p>", content_type="text/html", headers=STRICT if strict else weak
            )

        client = app.test_client()
        for _ in range(100):
            client.get("/page")
        client.get("/page?strict=1")
        assert messages_of(app, "headers.csp", "live") == [
            (
                "warning",
                "The Content-Security-Policy allows 'unsafe-inline' scripts on 100 of 101 HTML "
                "responses: it does not stop injected scripts.",
            )
        ]
        assert messages_of(app, "headers.hsts", "live") == [
            (
                "warning",
                "Strict-Transport-Security has max-age=300, under 180 days (15552000) on 100 of "
                "101 HTML responses.",
            )
        ]

    def test_one_odd_page_raises_nothing(self, make_app: MakeApp) -> None:
        """One page without CSP among 30 that carry it: no finding; a second such page among
        them is still too few; the same page served 5 times is reported."""
        app = make_app()

        @app.route("/odd")
        def odd() -> Response:
            return Response("<p>odd</p>", content_type="text/html", headers={"X-Raw": "1"})

        @app.after_request  # registered first, so it runs after the hook adding headers
        def strip(response: Response) -> Response:
            if response.headers.get("X-Raw"):
                del response.headers["Content-Security-Policy"]
            return response

        with_headers(app, STRICT)
        client = app.test_client()
        for _ in range(40):
            client.get("/nothing-here")
        client.get("/odd")
        assert messages_of(app, "headers.csp", "live") == []
        for _ in range(4):
            client.get("/odd")
        assert messages_of(app, "headers.csp", "live") == [
            ("warning", "No Content-Security-Policy on 5 of 45 HTML responses (for example /odd).")
        ]


def test_nosniff_with_a_wrong_value(make_app: MakeApp) -> None:
    """A present but wrong X-Content-Type-Options is named as such."""
    app = with_headers(make_app(), {**STRICT, "X-Content-Type-Options": "sniff-away"})
    assert messages_of(app, "headers.nosniff") == [
        ("warning", "X-Content-Type-Options is 'sniff-away', not 'nosniff': browsers ignore it.")
    ]


def test_csp_without_script_rules(make_app: MakeApp) -> None:
    """A CSP with only frame-ancestors does not restrict scripts."""
    app = with_headers(make_app(), {**STRICT, "Content-Security-Policy": "frame-ancestors 'none'"})
    assert messages_of(app, "headers.csp") == [
        (
            "warning",
            "The Content-Security-Policy has neither script-src nor default-src: it "
            "does not restrict scripts at all.",
        )
    ]


class TestJudgedPerResponse:
    def test_pages_guarded_one_way_or_the_other_pass_framing(self, make_app: MakeApp) -> None:
        """20 pages guarded by X-Frame-Options only and 20 by CSP frame-ancestors only:
        every page is guarded, so no framing finding."""
        app = make_app()
        xfo = {k: v for k, v in STRICT.items() if k != "Content-Security-Policy"}
        xfo["X-Frame-Options"] = "DENY"
        csp = {**STRICT, "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"}

        @app.route("/p")
        def page() -> Response:
            headers = xfo if request.args.get("way") == "xfo" else csp
            return Response("<p>hi</p>", content_type="text/html", headers=headers)

        client = app.test_client()
        for _ in range(20):
            client.get("/p?way=xfo")
            client.get("/p?way=csp")
        assert messages_of(app, "headers.framing", "live") == []

    def test_a_weak_value_is_judged_on_all_the_pages(self, make_app: MakeApp) -> None:
        """10 pages, 9 with HSTS max-age=300 and 1 without HSTS: the weak value is reported
        on 9 of 10 (the one missing header alone is too few)."""
        app = make_app()

        @app.route("/p")
        def page() -> Response:
            short = {**STRICT, "Strict-Transport-Security": "max-age=300"}
            bare = {k: v for k, v in STRICT.items() if k != "Strict-Transport-Security"}
            headers = bare if request.args.get("bare") else short
            return Response("<p>hi</p>", content_type="text/html", headers=headers)

        client = app.test_client()
        for _ in range(9):
            client.get("/p")
        client.get("/p?bare=1")
        assert messages_of(app, "headers.hsts", "live") == [
            (
                "warning",
                "Strict-Transport-Security has max-age=300, under 180 days (15552000) on 9 of "
                "10 HTML responses.",
            )
        ]

    def test_a_long_policy_keeps_what_is_judged(self, make_app: MakeApp) -> None:
        """A CSP far longer than the value kept, with its nonce and frame-ancestors at the
        end: neither 'unsafe-inline' nor framing is reported."""
        hosts = " ".join(f"https://cdn{i}.example.com" for i in range(60))
        policy = (
            f"default-src 'self' {hosts}; img-src {hosts}; "
            f"script-src 'self' 'unsafe-inline' {hosts} 'nonce-abc123'; frame-ancestors 'none'"
        )
        assert len(policy) > 2000
        app = with_headers(make_app(), {**STRICT, "Content-Security-Policy": policy})
        client = app.test_client()
        for _ in range(12):
            client.get("/nothing-here")
        assert messages_of(app, "headers.csp", "live") == []
        assert messages_of(app, "headers.framing", "live") == []

    def test_a_long_policy_on_the_probe_keeps_what_is_judged(self, make_app: MakeApp) -> None:
        """From the command line the probe's long CSP is judged on its directives too: its
        frame-ancestors and nonce at the end are seen."""
        hosts = " ".join(f"https://cdn{i}.example.com" for i in range(60))
        policy = f"default-src 'self' {hosts}; script-src 'self' 'nonce-x'; frame-ancestors 'none'"
        app = with_headers(make_app(), {**STRICT, "Content-Security-Policy": policy})
        assert messages_of(app, "headers.framing") == []
        assert messages_of(app, "headers.csp") == []

    def test_frame_ancestors_must_be_a_directive(self, make_app: MakeApp) -> None:
        """A policy that only mentions frame-ancestors in another directive's value does not
        guard against framing."""
        policy = "default-src 'self'; report-uri /frame-ancestors"
        app = with_headers(make_app(), {**STRICT, "Content-Security-Policy": policy})
        assert len(messages_of(app, "headers.framing")) == 1
