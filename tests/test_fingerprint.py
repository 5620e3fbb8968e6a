"""The configuration fingerprint: equal for equal configurations, changed by any non-secret
value, blind to secrets' values; in the JSON body and as the OpenMetrics info metric."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from flask_prodready import ProdReady, __version__
from flask_prodready.engine.findings import Report
from flask_prodready.engine.fingerprint import (
    SET,
    UNSET,
    canonical_config,
    compute_fingerprint,
    render_value,
)
from flask_prodready.engine.redaction import Redactor
from flask_prodready.engine.state import get_state
from flask_prodready.render.openmetrics import render_openmetrics

from .render.samples import sample_report
from .support import STRONG_KEY, TOKEN

DB_URL = "postgresql://app:{password}@db.internal:5432/shop"
PASSWORD = "Vq8-database-Password-71x"
OTHER_KEY = "f" * 12 + "0123456789abcdef" * 4


def digest_of(app: Flask) -> str:
    """The fingerprint of ``app`` as its report gives it."""
    return report_of(app).to_dict()["fingerprint"]


def report_of(app: Flask) -> Report:
    """A report of no check: the fingerprint does not depend on what ran."""
    return get_state(app).build_report(app, mode="cli", checks=[])


def config_of(app: Flask) -> dict[str, Any]:
    return canonical_config(app.config, Redactor.for_config(app.config))


class TestDigest:
    def test_equal_configurations_agree(self, make_app: Callable[..., Flask]) -> None:
        """Two apps built from the same configuration have the same 16-hex-digit fingerprint."""
        first, second = digest_of(make_app()), digest_of(make_app())
        assert re.fullmatch(r"[0-9a-f]{16}", first)
        assert first == second

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("MAX_CONTENT_LENGTH", 8 * 1024 * 1024),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
            ("DEBUG", True),
            ("PERMANENT_SESSION_LIFETIME", timedelta(hours=1)),
            ("PRODREADY_CACHE_SECONDS", 10.0),
            ("FEATURE_FLAGS", {"checkout": True}),
        ],
    )
    def test_a_non_secret_value_changes_it(
        self, make_app: Callable[..., Flask], key: str, value: Any
    ) -> None:
        """Changing (or adding) one non-secret value changes the fingerprint."""
        assert digest_of(make_app(**{key: value})) != digest_of(make_app())

    def test_a_secret_key_value_does_not(self, make_app: Callable[..., Flask]) -> None:
        """Another SECRET_KEY (or token) gives the same fingerprint: secrets count by presence."""
        base = digest_of(make_app())
        assert digest_of(make_app(SECRET_KEY=OTHER_KEY)) == base
        assert digest_of(make_app(PRODREADY_TOKEN="another-token-" + "y" * 24)) == base

    def test_a_database_password_does_not(self, make_app: Callable[..., Flask]) -> None:
        """Another password in the database URL gives the same fingerprint."""
        first = make_app(SQLALCHEMY_DATABASE_URI=DB_URL.format(password=PASSWORD))
        second = make_app(SQLALCHEMY_DATABASE_URI=DB_URL.format(password="other-Pass-9931zz"))
        assert digest_of(first) == digest_of(second)

    def test_presence_of_a_secret_counts(self, make_app: Callable[..., Flask]) -> None:
        """A secret set on one replica and missing on another is a difference."""
        assert digest_of(make_app(SECRET_KEY=None)) != digest_of(make_app())
        assert digest_of(make_app(SENTRY_DSN="")) != digest_of(make_app(SENTRY_DSN=OTHER_KEY))

    def test_versions_count(
        self, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The fingerprint covers the versions: another flask-prodready changes it."""
        app = make_app()
        redactor = Redactor.for_config(app.config)
        base = compute_fingerprint(app, redactor).digest
        monkeypatch.setattr("flask_prodready.engine.fingerprint.__version__", "99.0")
        assert compute_fingerprint(app, redactor).digest != base


class TestSecrets:
    def test_secret_names_count_by_presence(self, make_app: Callable[..., Flask]) -> None:
        """Secret-named keys contribute '<set>' or '<unset>', never their value."""
        config = config_of(
            make_app(
                SQLALCHEMY_DATABASE_URI=DB_URL.format(password=PASSWORD),
                STRIPE_API_KEY="",
                SECRET_KEY_FALLBACKS=[OTHER_KEY],
                MAIL_PASSWORD=None,
            )
        )
        assert config["SECRET_KEY"] == SET
        assert config["PRODREADY_TOKEN"] == SET
        assert config["SQLALCHEMY_DATABASE_URI"] == SET  # its password would be masked
        assert config["SECRET_KEY_FALLBACKS"] == SET
        assert config["STRIPE_API_KEY"] == UNSET
        assert config["MAIL_PASSWORD"] == UNSET

    def test_what_the_redactor_masks_is_a_secret(
        self, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A value the report's redactor would mask counts by presence whatever its key: one
        holding an environment secret, one with a secret nested under a secret name."""
        monkeypatch.setenv("PAYMENT_API_TOKEN", "tok-" + "Hq3" * 8)
        config = config_of(
            make_app(
                GREETING="tok-" + "Hq3" * 8,
                SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"password": PASSWORD}},
                PLAIN_URL="postgresql://app@db.internal/shop",
            )
        )
        assert config["GREETING"] == SET
        assert config["SQLALCHEMY_ENGINE_OPTIONS"] == SET
        assert config["PLAIN_URL"] == "postgresql://app@db.internal/shop"  # no password

    def test_no_secret_or_its_hash_in_the_outputs(self, make_app: Callable[..., Flask]) -> None:
        """Neither the JSON body, nor the metrics, nor the canonical text hashed holds a
        secret or the sha256 of one (whole or as its first 16 digits)."""
        app = make_app(SQLALCHEMY_DATABASE_URI=DB_URL.format(password=PASSWORD))
        client = app.test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        body = client.get("/_readiness?tag=config", headers=auth).get_data(as_text=True)
        metrics = client.get("/_readiness?tag=config&format=openmetrics", headers=auth).text
        canonical = json.dumps(config_of(app), sort_keys=True)
        assert json.loads(body)["fingerprint"] in metrics
        for secret in (STRONG_KEY, TOKEN, PASSWORD):
            digest = hashlib.sha256(secret.encode()).hexdigest()
            for text in (body, metrics, canonical):
                assert secret not in text
                assert digest[:16] not in text


class TestRendering:
    def test_values_render_alike_in_every_process(self) -> None:
        """JSON values as themselves, timedelta as seconds, sets sorted, paths as text,
        anything else by type name only (never a repr with an address)."""

        class Client:
            pass

        assert render_value({"b": (1, 2.5), "a": None}) == {"b": [1, 2.5], "a": None}
        assert render_value(timedelta(days=1)) == 86400.0
        assert render_value({"b", "a", "c"}) == ["a", "b", "c"]
        assert render_value(Path("/srv/uploads")) == "/srv/uploads"
        assert render_value(float("inf")) == "inf"
        assert render_value(threading.Lock()) == "<_thread.lock>"
        client = render_value(Client())
        assert client == f"<{__name__}.{Client.__qualname__}>"
        assert "0x" not in client
        assert render_value({1: "one"}) == "<builtins.dict>"  # keys that are no names

    def test_a_value_that_contains_itself(self) -> None:
        """A list that contains itself renders, the inner one by its type name."""
        looped: list[Any] = [1]
        looped.append(looped)
        assert render_value(looped) == [1, "<builtins.list>"]


class TestWhenComputed:
    def test_config_changed_after_init_app_counts(self, make_app: Callable[..., Flask]) -> None:
        """A factory may change the config after init_app: the first report sees it."""
        changed = make_app()
        changed.config["MAX_CONTENT_LENGTH"] = 1024
        assert digest_of(changed) == digest_of(make_app(MAX_CONTENT_LENGTH=1024))

    def test_kept_for_the_process(self, make_app: Callable[..., Flask]) -> None:
        """Computed at the first report and kept: the config does not change while serving."""
        app = make_app()
        first = digest_of(app)
        app.config["MAX_CONTENT_LENGTH"] = 1024
        assert digest_of(app) == first


class TestBody:
    def test_json_fingerprint_and_versions(self, make_app: Callable[..., Flask]) -> None:
        """The body carries the fingerprint and the versions of Flask and flask-prodready;
        an app run from a folder has no distribution of its own to list."""
        body = report_of(make_app()).to_dict()
        assert re.fullmatch(r"[0-9a-f]{16}", body["fingerprint"])
        assert body["versions"] == {
            "flask": metadata.version("flask"),
            "flask-prodready": __version__,
        }

    def test_the_app_distribution_is_listed(self, tmp_path: Path) -> None:
        """An app whose top-level package an installed distribution provides lists that
        distribution and its version."""
        app = Flask("jinja2.app", root_path=str(tmp_path))  # Jinja's wheel has no top_level.txt
        app.config.update(PRODREADY_TOKEN=TOKEN, SECRET_KEY=STRONG_KEY)
        ProdReady(app)
        versions = report_of(app).to_dict()["versions"]
        assert versions[metadata.metadata("jinja2")["Name"]] == metadata.version("jinja2")
        assert versions["flask"] == metadata.version("flask")

    def test_the_info_metric(self, make_app: Callable[..., Flask]) -> None:
        """prodready_config is an info metric with one sample of value 1, labelled with the
        fingerprint, the versions, the app and the worker, as the JSON body says."""
        report = report_of(make_app())
        body = report.to_dict()
        text = render_openmetrics(report)
        assert "# TYPE prodready_config info\n" in text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        info = families["prodready_config"]
        assert info.type == "info"
        assert info.documentation
        [sample] = info.samples
        assert sample.name == "prodready_config_info"
        assert sample.value == 1
        assert sample.labels == {
            "fingerprint": body["fingerprint"],
            "flask": body["versions"]["flask"],
            "prodready": body["versions"]["flask-prodready"],
            "app": "testapp",
            "app_version": "",
            "pid": str(body["worker"]["pid"]),
            "hostname": body["worker"]["hostname"],
        }

    def test_no_info_metric_without_a_fingerprint(self) -> None:
        """A report that carries no fingerprint (read from another process) has no info
        metric, and its JSON no fingerprint."""
        report = sample_report()
        assert "prodready_config" not in render_openmetrics(report)
        assert "fingerprint" not in report.to_dict()
