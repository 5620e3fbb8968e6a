"""proxy.*: forwarded headers as the app receives them, through the real middleware and
Flask (the test client sends what a proxy would; tests/integration has real nginx)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_prodready.checks.proxy import proxy_trust, wsgi_chain

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
PROXY = "127.0.0.1"
CLIENT = "127.0.0.2"


def serve(app: Flask, count: int = 3, **headers: str) -> None:
    """Send ``count`` requests to an app route as if through a proxy at 127.0.0.1."""

    @app.route("/whoami")
    def whoami() -> str:
        return f"{request.remote_addr} {request.scheme}"

    client = app.test_client()
    for _ in range(count):
        # Plain http between proxy and app (the test client would follow
        # PREFERRED_URL_SCHEME, https in the good config).
        client.get(
            "/whoami",
            base_url="http://localhost",
            headers=headers,
            environ_base={"REMOTE_ADDR": PROXY},
        )


def behind(app: Flask, **trust: int) -> Flask:
    app.wsgi_app = ProxyFix(app.wsgi_app, **trust)  # type: ignore[method-assign]
    return app


class TestMissingProxyFix:
    def test_fires_when_forwarded_headers_are_ignored(self, make_app: MakeApp) -> None:
        """X-Forwarded-For arriving at an app without ProxyFix is an error."""
        app = make_app()
        serve(app, **{"X-Forwarded-For": CLIENT})
        [(level, message)] = messages_of(app, "proxy.missing_proxyfix", "live")
        assert level == "error"
        assert message.startswith(
            "Requests arrive through a proxy with X-Forwarded-For (3 requests), but nothing in "
            "the WSGI chain trusts those headers"
        )

    def test_quiet_with_proxyfix(self, make_app: MakeApp) -> None:
        """ProxyFix(x_for=1, x_proto=1) trusts them: no finding."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.missing_proxyfix", "live") == []

    def test_quiet_without_a_proxy(self, make_app: MakeApp) -> None:
        """Direct traffic without forwarded headers: nothing to trust, no finding."""
        app = make_app()
        serve(app)
        assert messages_of(app, "proxy.missing_proxyfix", "live") == []

    def test_skipped_without_traffic(self, make_app: MakeApp) -> None:
        """With no request seen yet the check cannot judge: skipped."""
        assert outcome_of(make_app(), "proxy.missing_proxyfix", "live").status.value == "skipped"

    def test_health_endpoints_are_not_traffic(
        self, make_app: MakeApp, auth: dict[str, str]
    ) -> None:
        """Requests to /healthz and /_readiness are not counted as traffic."""
        app = make_app()
        client = app.test_client()
        client.get("/healthz", headers={"X-Forwarded-For": CLIENT})
        client.get("/_readiness", headers={**auth, "X-Forwarded-For": CLIENT})
        assert outcome_of(app, "proxy.missing_proxyfix", "live").status.value == "skipped"


class TestNoForwardedProto:
    def test_fires(self, make_app: MakeApp) -> None:
        """X-Forwarded-For without X-Forwarded-Proto is a warning."""
        app = behind(make_app(), x_for=1)
        serve(app, **{"X-Forwarded-For": CLIENT})
        assert messages_of(app, "proxy.no_forwarded_proto", "live") == [
            (
                "warning",
                "3 requests came through a proxy (X-Forwarded-For) without "
                "X-Forwarded-Proto: the app cannot tell HTTPS from HTTP, so secure "
                "cookies, redirects and external URLs go wrong.",
            )
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """Both headers: no finding."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.no_forwarded_proto", "live") == []


class TestSchemeMismatch:
    def test_fires(self, make_app: MakeApp) -> None:
        """The proxy says https, the app sees http: an error."""
        app = behind(make_app(), x_for=1, x_proto=0)
        serve(app, 2, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        [(level, message)] = messages_of(app, "proxy.scheme_mismatch", "live")
        assert level == "error"
        assert message.startswith("The proxy said https (X-Forwarded-Proto) on 2 requests")

    def test_quiet(self, make_app: MakeApp) -> None:
        """x_proto=1 makes the app see https."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.scheme_mismatch", "live") == []


class TestTooManyHops:
    def test_fires_when_trusting_more_hops_than_seen(self, make_app: MakeApp) -> None:
        """x_for=3 behind a single proxy (chains of 1) lets clients pick their address."""
        app = behind(make_app(), x_for=3, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        [(level, message)] = messages_of(app, "proxy.too_many_hops", "live")
        assert level == "warning"
        assert message.startswith(
            "ProxyFix trusts 3 X-Forwarded-For hops, but requests arrive with chains of 1"
        )

    def test_fires_when_reached_directly(self, make_app: MakeApp) -> None:
        """x_for=1 with no X-Forwarded-For at all: the app is reached directly."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app)
        [(_, message)] = messages_of(app, "proxy.too_many_hops", "live")
        assert "none of 3 requests carried the header" in message

    def test_quiet(self, make_app: MakeApp) -> None:
        """x_for=1 behind one proxy: no finding."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.too_many_hops", "live") == []


def test_chain_finds_proxyfix_inside_and_outside(make_app: MakeApp) -> None:
    """ProxyFix is found whether it wraps ProdReady's middleware or sits inside it."""
    outside = behind(make_app(), x_for=2, x_proto=1)
    assert proxy_trust(outside) is not None
    assert proxy_trust(outside).x_for == 2  # type: ignore[union-attr]
    inside = Flask("inside")
    inside.wsgi_app = ProxyFix(inside.wsgi_app, x_for=1)  # type: ignore[method-assign]
    from flask_prodready import ProdReady

    ProdReady(inside)
    names = [type(layer).__name__ for layer in wsgi_chain(inside)]
    assert names == ["ProdReadyMiddleware", "ProxyFix"]
    assert proxy_trust(inside).x_for == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("count", [1, 50])
def test_observation_counts_every_response(make_app: MakeApp, count: int) -> None:
    """Each response is counted once."""
    app = make_app()
    serve(app, count)
    assert app.extensions["prodready"].traffic.snapshot().requests == count
