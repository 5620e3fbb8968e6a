"""Only the exact bearer token opens /_readiness (SPEC §5), whatever else is sent.

The token is compared as RFC 6750 writes it: the scheme ``Bearer`` in any case, one or
more spaces, the token, and nothing after it but optional spaces or tabs (which servers
drop from header values anyway). Everything else is 401: no header, an empty one, other
schemes, the token with one character changed, added or removed or its case changed,
64 KiB of it, Latin-1 bytes, random printable text. Never 200 for those, never 500.
"""

from __future__ import annotations

import hmac
import re
import string
from collections.abc import Callable

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_prodready.web.views import TOKEN_PARAMETERS

from ..support import TOKEN

MakeApp = Callable[..., Flask]
EXAMPLES = settings(max_examples=50, deadline=None)

#: What opens the report: Bearer (any case), spaces, the token, optional spaces or tabs.
EXACT = re.compile(r"(?i:bearer) [ \t]*" + re.escape(TOKEN) + r"[ \t]*")
#: Characters a header value can carry (Latin-1, as WSGI servers decode it; no CR or LF,
#: which end a header line).
HEADER_CHARACTERS = st.characters(max_codepoint=0xFF, exclude_characters="\r\n")

schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"])
ows = st.text(st.sampled_from(" \t"), max_size=3)


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """The token with one character changed, added or removed, or one letter's case
    changed."""
    position = draw(st.integers(0, len(TOKEN) - 1))
    kind = draw(st.sampled_from(["change", "add", "remove", "case"]))
    if kind == "remove":
        return TOKEN[:position] + TOKEN[position + 1 :]
    if kind == "case":
        letters = [i for i, c in enumerate(TOKEN) if c.isalpha()]
        position = draw(st.sampled_from(letters))
        return TOKEN[:position] + TOKEN[position].swapcase() + TOKEN[position + 1 :]
    other = draw(HEADER_CHARACTERS.filter(lambda c: kind == "add" or c != TOKEN[position]))
    if kind == "add":
        return TOKEN[: position + 1] + other + TOKEN[position + 1 :]
    return TOKEN[:position] + other + TOKEN[position + 1 :]


wrong_headers = st.one_of(
    st.just(""),
    st.text(st.sampled_from(" \t"), min_size=1, max_size=4),
    st.sampled_from(["Bearer", "Bearer ", "bearer\t" + TOKEN, "Bearer:" + TOKEN, "Bearer" + TOKEN]),
    st.builds(
        lambda scheme, token: f"{scheme} {token}",
        st.sampled_from(["Basic", "Token", "Digest", "JWT", "Bearerx", "Bear", "Beare r"]),
        st.just(TOKEN),
    ),
    st.builds(lambda s, t, w: f"{s} {t}{w}", schemes, near_misses(), ows),
    st.builds(lambda s, t: f'{s} "{t}"', schemes, st.just(TOKEN)),
    st.builds(lambda s: f"{s} {TOKEN} {TOKEN}", schemes),
    st.builds(lambda s: f"{s} {TOKEN}\xa0", schemes),  # no-break space is not a space here
    st.text(st.sampled_from(string.printable.replace("\r", "").replace("\n", ""))),
    st.text(HEADER_CHARACTERS, max_size=200),
    st.builds(lambda s, t: f"{s} {t}", schemes, st.text(HEADER_CHARACTERS, max_size=100)),
)
exact_headers = st.builds(lambda s, w1, w2: f"{s} {w1}{TOKEN}{w2}", schemes, ows, ows)


def test_only_the_exact_token_opens_the_report(make_app: MakeApp) -> None:
    """Random, malformed and near-miss Authorization headers are 401 with
    WWW-Authenticate; only the exact token (scheme in any case) is 200."""
    client = make_app().test_client()

    @EXAMPLES
    @given(header=st.one_of(wrong_headers, exact_headers))
    def example(header: str) -> None:
        response = client.get("/_readiness", headers={"Authorization": header})
        if EXACT.fullmatch(header):
            assert response.status_code == 200, header
        else:
            assert response.status_code == 401, header
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.get_json() == {
                "error": "a valid 'Authorization: Bearer <token>' header is required"
            }

    example()


@pytest.mark.parametrize(
    "header",
    ["Bearer " + "x" * 65536, f"Bearer {TOKEN}" + "x" * 65536, "Bearer " + TOKEN * 2000],
    ids=["64k-junk", "token-then-64k", "token-repeated"],
)
def test_very_long_headers_are_401(make_app: MakeApp, header: str) -> None:
    """64 KiB of credentials, the token among them or not, is 401 (a server in front may
    refuse the header first: see tests/integration/test_faults.py)."""
    response = make_app().test_client().get("/_readiness", headers={"Authorization": header})
    assert response.status_code == 401


def test_token_in_the_query_string_is_refused(make_app: MakeApp) -> None:
    """A token-like query parameter, in any case, is 400 even with the right token in it
    and in the header; the answer never repeats the value."""
    client = make_app().test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    @EXAMPLES
    @given(
        name=st.builds(
            lambda name, mask: "".join(
                c.upper() if mask >> i & 1 else c for i, c in enumerate(name)
            ),
            st.sampled_from(sorted(TOKEN_PARAMETERS)),
            st.integers(0, 2**13),
        ),
        value=st.one_of(st.just(TOKEN), st.text(min_size=1, max_size=40)),
        with_header=st.booleans(),
    )
    def example(name: str, value: str, with_header: bool) -> None:
        response = client.get(
            "/_readiness", query_string={name: value}, headers=auth if with_header else {}
        )
        assert response.status_code == 400
        assert "query string" in response.get_json()["error"]
        assert TOKEN not in response.text

    example()


def test_comparison_is_constant_time_on_digests(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every presented token is compared with hmac.compare_digest on two SHA-256 digests
    (32 bytes each, whatever the token's length), never with ==."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client = make_app().test_client()
    for token, expected in (("x", 401), (TOKEN[:-1], 401), ("y" * 70000, 401), (TOKEN, 200)):
        calls.clear()
        response = client.get("/_readiness", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expected
        assert calls == [(32, 32)]
