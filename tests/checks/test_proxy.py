"""proxy.*: forwarded headers as the app receives them, through the real middleware and
Flask (the test client sends what a proxy would; tests/integration has real nginx)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_prodready.checks.proxy import proxy_trust, wsgi_chain
from flask_prodready.engine.server import GunicornSettings

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]
PROXY = "127.0.0.1"
CLIENT = "127.0.0.2"


def serve(
    app: Flask, count: int = 12, peer: str = PROXY, scheme: str = "http", **headers: str
) -> None:
    """Send ``count`` requests to an app route from the direct peer ``peer`` (a proxy at
    127.0.0.1 by default); 12 is above the minimum sample of a live verdict. ``scheme`` is
    the one the server hands the app (``https``: as gunicorn does for a trusted proxy)."""

    if "whoami" not in app.view_functions:

        @app.route("/whoami")
        def whoami() -> str:
            return f"{request.remote_addr} {request.scheme}"

    client = app.test_client()
    for _ in range(count):
        # Plain http between proxy and app (the test client would follow
        # PREFERRED_URL_SCHEME, https in the good config).
        client.get(
            "/whoami",
            base_url=f"{scheme}://localhost",
            headers=headers,
            environ_base={"REMOTE_ADDR": peer},
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
        assert message == (
            "Requests arrive through a proxy (127.0.0.1) with X-Forwarded-For (12 of 12 "
            "requests), but nothing in the WSGI chain trusts it: the app gets the client's "
            "address wrong (request.remote_addr is the proxy's), so rate limits and logs see "
            "the proxy instead of the client."
        )

    def test_names_both_parts_when_both_are_wrong(self, make_app: MakeApp) -> None:
        """X-Forwarded-For and X-Forwarded-Proto https both ignored: the message names the
        address and the scheme."""
        app = make_app()
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.missing_proxyfix", "live") == [
            (
                "error",
                "Requests arrive through a proxy (127.0.0.1) with X-Forwarded-For (12 of 12 "
                "requests) and X-Forwarded-Proto (12 of 12 requests), but nothing in the WSGI "
                "chain trusts them: the app gets the client's address and the scheme wrong "
                "(request.remote_addr and request.scheme are the proxy's), so rate limits and "
                "logs see the proxy instead of the client, and url_for(_external=True) and "
                "redirects use the proxy's scheme.",
            )
        ]

    def test_names_gunicorn_when_it_applies_the_scheme(self, make_app: MakeApp) -> None:
        """Under gunicorn, whose forwarded_allow_ips trusts the proxy, the app sees https:
        only the address is wrong, and gunicorn is named as applying the scheme."""
        app = make_app()
        serve(app, scheme="https", **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        settings = GunicornSettings(
            workers=2,
            threads=1,
            worker_class="sync",
            worker_connections=1000,
            timeout=30,
            bind=("127.0.0.1:8000",),
            max_requests=0,
            max_requests_jitter=0,
            forwarded_allow_ips=("127.0.0.1", "::1"),
            preload_app=False,
            source="the running gunicorn",
        )
        messages = messages_of(
            app,
            "proxy.missing_proxyfix",
            "live",
            server_software="gunicorn/27.0.1",
            gunicorn=settings,
        )
        assert messages == [
            (
                "error",
                "Requests arrive through a proxy (127.0.0.1) with X-Forwarded-For (12 of 12 "
                "requests), but nothing in the WSGI chain trusts it: the app gets the client's "
                "address wrong (request.remote_addr is the proxy's), so rate limits and logs "
                "see the proxy instead of the client. The scheme is right: gunicorn's "
                "forwarded_allow_ips (127.0.0.1,::1) already applies X-Forwarded-Proto.",
            )
        ]

    def test_names_proxyfix_when_it_applies_the_address(self, make_app: MakeApp) -> None:
        """ProxyFix(x_for=1, x_proto=0) behind a proxy saying https: only the scheme is
        wrong, and ProxyFix is named as applying X-Forwarded-For."""
        app = behind(make_app(), x_for=1, x_proto=0)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.missing_proxyfix", "live") == [
            (
                "error",
                "Requests arrive through a proxy (127.0.0.1) with X-Forwarded-Proto (12 of 12 "
                "requests), but nothing in the WSGI chain trusts it: the app gets the scheme "
                "wrong (request.scheme is the proxy's), so url_for(_external=True) and "
                "redirects use the proxy's scheme. The client's address is right: "
                "ProxyFix(x_for=1) applies X-Forwarded-For.",
            )
        ]

    def test_forged_headers_from_a_direct_client_are_no_error(self, make_app: MakeApp) -> None:
        """A client reaching the app directly forges X-Forwarded-For/-Proto on 2 of 22
        requests: no error, only an info finding saying what they are."""
        app = make_app()
        serve(app, 20)
        serve(app, 2, **{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.missing_proxyfix", "live") == [
            (
                "info",
                "2 of 22 requests carried X-Forwarded-For or X-Forwarded-Proto from a peer "
                "that is not a proxy: clients that reach the server directly sent them, and "
                "they are not judged as a proxy's.",
            )
        ]
        assert messages_of(app, "proxy.scheme_mismatch", "live") == []

    def test_one_forged_request_raises_nothing(self, make_app: MakeApp) -> None:
        """One odd request among many raises no finding at all."""
        app = make_app()
        serve(app, 30)
        serve(app, 1, **{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.missing_proxyfix", "live") == []

    def test_a_few_requests_from_another_peer_steer_nothing(self, make_app: MakeApp) -> None:
        """Behind a proxy that ProxyFix trusts, a second peer sending X-Forwarded-For without
        X-Forwarded-Proto on 3 of 33 requests changes no verdict (they are a minority of
        the proxied traffic, judged by majority)."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, 30, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        serve(app, 3, peer="127.0.0.9", **{"X-Forwarded-For": "6.6.6.6"})
        for check_id in (
            "proxy.missing_proxyfix",
            "proxy.no_forwarded_proto",
            "proxy.scheme_mismatch",
            "proxy.too_many_hops",
        ):
            assert messages_of(app, check_id, "live") == [], check_id

    def test_several_proxies_are_judged_together(self, make_app: MakeApp) -> None:
        """Two load-balancer nodes, each carrying a good part of the traffic with
        X-Forwarded-For: both are proxies, none of their requests is taken for a client's,
        and an app that ignores the header is told so naming both."""
        app = make_app()
        serve(app, 60, **{"X-Forwarded-For": CLIENT})
        serve(app, 50, peer="127.0.0.3", **{"X-Forwarded-For": CLIENT})
        [(level, message)] = messages_of(app, "proxy.missing_proxyfix", "live")
        assert level == "error"
        assert message.startswith(
            "Requests arrive through a proxy (127.0.0.1, 127.0.0.3) with X-Forwarded-For "
            "(110 of 110 requests)"
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
        for _ in range(12):
            client.get("/healthz", headers={"X-Forwarded-For": CLIENT})
            client.get("/_readiness", headers={**auth, "X-Forwarded-For": CLIENT})
        assert outcome_of(app, "proxy.missing_proxyfix", "live").status.value == "skipped"

    def test_skipped_below_the_minimum_sample(self, make_app: MakeApp) -> None:
        """Three requests are too few for a live verdict: skipped, saying how many."""
        app = make_app()
        serve(app, 3, **{"X-Forwarded-For": CLIENT})
        outcome = outcome_of(app, "proxy.missing_proxyfix", "live")
        assert outcome.status.value == "skipped"
        assert outcome.reason == (
            "the server has served 3 request(s) in the last 900 s; a live verdict needs at least 10"
        )


class TestNoForwardedProto:
    def test_fires(self, make_app: MakeApp) -> None:
        """X-Forwarded-For without X-Forwarded-Proto is a warning."""
        app = behind(make_app(), x_for=1)
        serve(app, **{"X-Forwarded-For": CLIENT})
        assert messages_of(app, "proxy.no_forwarded_proto", "live") == [
            (
                "warning",
                "12 of 12 requests came through a proxy (127.0.0.1) with X-Forwarded-For, but "
                "only 0 carried X-Forwarded-Proto: the app cannot tell HTTPS from HTTP, so "
                "secure cookies, redirects and external URLs go wrong.",
            )
        ]

    def test_a_few_client_supplied_values_do_not_hide_it(self, make_app: MakeApp) -> None:
        """The proxy forgets X-Forwarded-Proto; a client adds it to 2 of 22 requests: still
        reported."""
        app = behind(make_app(), x_for=1)
        serve(app, 20, **{"X-Forwarded-For": CLIENT})
        serve(app, 2, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "http"})
        [(_, message)] = messages_of(app, "proxy.no_forwarded_proto", "live")
        assert message.startswith("22 of 22 requests came through a proxy (127.0.0.1)")
        assert "only 2 carried X-Forwarded-Proto" in message

    def test_quiet(self, make_app: MakeApp) -> None:
        """Both headers: no finding."""
        app = behind(make_app(), x_for=1, x_proto=1)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        assert messages_of(app, "proxy.no_forwarded_proto", "live") == []


class TestSchemeMismatch:
    def test_fires(self, make_app: MakeApp) -> None:
        """The proxy says https, the app sees http: an error."""
        app = behind(make_app(), x_for=1, x_proto=0)
        serve(app, **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})
        [(level, message)] = messages_of(app, "proxy.scheme_mismatch", "live")
        assert level == "error"
        assert message.startswith(
            "The proxy said https (X-Forwarded-Proto) on 12 requests, but the app saw http on "
            "12 of them"
        )

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
        assert "reached directly (only 0 of 12 requests carried the header)" in message

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
    assert app.extensions["prodready"].evidence().requests == count


class TestWhoIsTheProxy:
    def test_many_load_balancer_nodes_are_all_proxies(self, make_app: MakeApp) -> None:
        """Eleven nodes sharing the traffic evenly, all with X-Forwarded-For: judged
        together as the proxies, no request taken for a client's."""
        app = behind(make_app(), x_for=1, x_proto=1)
        for node in range(11):
            serve(
                app,
                10,
                peer=f"127.0.1.{node}",
                **{"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"},
            )
        for check_id in ("proxy.missing_proxyfix", "proxy.too_many_hops"):
            assert messages_of(app, check_id, "live") == [], check_id

    def test_a_client_sending_most_of_the_traffic_is_needed_to_pose_as_the_proxy(
        self, make_app: MakeApp
    ) -> None:
        """Direct clients with forged headers on 40 of 100 requests (from one peer): not
        the proxy, only an info finding; the app without ProxyFix is not told it ignores a
        proxy."""
        app = make_app()
        for client in range(6):
            serve(app, 10, peer=f"127.0.2.{client}")
        serve(app, 40, peer="127.0.3.1", **{"X-Forwarded-For": "6.6.6.6"})
        assert [level for level, _ in messages_of(app, "proxy.missing_proxyfix", "live")] == [
            "info"
        ]

    def test_a_client_beside_a_real_proxy_cannot_raise_what_the_proxy_does_not_show(
        self, make_app: MakeApp
    ) -> None:
        """A proxy without X-Forwarded-Proto and ProxyFix(x_for=2, x_proto=0), two proxies
        deep; a client adding 30 requests of its own (enough to count among the proxies)
        with a one-entry chain and X-Forwarded-Proto https: neither a scheme mismatch nor
        too many hops is raised, since neither is what most of the proxies' traffic shows."""
        app = behind(make_app(), x_for=2, x_proto=0)
        serve(app, 200, **{"X-Forwarded-For": f"{CLIENT}, 10.0.0.1"})
        serve(
            app,
            12,
            peer="127.0.3.1",
            **{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"},
        )
        assert messages_of(app, "proxy.scheme_mismatch", "live") == []
        assert messages_of(app, "proxy.too_many_hops", "live") == []
