"""``headers.*``: the security headers the app's responses really carry.

Live, the responses the server's workers sent over the evidence window are judged by
share, per kind of response: HTML pages for every header, and other successful
responses (JSON, files) for the two that matter there too (HSTS and nosniff). A header
missing, or a weak value, must be on a significant share of the responses to raise a
finding (one odd page cannot), and one good page among bad ones cannot silence it. With
too few responses of a kind, and from the CLI, one probe request goes through the app's
whole WSGI stack (after-request hooks and middleware such as Talisman included), so
the verdict is what the app sends, not what its settings say. Headers that only nginx
adds are invisible here (see the docs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ..engine.context import CheckContext
from ..engine.evidence import MIN_SAMPLE, KindEvidence, inert, significant
from ..engine.findings import Finding, Level
from ..engine.observation import SECURITY_HEADERS, framing_guarded, probe_response
from ..engine.registry import check

#: HSTS shorter than 180 days lets a returning visitor be downgraded after it lapses.
MIN_HSTS_MAX_AGE = 180 * 24 * 3600
#: CSP sources that make 'unsafe-inline' ignored by browsers (CSP level 2+).
INLINE_NEUTRALISERS = ("'nonce-", "'sha256-", "'sha384-", "'sha512-", "'strict-dynamic'")
_LABELS = {"page": "HTML responses", "other": "other successful responses"}


@dataclass(frozen=True)
class HeaderEvidence:
    """Responses of one kind judged, how many lacked each header, and each value's count."""

    source: str  # "observed" or "probe"
    label: str  # "HTML responses", "other successful responses" or "a probe response"
    judged: int
    missing: Mapping[str, int]
    values: Mapping[str, Mapping[str, int]]
    paths: Mapping[str, tuple[str, ...]]
    #: Responses guarded against framing by neither header (counted per response).
    unframed: int = 0

    def lacks(self, name: str) -> int:
        return self.missing.get(name, 0)

    def count(self, name: str, bad: Callable[[str], bool]) -> int:
        """How many responses carried a value of ``name`` that ``bad`` condemns."""
        return sum(n for value, n in self.values.get(name, {}).items() if value and bad(value))

    def matters(self, count: int) -> bool:
        """Whether ``count`` of the responses judged raise a finding: on the probe, one is
        enough; on traffic, it must be a significant share of them."""
        if self.source == "probe":
            return count > 0
        return significant(count, self.judged)

    def describe(self, name: str, count: int | None = None) -> str:
        """'37 of 120 HTML responses (for example /embed)' or 'a probe response'; the
        example is of a response that lacked ``name``, so only for that count."""
        if self.source == "probe":
            return "a probe response through the app's whole stack"
        sample = self.paths.get(name, ()) if count is None else ()
        example = f" (for example {inert(sample[0])})" if sample else ""
        shown = self.lacks(name) if count is None else count
        return f"{shown} of {self.judged} {self.label}{example}"

    def on(self, name: str, count: int) -> str:
        """' on 100 of 101 HTML responses' for a value seen in traffic; '' on the probe."""
        return "" if self.source == "probe" else f" on {self.describe(name, count)}"

    def first_value(self, name: str, bad: Callable[[str], bool]) -> str:
        """The most frequent condemned value of ``name`` (inert), for the message."""
        found = [(n, v) for v, n in self.values.get(name, {}).items() if v and bad(v)]
        return inert(max(found)[1], 200) if found else ""


def _observed(kind: str, counts: KindEvidence) -> HeaderEvidence:
    return HeaderEvidence(
        "observed",
        _LABELS[kind],
        counts.judged,
        counts.missing,
        counts.values,
        counts.paths,
        counts.unframed,
    )


def evidences(ctx: CheckContext, kinds: tuple[str, ...] = ("page",)) -> list[HeaderEvidence]:
    """The kinds of response seen often enough in the window, else one probe response."""
    traffic = ctx.observation
    found = []
    if traffic is not None:
        for kind in kinds:
            counts = traffic.pages if kind == "page" else traffic.other
            if counts.judged >= MIN_SAMPLE:
                found.append(_observed(kind, counts))
    if found:
        return found
    sample = probe_response(ctx.app)
    headers = dict(sample.headers)
    missing = {name: 1 for name in SECURITY_HEADERS if name not in headers}
    values = {name: {value: 1} for name, value in headers.items()}
    unframed = 0 if framing_guarded(headers) else 1
    return [HeaderEvidence("probe", "a probe response", 1, missing, values, {}, unframed)]


def evidence(ctx: CheckContext) -> HeaderEvidence:
    """The HTML responses of the window (or the probe)."""
    return evidences(ctx)[0]


def csp_directives(policy: str) -> dict[str, list[str]]:
    """``{"script-src": ["'self'", ...], ...}`` from a Content-Security-Policy value."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.strip().split()
        if tokens:
            directives.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    return directives


@check(
    "headers.hsts",
    level=Level.WARNING,
    tags=["security"],
    title="Responses carry Strict-Transport-Security with max-age >= 180 days",
    hint="Send Strict-Transport-Security: max-age=31536000; includeSubDomains (from an "
    "after_request hook or Flask-Talisman) once the whole site is on HTTPS.",
    blocking=True,
)
def check_hsts(ctx: CheckContext) -> Iterator[Finding]:
    header = "strict-transport-security"
    for found in evidences(ctx, ("page", "other")):
        if found.matters(found.lacks(header)):
            yield ctx.finding(
                f"No Strict-Transport-Security on {found.describe(header)}.",
                observed={"source": found.source, "judged": found.judged},
            )
            continue
        short = found.count(header, _short_hsts)
        if found.matters(short):
            value = found.first_value(header, _short_hsts)
            yield ctx.finding(
                f"Strict-Transport-Security has max-age={_max_age(value)}, under 180 days "
                f"({MIN_HSTS_MAX_AGE}){found.on(header, short)}.",
                observed={"value": value, "responses": short},
            )


def _max_age(value: str) -> int:
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.I)
    return int(match.group(1)) if match else 0


def _short_hsts(value: str) -> bool:
    return _max_age(value) < MIN_HSTS_MAX_AGE


@check(
    "headers.csp",
    level=Level.WARNING,
    tags=["security"],
    title="Responses carry a Content-Security-Policy without unsafe-inline scripts",
    hint="Send a Content-Security-Policy such as default-src 'self'; use nonces or hashes "
    "instead of 'unsafe-inline' for scripts.",
    blocking=True,
)
def check_csp(ctx: CheckContext) -> Iterator[Finding]:
    header = "content-security-policy"
    found = evidence(ctx)
    if found.matters(found.lacks(header)):
        yield ctx.finding(
            f"No Content-Security-Policy on {found.describe(header)}.",
            observed={"source": found.source, "judged": found.judged},
        )
        return
    unrestricted = found.count(header, _no_script_rule)
    if found.matters(unrestricted):
        yield ctx.finding(
            "The Content-Security-Policy has neither script-src nor default-src"
            f"{found.on(header, unrestricted)}: it does not restrict scripts at all.",
            observed={"value": found.first_value(header, _no_script_rule)},
        )
    inline = found.count(header, _unsafe_inline)
    if found.matters(inline):
        yield ctx.finding(
            "The Content-Security-Policy allows 'unsafe-inline' scripts"
            f"{found.on(header, inline)}: it does not stop injected scripts.",
            observed={"value": found.first_value(header, _unsafe_inline), "responses": inline},
        )


def _scripts(value: str) -> list[str] | None:
    policy = csp_directives(value)
    return policy.get("script-src", policy.get("default-src"))


def _no_script_rule(value: str) -> bool:
    return _scripts(value) is None


def _unsafe_inline(value: str) -> bool:
    scripts = _scripts(value)
    if scripts is None:
        return False
    neutralised = any(s.startswith(INLINE_NEUTRALISERS) for s in scripts)
    return "'unsafe-inline'" in scripts and not neutralised


@check(
    "headers.nosniff",
    level=Level.WARNING,
    tags=["security"],
    title="Responses carry X-Content-Type-Options: nosniff",
    hint="Send X-Content-Type-Options: nosniff on every response.",
    blocking=True,
)
def check_nosniff(ctx: CheckContext) -> Iterator[Finding]:
    header = "x-content-type-options"
    for found in evidences(ctx, ("page", "other")):
        if found.matters(found.lacks(header)):
            yield ctx.finding(
                f"No X-Content-Type-Options: nosniff on {found.describe(header)}: browsers "
                "may sniff uploads or JSON as HTML.",
                observed={"source": found.source, "judged": found.judged},
            )
            continue
        wrong = found.count(header, _not_nosniff)
        if found.matters(wrong):
            value = found.first_value(header, _not_nosniff)
            yield ctx.finding(
                f"X-Content-Type-Options is {value!r}, not 'nosniff'"
                f"{found.on(header, wrong)}: browsers ignore it.",
                observed={"value": value},
            )


def _not_nosniff(value: str) -> bool:
    return value.strip().lower() != "nosniff"


@check(
    "headers.framing",
    level=Level.WARNING,
    tags=["security"],
    title="Responses forbid framing (X-Frame-Options or CSP frame-ancestors)",
    hint="Send Content-Security-Policy: frame-ancestors 'self' (or X-Frame-Options: DENY) "
    "against clickjacking.",
    blocking=True,
)
def check_framing(ctx: CheckContext) -> Iterator[Finding]:
    found = evidence(ctx)
    if found.matters(found.unframed):
        yield ctx.finding(
            "Neither X-Frame-Options nor CSP frame-ancestors on "
            f"{found.describe('x-frame-options', found.unframed)}: other sites can frame the "
            "app (clickjacking).",
            observed={"source": found.source, "judged": found.judged},
        )


@check(
    "headers.referrer_policy",
    level=Level.INFO,
    tags=["security"],
    title="Responses carry a Referrer-Policy",
    hint="Send Referrer-Policy: strict-origin-when-cross-origin (or stricter).",
    blocking=True,
)
def check_referrer_policy(ctx: CheckContext) -> Iterator[Finding]:
    found = evidence(ctx)
    if found.matters(found.lacks("referrer-policy")):
        yield ctx.finding(
            f"No Referrer-Policy on {found.describe('referrer-policy')}.",
            observed={"source": found.source, "judged": found.judged},
        )
