"""The HTML report in a real headless Chromium, under its own strict CSP.

The report is answered in front of the app's hooks, with a policy of its own that
allows nothing but its stylesheet (``default-src 'none'; style-src 'self'``): stricter
than the hardened app's ``default-src 'self'``, whose after-request hook never runs for
the report. The page must still render styled: its one stylesheet comes from the
extension's own route, and nothing in it is inline. A browser sends no bearer header when
it navigates, so the test adds the header to the page request alone, as a
header-injecting proxy would; the stylesheet is fetched without it.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; Playwright's own
browser download is never used.
"""

from __future__ import annotations

import secrets
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Request, Response, Route, sync_playwright

from flask_prodready.web.views import HTML_CSP

from .processes import gunicorn

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the lead looks at the last rendering (the test's own copy is under tmp_path).
SHARED_SCREENSHOT = Path("/tmp/prodready-report.png")
TIMEOUT_MS = 30_000

TOKEN = secrets.token_urlsafe(32)
KEY = "changeme-" + secrets.token_hex(12)

APP = """
import os
from flask import Flask
from flask_prodready import ProdReady

app = Flask(__name__)
app.config.update(
    DEBUG=True,
    SECRET_KEY=os.environ["APP_SECRET_KEY"],
    SESSION_COOKIE_HTTPONLY=False,
    PRODREADY_SILENCED={"server.root": "the test suite may run as root"},
)
ProdReady(app)

@app.after_request
def strict_csp(response):
    response.headers["Content-Security-Policy"] = "default-src 'self'"
    return response

@app.route("/")
def index():
    return "<!doctype html><p>shop</p>"
"""

#: Records CSP violations; injected by the browser's DevTools, so the CSP does not block it.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    return found


def test_report_renders_styled_under_a_strict_csp(tmp_path: Path, chromium: str) -> None:
    """Chromium shows the findings, loads and applies the stylesheet without the token and
    without a CSP violation, shows no secret, and the page is saved as a screenshot."""
    (tmp_path / "browserapp.py").write_text(textwrap.dedent(APP))
    env = {"PRODREADY_TOKEN": TOKEN, "APP_SECRET_KEY": KEY}
    console: list[tuple[str, str]] = []
    responses: dict[str, tuple[int, dict[str, str]]] = {}
    screenshot = tmp_path / "report.png"

    with gunicorn(tmp_path, "browserapp:app", env=env) as port:
        page_url = f"http://127.0.0.1:{port}/_readiness?format=html"

        def add_token(route: Route, request: Request) -> None:
            route.continue_(headers={**request.headers, "authorization": f"Bearer {TOKEN}"})

        def seen(response: Response) -> None:
            responses[response.url] = (response.status, response.request.headers)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_FLAGS, timeout=TIMEOUT_MS
            )
            try:
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                context.set_default_timeout(TIMEOUT_MS)
                context.add_init_script(RECORD_VIOLATIONS)
                page = context.new_page()
                page.on("console", lambda message: console.append((message.type, message.text)))
                page.on("response", seen)
                page.route(lambda url: url == page_url, add_token)

                answer = page.goto(page_url, wait_until="load")
                assert answer is not None
                status, headers = answer.status, answer.headers
                ids = page.locator("article.finding .check-id").all_inner_texts()
                banner: dict[str, Any] = page.evaluate(
                    """() => {
                        const style = getComputedStyle(document.querySelector("header.banner"));
                        return {background: style.backgroundColor, color: style.color,
                                padding: style.paddingLeft};
                    }"""
                )
                sheets: list[dict[str, Any]] = page.evaluate(
                    """() => Array.from(document.styleSheets,
                        (sheet) => ({href: sheet.href, rules: sheet.cssRules.length}))"""
                )
                violations: list[str] = page.evaluate("() => window.__cspViolations")
                html = page.content()
                page.screenshot(path=str(screenshot), full_page=True)
                context.close()
            finally:
                browser.close()

    assert status == 503  # debug on: the report fails
    # The report's own policy: the app's after_request hook never ran for it.
    assert headers["content-security-policy"] == HTML_CSP
    assert {"config.debug", "cookies.session_httponly", "config.max_content_length"} <= set(ids)

    stylesheet_url = f"http://127.0.0.1:{port}/_readiness/report.css"
    assert [sheet["href"] for sheet in sheets] == [stylesheet_url]
    assert sheets[0]["rules"] > 10
    css_status, css_request_headers = responses[stylesheet_url]
    assert css_status == 200
    assert "authorization" not in css_request_headers  # a browser sends none for it
    # The banner of a failing report: the stylesheet's --fail red, white text, padded.
    assert banner == {
        "background": "rgb(180, 35, 24)",
        "color": "rgb(255, 255, 255)",
        "padding": "32px",
    }
    assert violations == []
    # Chromium logs the page's own 503 (the report fails); nothing else, no CSP refusal.
    assert [text for kind, text in console if kind in {"error", "warning"}] == [
        "Failed to load resource: the server responded with a status of 503 (SERVICE UNAVAILABLE)"
    ]

    for secret in (KEY, TOKEN):
        assert secret not in html
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    shutil.copyfile(screenshot, SHARED_SCREENSHOT)
