"""Whatever the query string, /_readiness answers 200, 503 or a 400 with a JSON error,
never a 500 (SPEC §5, §8); /healthz ignores it.

Query strings are drawn as a WSGI server hands them over (Latin-1 text, so raw bytes
that are not UTF-8 included) and as parameters built from the known names and values,
unknown ones, percent escapes that decode to nothing valid, empty and very long values.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_prodready.engine.state import get_state
from flask_prodready.web.views import MAX_VALUE_LENGTH

MakeApp = Callable[..., Flask]
REPORT_TYPES = {
    "application/health+json",
    "text/html; charset=utf-8",
    "application/openmetrics-text; version=1.0.0; charset=utf-8",
}

escapes = st.sampled_from(["%ff", "%fe%ff", "%", "%zz", "%00", "%e2%82", "%c3", "%2", "+", "%20"])
latin1_text = st.text(st.characters(max_codepoint=0xFF))


def query_strings(tags: list[str], ids: list[str]) -> st.SearchStrategy[str]:
    """Raw Latin-1 query strings, and ``name=value`` pairs from known and unknown parts."""
    names = st.one_of(
        st.sampled_from(["tag", "exclude", "format", "TAG", "token", "verbose", ""]),
        latin1_text.map(lambda s: quote(s, safe="")),
        escapes,
    )
    values = st.one_of(
        st.sampled_from([*tags, *ids, "json", "html", "openmetrics", "xml", "", " "]),
        st.text(max_size=30).map(lambda s: quote(s, safe="")),
        latin1_text,
        escapes,
        st.builds(lambda v, e: v + e, st.sampled_from(tags), escapes),
        st.integers(MAX_VALUE_LENGTH - 2, MAX_VALUE_LENGTH + 2).map(lambda n: "a" * n),
    )
    pairs = st.lists(
        st.one_of(st.builds(lambda n, v: f"{n}={v}", names, values), names), max_size=5
    )
    return st.one_of(latin1_text, pairs.map("&".join), pairs.map(";".join))


def test_any_query_string_gets_a_clear_answer(make_app: MakeApp, auth: dict[str, str]) -> None:
    """Every query string gets 200 or 503 with a report, or 400 with a JSON error saying
    what is wrong; never a 500."""
    app = make_app(PRODREADY_CACHE_SECONDS=60)
    registry = get_state(app).registry
    client = app.test_client()

    @settings(max_examples=100, deadline=None)
    @given(query=query_strings(sorted(registry.tags), sorted(registry.ids)))
    def example(query: str) -> None:
        overrides = {"QUERY_STRING": query}
        response = client.get("/_readiness", environ_overrides=overrides, headers=auth)
        assert response.status_code in {200, 503, 400}, (query, response.status_code)
        if response.status_code == 400:
            assert response.headers["Content-Type"] == "application/json"
            error = response.get_json()["error"]
            assert isinstance(error, str)
            assert error
        else:
            assert response.headers["Content-Type"] in REPORT_TYPES
        healthz = client.get("/healthz", environ_overrides=overrides)
        assert healthz.status_code == 200

    example()


@pytest.mark.parametrize(
    ("query", "needle", "parameter"),
    [
        ("exclude=", "empty exclude= value", "exclude"),
        ("format=", "empty format= value", "format"),
        ("tag=%20", "empty tag= value", "tag"),
        ("exclude=%ff", "unknown check id '%FF'", "exclude"),
        ("format=%ff", "unknown format '%FF'", "format"),
        ("tag=%e2%82", "unknown tag '%E2%82'", "tag"),
        ("%ff=1", "unknown query parameter '%FF'", "%FF"),
        ("exclude=" + "a" * 500, "exclude= value is too long", "exclude"),
        ("format=" + "j" * 500, "format= value is too long", "format"),
        ("TAG=config", "unknown query parameter 'TAG'", "TAG"),
        ("format=JSON", "unknown format 'JSON'", "format"),
        ("tag=config;exclude=x", "unknown tag 'config;exclude=x'", "tag"),
    ],
)
def test_bad_parameter_is_named(
    make_app: MakeApp, auth: dict[str, str], query: str, needle: str, parameter: str
) -> None:
    """Empty, undecodable, oversized or unknown values: 400 naming the parameter."""
    response = (
        make_app()
        .test_client()
        .get("/_readiness", environ_overrides={"QUERY_STRING": query}, headers=auth)
    )
    assert response.status_code == 400
    body = response.get_json()
    assert needle in body["error"]
    assert body["parameter"] == parameter


@pytest.mark.parametrize("query", ["tag=\xff", "\xff=1", "exclude=\xc3(", "format=\xe2\x82"])
def test_raw_bytes_that_are_not_utf8_are_400(
    make_app: MakeApp, auth: dict[str, str], query: str
) -> None:
    """Raw (not percent-encoded) bytes that are not UTF-8 are a 400, not Werkzeug's
    UnicodeDecodeError as a 500; before the token is checked, too."""
    client = make_app().test_client()
    for headers in (auth, {}):
        response = client.get(
            "/_readiness", environ_overrides={"QUERY_STRING": query}, headers=headers
        )
        assert response.status_code == 400
        assert response.get_json() == {
            "error": "the query string is not valid UTF-8; percent-encode it"
        }
