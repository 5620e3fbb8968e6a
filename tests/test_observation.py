"""The traffic record itself: counts, bounds, and never a cookie value.

The middleware swallows any error of the record (a response must never fail because of
observation), so the record is exercised directly here, where an error would show.
"""

from __future__ import annotations

import pytest

from flask_prodready.engine.evidence import Evidence
from flask_prodready.engine.observation import (
    MAX_COOKIE_NAMES,
    MAX_LOGGERS,
    MAX_PEERS,
    MAX_SAMPLES,
    MAX_VALUES,
    TrafficRecord,
    cookie_problems,
)

HTML = ("Content-Type", "text/html; charset=utf-8")


def environ(path: str = "/", **extra: str) -> dict[str, str]:
    return {"PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", **extra}


def merged(record: TrafficRecord) -> Evidence:
    """The record's window as a report sees it."""
    return Evidence.merge(record.buckets(), window=record.window)


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
    record.record(environ("/gone"), "127.0.0.1", "404 NOT FOUND", [("Content-Type", "text/plain")])
    evidence = merged(record)
    assert evidence.requests == 4
    assert evidence.pages.judged == 2
    assert evidence.pages.missing["content-security-policy"] == 1
    assert evidence.pages.missing["strict-transport-security"] == 2
    assert evidence.pages.paths["content-security-policy"] == ("/a",)
    assert evidence.pages.values == {"content-security-policy": {"default-src 'self'": 1}}
    assert evidence.other.judged == 1  # the JSON answer; a 404 is no successful response


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
    peer = merged(record).main_peer
    assert peer is not None
    assert set(peer.xfp_values) == {"other"}
    assert max(peer.chains) == 10
    assert len(peer.chains) == 10
    assert all(len(paths) <= MAX_SAMPLES for paths in merged(record).pages.paths.values())


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
    evidence = merged(record)
    assert len(evidence.cookies) == MAX_COOKIE_NAMES
    assert all(
        c.insecure == 1 and c.missing == ("Secure", "HttpOnly") for c in evidence.cookies.values()
    )
    assert "secret-value" not in repr(record.buckets())


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
    evidence = merged(record)
    assert evidence.main_peer is not None
    assert evidence.main_peer.static == 2
    assert evidence.static_samples == ("/static/a.css", "/static/b.css")


def test_peers_and_header_values_stay_bounded() -> None:
    """Many direct peers share one '*' entry past MAX_PEERS; many values of a header share
    the '' entry past MAX_VALUES; CSP nonces count as one value."""
    record = TrafficRecord()
    record.static_prefixes = ()
    for index in range(MAX_PEERS + 20):
        record.record(
            environ(REMOTE_ADDR=f"10.0.{index // 250}.{index % 250}"),
            f"10.0.{index // 250}.{index % 250}",
            "200 OK",
            [HTML, ("Referrer-Policy", f"policy-{index}")],
        )
        record.record(
            environ(),
            "127.0.0.1",
            "200 OK",
            [HTML, ("Content-Security-Policy", f"script-src 'nonce-{index}'")],
        )
    evidence = merged(record)
    assert len(evidence.peers) == MAX_PEERS + 1  # the first MAX_PEERS, then "*"
    assert "*" in {p.address for p in evidence.peers}
    referrer = evidence.pages.values["referrer-policy"]
    assert len(referrer) == MAX_VALUES + 1
    assert referrer[""] == MAX_PEERS + 20 - MAX_VALUES
    assert evidence.pages.values["content-security-policy"] == {
        "script-src 'nonce-…'": MAX_PEERS + 20
    }


def test_the_window_forgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket older than the window is not read, and is dropped once a new one starts."""
    now = [1000.0]
    monkeypatch.setattr("flask_prodready.engine.observation.time.time", lambda: now[0])
    record = TrafficRecord(window=60)
    record.static_prefixes = ()
    record.record(environ("/old"), "127.0.0.1", "200 OK", [HTML])
    assert merged_at(record, now[0]).requests == 1
    now[0] += 61 + record.bucket_seconds
    assert merged_at(record, now[0]).requests == 0
    record.record(environ("/new"), "127.0.0.1", "200 OK", [HTML])
    assert merged_at(record, now[0]).requests == 1
    assert len(record.buckets(now[0])) == 1


def merged_at(record: TrafficRecord, now: float) -> Evidence:
    return Evidence.merge(record.buckets(now), window=record.window)


def test_inert_escapes_control_characters_and_caps_length() -> None:
    """ESC, BEL, CSI (C1), DEL and newlines become visible escapes; long text is cut."""
    from flask_prodready.engine.evidence import inert

    assert inert("/a\x1b]0;evil\x07b\x9b2J\x7f\n") == "/a\\x1b]0;evil\\x07b\\x9b2J\\x7f\\x0a"
    assert len(inert("x" * 500)) == 120


def test_cookie_deletions_are_not_sends_and_missing_flags_add_up() -> None:
    """A deletion is not counted as a send; the flags a cookie lacked on any send are all
    named."""
    record = TrafficRecord()
    record.static_prefixes = ()
    for cookie in ("a=1; Secure", "a=1; HttpOnly", "a=; Max-Age=0", "a=1; Secure; HttpOnly"):
        record.record(environ(), "127.0.0.1", "200 OK", [HTML, ("Set-Cookie", cookie)])
    cookie = merged(record).cookies["a"]
    assert (cookie.sent, cookie.insecure, cookie.missing) == (3, 2, ("Secure", "HttpOnly"))


def test_server_errors_healthz_polls_and_error_records_are_counted() -> None:
    """5xx responses (with example paths), /healthz requests and error records by logger
    name add up in the evidence; 4xx responses are not server errors."""
    record = TrafficRecord()
    record.static_prefixes = ()
    record.record(environ("/ok"), "127.0.0.1", "200 OK", [HTML])
    record.record(environ("/missing"), "127.0.0.1", "404 NOT FOUND", [HTML])
    for _ in range(3):
        record.record(environ("/boom"), "127.0.0.1", "500 INTERNAL SERVER ERROR", [HTML])
    record.record(environ("/gateway"), "127.0.0.1", "502 BAD GATEWAY", [HTML])
    record.record_healthz()
    record.record_healthz()
    record.record_log("myapp.views")
    record.record_log("myapp.views")
    record.record_log("sqlalchemy.pool")
    evidence = merged(record)
    assert evidence.requests == 6
    assert evidence.server_errors == 4
    assert evidence.error_samples == ("/boom", "/gateway")
    assert evidence.healthz_requests == 2
    assert evidence.logged_errors == {"myapp.views": 2, "sqlalchemy.pool": 1}


def test_logger_names_stay_bounded() -> None:
    """Past MAX_LOGGERS names a bucket counts the rest under "*"; long names are cut."""
    record = TrafficRecord()
    for index in range(MAX_LOGGERS + 5):
        record.record_log(f"logger{index}")
    record.record_log("x" * 500)
    counts = merged(record).logged_errors
    assert len(counts) == MAX_LOGGERS + 1
    assert counts["*"] == 6
    assert all(len(name) <= 100 for name in counts)
