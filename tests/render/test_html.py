"""The HTML page shows how long each check ran."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from flask_prodready.engine.findings import CheckOutcome, Status
from flask_prodready.engine.state import get_state
from flask_prodready.render.html import format_duration, render_html

from .samples import mixed_report, sample_report


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "<0.1 ms"),
        (0.00004, "<0.1 ms"),
        (0.0002, "0.2 ms"),
        (0.0024, "2.4 ms"),
        (0.18, "180 ms"),
        (0.9996, "1.0 s"),
        (3.24, "3.2 s"),
    ],
)
def test_durations_for_people(seconds: float, shown: str) -> None:
    """Milliseconds to one decimal below 10 ms, whole above, seconds from one second."""
    assert format_duration(seconds) == shown


def page(make_app: Callable[..., Flask], *outcomes: CheckOutcome) -> str:
    registry = get_state(make_app()).registry
    report = sample_report(*outcomes) if outcomes else mixed_report()
    return render_html(report, stylesheet_url="report.css", registry=registry)


def test_on_each_finding_and_in_the_lists(make_app: Callable[..., Flask]) -> None:
    """A finding shows its check's duration (a crash, the crashed check's); passed and
    skipped checks show theirs beside their id."""
    html = page(make_app)
    debug = html.split('id="finding-config.debug"', 1)[1].split("</article>", 1)[0]
    assert '<span class="duration" title="how long config.debug ran">2.0 ms</span>' in debug
    crash = html.split('id="finding-prodready.check_crashed"', 1)[1].split("</article>", 1)[0]
    assert 'title="how long demo.crashes ran">&lt;0.1 ms</span>' in crash
    passed = html.split('<details class="passed">', 1)[1].split("</details>", 1)[0]
    assert re.search(
        r'config\.testing</a> <span class="title">[^<]*</span> '
        r'<span class="duration">1\.0 ms</span>',
        passed,
    )
    skipped = html.split('<details class="skipped">', 1)[1].split("</details>", 1)[0]
    assert 'server.workers</a> <span class="duration">&lt;0.1 ms</span>' in skipped


def test_a_slow_check_in_seconds(make_app: Callable[..., Flask]) -> None:
    """A check that took seconds says so."""
    html = page(make_app, CheckOutcome("config.testing", Status.PASS, duration=2.5))
    assert '<span class="duration">2.5 s</span>' in html
