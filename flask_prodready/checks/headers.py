"""``headers.*``: the security headers the app's responses really carry.

Live, the HTML responses this worker sent are judged (how many lacked a header, and
the last value seen). With no HTML traffic yet, and from the CLI, one probe request
goes through the app's whole WSGI stack (after-request hooks and middleware such as
Talisman included), so the verdict is what the app sends, not what its settings say.
Headers that only nginx adds are invisible here (see the docs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..engine.context import CheckContext
from ..engine.findings import Finding, Level
from ..engine.observation import SECURITY_HEADERS, probe_response
from ..engine.registry import check

#: HSTS shorter than 180 days lets a returning visitor be downgraded after it lapses.
MIN_HSTS_MAX_AGE = 180 * 24 * 3600
#: CSP sources that make 'unsafe-inline' ignored by browsers (CSP level 2+).
INLINE_NEUTRALISERS = ("'nonce-", "'sha256-", "'sha384-", "'sha512-", "'strict-dynamic'")


@dataclass(frozen=True)
class HeaderEvidence:
    """Responses judged, how many lacked each header, and a value seen for each."""

    source: str  # "observed" or "probe"
    judged: int
    missing: Mapping[str, int]
    values: Mapping[str, str]
    paths: Mapping[str, tuple[str, ...]]

    def lacks(self, name: str) -> int:
        return self.missing.get(name, 0)

    def describe(self, name: str) -> str:
        """'3 of 40 HTML responses (e.g. /login)' or 'a probe response'."""
        if self.source == "probe":
            return "a probe response through the app's whole stack"
        sample = self.paths.get(name, ())
        example = f" (e.g. {sample[0]})" if sample else ""
        return f"{self.lacks(name)} of {self.judged} HTML responses seen{example}"


def evidence(ctx: CheckContext) -> HeaderEvidence:
    """Observed HTML responses when there are any, else one probe response."""
    traffic = ctx.observation
    if traffic is not None and traffic.judged_responses:
        return HeaderEvidence(
            "observed",
            traffic.judged_responses,
            traffic.missing_headers,
            traffic.header_samples,
            traffic.missing_samples,
        )
    sample = probe_response(ctx.app)
    headers = dict(sample.headers)

    missing = {name: 1 for name in SECURITY_HEADERS if name not in headers}
    return HeaderEvidence("probe", 1, missing, headers, {})


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
    found = evidence(ctx)
    if found.lacks("strict-transport-security"):
        yield ctx.finding(
            f"No Strict-Transport-Security on {found.describe('strict-transport-security')}.",
            observed={"source": found.source},
        )
        return
    value = found.values.get("strict-transport-security", "")
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.I)
    max_age = int(match.group(1)) if match else 0
    if max_age < MIN_HSTS_MAX_AGE:
        yield ctx.finding(
            f"Strict-Transport-Security has max-age={max_age}, under 180 days "
            f"({MIN_HSTS_MAX_AGE}).",
            observed={"value": value},
        )


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
    found = evidence(ctx)
    if found.lacks("content-security-policy"):
        yield ctx.finding(
            f"No Content-Security-Policy on {found.describe('content-security-policy')}.",
            observed={"source": found.source},
        )
        return
    policy = csp_directives(found.values.get("content-security-policy", ""))
    scripts = policy.get("script-src", policy.get("default-src"))
    if scripts is None:
        yield ctx.finding(
            "The Content-Security-Policy has neither script-src nor default-src: it does not "
            "restrict scripts at all.",
            observed={"directives": sorted(policy)},
        )
        return
    neutralised = any(s.startswith(INLINE_NEUTRALISERS) for s in scripts)
    if "'unsafe-inline'" in scripts and not neutralised:
        yield ctx.finding(
            "The Content-Security-Policy allows 'unsafe-inline' scripts: it does not stop "
            "injected scripts.",
            observed={"script-src": " ".join(scripts)},
        )


@check(
    "headers.nosniff",
    level=Level.WARNING,
    tags=["security"],
    title="Responses carry X-Content-Type-Options: nosniff",
    hint="Send X-Content-Type-Options: nosniff on every response.",
    blocking=True,
)
def check_nosniff(ctx: CheckContext) -> Iterator[Finding]:
    found = evidence(ctx)
    value = found.values.get("x-content-type-options", "")
    if found.lacks("x-content-type-options"):
        yield ctx.finding(
            f"No X-Content-Type-Options: nosniff on {found.describe('x-content-type-options')}"
            ": browsers may sniff uploads or JSON as HTML.",
            observed={"source": found.source},
        )
    elif value.strip().lower() != "nosniff":
        yield ctx.finding(
            f"X-Content-Type-Options is {value!r}, not 'nosniff': browsers ignore it.",
            observed={"value": value},
        )


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
    frame_options = found.values.get("x-frame-options", "").strip().upper()
    csp = csp_directives(found.values.get("content-security-policy", ""))
    guarded_by_xfo = not found.lacks("x-frame-options") and frame_options in {"DENY", "SAMEORIGIN"}
    guarded_by_csp = not found.lacks("content-security-policy") and "frame-ancestors" in csp
    if not (guarded_by_xfo or guarded_by_csp):
        yield ctx.finding(
            "Neither X-Frame-Options nor CSP frame-ancestors on "
            f"{found.describe('x-frame-options')}: other sites can frame the app "
            "(clickjacking).",
            observed={"source": found.source},
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
    if found.lacks("referrer-policy"):
        yield ctx.finding(
            f"No Referrer-Policy on {found.describe('referrer-policy')}.",
            observed={"source": found.source},
        )
