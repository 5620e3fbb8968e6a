"""The traffic record itself: counts, bounds, and never a cookie value.

The middleware swallows any error of the record (a response must never fail because of
observation), so the record is exercised directly here, where an error would show.
"""

from __future__ import annotations

from flask_prodready.engine.observation import (
    MAX_COOKIE_NAMES,
    MAX_SAMPLES,
    TrafficRecord,
    cookie_problems,
)

HTML = ("Content-Type", "text/html; charset=utf-8")


def environ(path: str = "/", **extra: str) -> dict[str, str]:
    return {"PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", **extra}


def test_counts_headers_by_response() -> None:
    """Missing security headers are counted per HTML response, with sample paths."""
    record = TrafficRecord()
    record.static_prefixes = ()
    record.record(environ("/a"), "127.0.0.1", "200 OK", [HTML])
    record.record(
        environ("/b"),
        "127.0.0.1",
        "200 OK",
        [HTML, ("Content-Security-Policy", "default-src 'self'")],
    )
    record.record(environ("/api"), "127.0.0.1", "200 OK", [("Content-Type", "application/json")])
    snapshot = record.snapshot()
    assert snapshot.requests == 3
    assert snapshot.judged_responses == 2
    assert snapshot.missing_headers["content-security-policy"] == 1
    assert snapshot.missing_headers["strict-transport-security"] == 2
    assert snapshot.missing_samples["content-security-policy"] == ("/a",)
    assert snapshot.header_samples == {"content-security-policy": "default-src 'self'"}


def test_forwarded_headers_and_schemes_stay_bounded() -> None:
    """Made-up X-Forwarded-Proto values and long chains do not grow the record."""
    record = TrafficRecord()
    record.static_prefixes = ()
    for index in range(200):
        record.record(
            environ(
                HTTP_X_FORWARDED_FOR=",".join(["10.0.0.1"] * (index % 30 + 1)),
                HTTP_X_FORWARDED_PROTO=f"proto{index}",
            ),
            "127.0.0.1",
            "200 OK",
            [HTML],
        )
    snapshot = record.snapshot()
    assert set(snapshot.xfp_values) == {"other"}
    assert max(snapshot.xff_chain_lengths) == 10
    assert len(snapshot.xff_chain_lengths) == 10
    assert all(len(paths) <= MAX_SAMPLES for paths in snapshot.missing_samples.values())


def test_insecure_cookie_names_are_bounded_and_values_never_kept() -> None:
    """Only names and missing flags are kept, at most MAX_COOKIE_NAMES of them."""
    record = TrafficRecord()
    record.static_prefixes = ()
    for index in range(MAX_COOKIE_NAMES + 10):
        record.record(
            environ(),
            "127.0.0.1",
            "200 OK",
            [HTML, ("Set-Cookie", f"c{index}=secret-value-{index}; Path=/")],
        )
    snapshot = record.snapshot()
    assert len(snapshot.insecure_cookies) == MAX_COOKIE_NAMES
    assert "secret-value" not in repr(snapshot)


def test_cookie_problems() -> None:
    """Secure+HttpOnly passes; deletions and script-readable CSRF cookies are judged fairly."""
    assert cookie_problems("a=1; Secure; HttpOnly; Path=/") is None
    assert cookie_problems("a=1; Path=/") == ("a", ("Secure", "HttpOnly"))
    assert cookie_problems("a=; Max-Age=0; Path=/") is None
    assert cookie_problems("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT") is None
    assert cookie_problems("csrf_token=x; Secure") is None
    assert cookie_problems("XSRF-TOKEN=x") == ("XSRF-TOKEN", ("Secure",))


def test_static_responses_are_counted() -> None:
    """A 200 or 304 under a static prefix counts; a 404 does not."""
    record = TrafficRecord()
    record.static_prefixes = ("/static/",)
    record.record(environ("/static/a.css"), "127.0.0.1", "200 OK", [("Content-Type", "text/css")])
    record.record(environ("/static/b.css"), "127.0.0.1", "304 NOT MODIFIED", [])
    record.record(environ("/static/c.css"), "127.0.0.1", "404 NOT FOUND", [HTML])
    snapshot = record.snapshot()
    assert snapshot.static_served == 2
    assert snapshot.static_samples == ("/static/a.css", "/static/b.css")
