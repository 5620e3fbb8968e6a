"""OpenMetrics at /_readiness, read back with prometheus_client's OpenMetrics parser."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from flask_prodready import CheckContext, Finding, ProdReady
from flask_prodready.engine.findings import CheckOutcome, Status
from flask_prodready.render.openmetrics import escape_label_value, render_openmetrics

from ..support import TOKEN, results_of
from .samples import GENERATED_TIMESTAMP, mixed_report, sample_report

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
BAD = {"DEBUG": True, "SECRET_KEY": "dev", "SESSION_COOKIE_HTTPONLY": False}
#: What Prometheus 2 and 3 send when they scrape.
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def families(text: str) -> dict[str, Metric]:
    """The metric families of an exposition, parsed strictly (``# EOF`` required)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Metric, *drop: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values keyed by their labels, without the labels named in ``drop``."""
    return {
        tuple((k, v) for k, v in sample.labels.items() if k not in drop): sample.value
        for sample in family.samples
    }


class TestRenderer:
    def test_families_types_and_help(self) -> None:
        """Five gauge families, each with HELP, and the timestamp with its unit."""
        parsed = families(render_openmetrics(mixed_report()))
        assert list(parsed) == [
            "prodready_status",
            "prodready_check_status",
            "prodready_findings",
            "prodready_silenced_findings",
            "prodready_report_generated_timestamp_seconds",
        ]
        assert {family.type for family in parsed.values()} == {"gauge"}
        assert all(family.documentation for family in parsed.values())
        assert parsed["prodready_report_generated_timestamp_seconds"].unit == "seconds"

    def test_ends_with_eof(self) -> None:
        """The exposition ends with '# EOF' and a newline."""
        assert render_openmetrics(mixed_report()).endswith("\n# EOF\n")

    def test_check_status_is_one_hot(self) -> None:
        """Every check has one sample per status: 1 for the one it ended in, 0 for the rest."""
        parsed = families(render_openmetrics(mixed_report()))
        values = samples(parsed["prodready_check_status"], "pid", "hostname")
        ones = sorted(labels for labels, value in values.items() if value == 1)
        assert ones == [
            (("check", "config.debug"), ("status", "fail")),
            (("check", "config.max_content_length"), ("status", "fail")),
            (("check", "config.testing"), ("status", "pass")),
            (("check", "cookies.session_secure"), ("status", "fail")),
            (("check", "demo.crashes"), ("status", "error")),
            (("check", "server.workers"), ("status", "skipped")),
        ]
        assert len(values) == 6 * 4
        assert sum(values.values()) == 6

    def test_report_status_findings_and_time(self) -> None:
        """Overall status one-hot, unsilenced findings per level, silenced count, time."""
        parsed = families(render_openmetrics(mixed_report()))
        assert samples(parsed["prodready_status"], "pid", "hostname") == {
            (("status", "pass"),): 0,
            (("status", "warn"),): 0,
            (("status", "fail"),): 1,
            (("status", "unknown"),): 0,
        }
        assert samples(parsed["prodready_findings"], "pid", "hostname") == {
            (("level", "critical"),): 1,
            (("level", "error"),): 1,
            (("level", "warning"),): 1,
            (("level", "info"),): 0,
        }
        assert samples(parsed["prodready_silenced_findings"], "pid", "hostname") == {(): 1}
        [stamp] = parsed["prodready_report_generated_timestamp_seconds"].samples
        assert stamp.value == GENERATED_TIMESTAMP

    def test_every_sample_names_the_worker(self) -> None:
        """Each sample carries the pid and hostname of the worker that built the report."""
        parsed = families(render_openmetrics(mixed_report()))
        for family in parsed.values():
            for sample in family.samples:
                assert (sample.labels["pid"], sample.labels["hostname"]) == ("1234", "web-1")

    def test_label_values_are_escaped(self) -> None:
        """Backslash, double quote and newline in a label value survive a parse unchanged."""
        hostname = 'web "1"\\blue\nrack'
        report = sample_report(CheckOutcome("config.debug", Status.PASS), hostname=hostname)
        text = render_openmetrics(report)
        assert 'hostname="web \\"1\\"\\\\blue\\nrack"' in text
        for family in families(text).values():
            assert {s.labels["hostname"] for s in family.samples} == {hostname}

    def test_escape_label_value(self) -> None:
        """The three escapes of the OpenMetrics ABNF, and nothing else."""
        assert escape_label_value('a\\b"c\nd\te') == 'a\\\\b\\"c\\nd\te'


class TestEndpoint:
    def test_format_openmetrics(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """?format=openmetrics answers the metrics with the OpenMetrics content type."""
        response = make_app().test_client().get("/_readiness?format=openmetrics", headers=auth)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        assert response.headers["Cache-Control"] == "no-store"
        assert "prodready_status" in families(response.get_data(as_text=True))

    def test_failing_report_is_still_200(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """A failing report answers 200 for metrics (a scraper drops any other answer), and the
        metrics agree with the JSON report."""
        client = make_app(**BAD, PRODREADY_CACHE_SECONDS=30).test_client()
        body = client.get("/_readiness", headers=auth).get_json(force=True)
        response = client.get("/_readiness?format=openmetrics", headers=auth)
        assert response.status_code == 200
        parsed = families(response.get_data(as_text=True))
        assert samples(parsed["prodready_status"], "pid", "hostname")[(("status", "fail"),)] == 1
        statuses = {
            dict(labels)["check"]: dict(labels)["status"]
            for labels, value in samples(parsed["prodready_check_status"]).items()
            if value == 1
        }
        assert statuses == results_of(body)
        findings = samples(parsed["prodready_findings"], "pid", "hostname")
        for level in ("critical", "error", "warning", "info"):
            assert findings[(("level", level),)] == body["summary"][level]
        [sample] = parsed["prodready_check_status"].samples[:1]
        assert sample.labels["pid"] == str(body["worker"]["pid"])
        assert sample.labels["hostname"] == body["worker"]["hostname"]

    @pytest.mark.parametrize(
        ("accept", "content_type"),
        [
            ("application/openmetrics-text", CONTENT_TYPE),
            (PROMETHEUS_2_ACCEPT, CONTENT_TYPE),
            (PROMETHEUS_3_ACCEPT, CONTENT_TYPE),
            ("application/json, application/openmetrics-text;q=0.5", "application/health+json"),
            ("*/*", "application/health+json"),
            ("text/html;level=1", "text/html; charset=utf-8"),
        ],
    )
    def test_accept_negotiation(
        self,
        make_app: Callable[..., Flask],
        auth: dict[str, str],
        accept: str,
        content_type: str,
    ) -> None:
        """Accept picks the metrics, the parameters Prometheus adds (version=, escaping=)
        notwithstanding; JSON stays the default."""
        response = make_app().test_client().get("/_readiness", headers={**auth, "Accept": accept})
        assert response.headers["Content-Type"] == content_type

    def test_needs_the_token(self, make_app: Callable[..., Flask]) -> None:
        """Metrics need the same bearer token: without it 401, with no token configured 404."""
        response = make_app().test_client().get("/_readiness?format=openmetrics")
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json"
        response = (
            make_app(PRODREADY_TOKEN=None)
            .test_client()
            .get("/_readiness", headers={"Accept": "application/openmetrics-text"})
        )
        assert response.status_code == 404

    def test_unknown_format_lists_openmetrics(
        self, make_app: Callable[..., Flask], auth: dict[str, str]
    ) -> None:
        """An unknown format= names the three formats."""
        response = make_app().test_client().get("/_readiness?format=prometheus", headers=auth)
        assert response.status_code == 400
        assert response.get_json()["error"] == (
            "unknown format 'prometheus'; use one of json, html, openmetrics"
        )

    def test_head(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """HEAD with format=openmetrics: 200, the content type, no body."""
        response = make_app().test_client().head("/_readiness?format=openmetrics", headers=auth)
        assert (response.status_code, response.headers["Content-Type"]) == (200, CONTENT_TYPE)
        assert response.data == b""

    def test_no_secret(self, make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
        """The metrics carry ids, statuses and counts only: no key, token or password."""
        key = "k3y-" + "Zq9" * 12
        ext = ProdReady()

        @ext.check("demo.chatty", title="Prints everything")
        def chatty(ctx: CheckContext) -> Iterator[Finding]:
            yield ctx.finding(f"key={ctx.config['SECRET_KEY']}")

        app = make_app(ext, SECRET_KEY=key)
        text = app.test_client().get("/_readiness?format=openmetrics", headers=auth).text
        assert 'check="demo.chatty",status="fail"' in text
        assert key not in text
        assert TOKEN not in text
