"""config.*: each check fires on the bad value and stays quiet on the good one."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_prodready.checks.config import FLASK_DOCS_KEY, key_weakness

from ..support import messages_of, outcome_of

MakeApp = Callable[..., Flask]


class TestDebug:
    def test_fires_on_debug(self, make_app: MakeApp) -> None:
        """DEBUG = True is critical."""
        assert messages_of(make_app(DEBUG=True), "config.debug") == [
            ("critical", "The app runs in debug mode (DEBUG is true).")
        ]

    def test_fires_on_flask_debug_env(
        self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A truthy FLASK_DEBUG in the environment is reported even if app.debug is off."""
        app = make_app()
        monkeypatch.setenv("FLASK_DEBUG", "1")
        assert messages_of(app, "config.debug") == [
            ("critical", "FLASK_DEBUG='1' is set in the environment.")
        ]

    def test_quiet(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """DEBUG off and FLASK_DEBUG=0: no finding."""
        monkeypatch.setenv("FLASK_DEBUG", "0")
        assert messages_of(make_app(DEBUG=False), "config.debug") == []


class TestTesting:
    def test_fires(self, make_app: MakeApp) -> None:
        """TESTING = True is an error."""
        assert messages_of(make_app(TESTING=True), "config.testing") == [
            ("error", "TESTING is true.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """TESTING off: no finding."""
        assert messages_of(make_app(), "config.testing") == []


class TestSecretKeyMissing:
    @pytest.mark.parametrize("value", [None, "", b""])
    def test_fires(self, make_app: MakeApp, value: object) -> None:
        """An unset or empty SECRET_KEY is critical."""
        assert messages_of(make_app(SECRET_KEY=value), "config.secret_key_missing") == [
            ("critical", "SECRET_KEY is not set: sessions and signed values cannot be trusted.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """A set key: no finding."""
        assert messages_of(make_app(), "config.secret_key_missing") == []


class TestSecretKeyWeak:
    @pytest.mark.parametrize(
        ("key", "why"),
        [
            ("dev", "it is a well-known placeholder value"),
            ("Change-Me", "it is a well-known placeholder value"),
            ("dev-key-change-me-in-production-0123456789", "it is a well-known placeholder value"),
            ("a1b2c3d4e5", "it is 10 characters long; at least 32 are needed"),
            ("ab" * 20, "it has only 2 distinct characters"),
            (b"0123456789", "it is 10 bytes long; a random bytes key needs 16"),
            (FLASK_DOCS_KEY, "it is the example key printed in the Flask documentation"),
        ],
    )
    def test_fires(self, make_app: MakeApp, key: str | bytes, why: str) -> None:
        """Short, low-variety or placeholder keys are weak; the message never quotes the key."""
        assert messages_of(make_app(SECRET_KEY=key), "config.secret_key_weak") == [
            ("error", f"SECRET_KEY is weak: {why}.")
        ]

    @pytest.mark.parametrize(
        "key", [secrets.token_hex(32), secrets.token_urlsafe(32), os.urandom(16), os.urandom(32)]
    )
    def test_quiet(self, make_app: MakeApp, key: str | bytes) -> None:
        """Keys from secrets.token_hex/token_urlsafe or os.urandom(16+) are strong."""
        assert messages_of(make_app(SECRET_KEY=key), "config.secret_key_weak") == []

    def test_missing_key_is_not_also_weak(self, make_app: MakeApp) -> None:
        """No key is reported by secret_key_missing alone."""
        assert messages_of(make_app(SECRET_KEY=None), "config.secret_key_weak") == []

    def test_key_weakness_of_other_types(self) -> None:
        """A key of another type is weak, named by type."""
        assert key_weakness(12345) == "it is a int, not a string or bytes"


class TestSecretKeyFallbacks:
    def test_fires(self, make_app: MakeApp) -> None:
        """A weak entry of SECRET_KEY_FALLBACKS is reported by index, never by value."""
        app = make_app(SECRET_KEY_FALLBACKS=[secrets.token_hex(32), "changeme"])
        assert messages_of(app, "config.secret_key_fallbacks") == [
            ("error", "SECRET_KEY_FALLBACKS[1] is weak: it is a well-known placeholder value.")
        ]

    def test_fires_on_a_value_that_is_not_a_list(self, make_app: MakeApp) -> None:
        """SECRET_KEY_FALLBACKS = 42 is reported, not a crash."""
        assert messages_of(make_app(SECRET_KEY_FALLBACKS=42), "config.secret_key_fallbacks") == [
            ("error", "SECRET_KEY_FALLBACKS is a int, not a list of old keys: Flask cannot use it.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """Strong fallbacks, or none: no finding."""
        app = make_app(SECRET_KEY_FALLBACKS=[secrets.token_hex(32)])
        assert messages_of(app, "config.secret_key_fallbacks") == []
        assert messages_of(make_app(), "config.secret_key_fallbacks") == []


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


class TestSecretKeyInSource:
    """The scan looks at the app's project folder, a temporary one here."""

    key = "in-source-" + secrets.token_hex(24)

    def project(self, app: Flask) -> Path:
        root = Path(app.root_path).parent
        (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
        return root

    def test_fires_on_a_py_file_without_git(self, make_app: MakeApp) -> None:
        """Without git, a .py file holding the key is reported by path, not value."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        (root / "app" / "settings.py").write_text(f"SECRET_KEY = {self.key!r}\n")
        outcome = outcome_of(app, "config.secret_key_in_source")
        assert [(f.level.value, f.message, f.observed) for f in outcome.findings] == [
            (
                "error",
                "SECRET_KEY's value is written in app/settings.py (a .py file of the app).",
                {"file": "app/settings.py", "method": "no git: .py files only"},
            )
        ]

    def test_fires_on_a_file_tracked_by_git(self, make_app: MakeApp) -> None:
        """A tracked file of any kind holding the key is an error."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        (root / "deploy.env").write_text(f"SECRET_KEY={self.key}\n")
        _git(root, "init", "-q")
        _git(root, "add", "deploy.env")
        assert messages_of(app, "config.secret_key_in_source") == [
            ("error", "SECRET_KEY's value is written in deploy.env (tracked by git).")
        ]

    def test_fires_on_an_untracked_file_git_would_add(self, make_app: MakeApp) -> None:
        """An untracked file that git does not ignore will be committed: an error."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        _git(root, "init", "-q")
        (root / "config.py").write_text(f"SECRET_KEY = {self.key!r}\n")
        assert messages_of(app, "config.secret_key_in_source") == [
            (
                "error",
                "SECRET_KEY's value is written in config.py (not ignored by git, so the "
                "next `git add` commits it).",
            )
        ]

    def test_ignored_secrets_file_readable_by_others_is_a_warning(self, make_app: MakeApp) -> None:
        """A git-ignored secrets file is fine at 600 and a warning when others can read it."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        _git(root, "init", "-q")
        (root / ".gitignore").write_text("secrets.cfg\n")
        secrets_file = root / "secrets.cfg"
        secrets_file.write_text(f"SECRET_KEY = {self.key!r}\n")
        secrets_file.chmod(0o644)
        assert messages_of(app, "config.secret_key_in_source") == [
            (
                "warning",
                "SECRET_KEY is kept in secrets.cfg (ignored by git), but its mode is "
                "0644: other users of the host can read it.",
            )
        ]
        secrets_file.chmod(0o600)
        assert messages_of(app, "config.secret_key_in_source") == []

    def test_fires_on_a_file_in_an_ignored_folder(self, make_app: MakeApp) -> None:
        """A config file inside a folder git ignores as a whole is judged by its mode."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        _git(root, "init", "-q")
        (root / ".gitignore").write_text("secrets/\n")
        (root / "secrets").mkdir()
        held = root / "secrets" / "prod.cfg"
        held.write_text(f"SECRET_KEY = {self.key!r}\n")
        held.chmod(0o640)
        assert messages_of(app, "config.secret_key_in_source") == [
            (
                "warning",
                "SECRET_KEY is kept in secrets/prod.cfg (ignored by git), but its mode "
                "is 0640: other users of the host can read it.",
            )
        ]

    def test_git_found_above_a_project_subfolder(self, make_app: MakeApp) -> None:
        """A project folder inside a larger git repository still uses git's view."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)  # tmp/project, the repository is tmp/
        _git(root.parent, "init", "-q")
        (root / "deploy.env").write_text(f"SECRET_KEY={self.key}\n")
        _git(root.parent, "add", ".")
        assert messages_of(app, "config.secret_key_in_source") == [
            ("error", "SECRET_KEY's value is written in deploy.env (tracked by git).")
        ]

    def test_instance_config_at_600_is_quiet(self, make_app: MakeApp) -> None:
        """Flask's instance/config.py pattern at mode 600 passes."""
        app = make_app(SECRET_KEY=self.key)
        self.project(app)
        instance = Path(app.instance_path)
        instance.mkdir()
        config = instance / "config.py"
        config.write_text(f"SECRET_KEY = {self.key!r}\n")
        config.chmod(0o600)
        assert messages_of(app, "config.secret_key_in_source") == []

    def test_quiet_when_key_comes_from_the_environment(self, make_app: MakeApp) -> None:
        """Source that reads the key from the environment passes."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        (root / "app" / "settings.py").write_text("SECRET_KEY = os.environ['SECRET_KEY']\n")
        assert messages_of(app, "config.secret_key_in_source") == []

    def test_virtualenvs_are_not_scanned(self, make_app: MakeApp) -> None:
        """A virtualenv inside the project is not the app's source."""
        app = make_app(SECRET_KEY=self.key)
        root = self.project(app)
        venv = root / "venv"
        (venv / "lib").mkdir(parents=True)
        (venv / "pyvenv.cfg").write_text("home = /usr\n")
        (venv / "lib" / "cached.py").write_text(f"K = {self.key!r}\n")
        assert messages_of(app, "config.secret_key_in_source") == []

    def test_short_key_is_skipped_with_reason(self, make_app: MakeApp) -> None:
        """A key too short to search for is skipped, not passed."""
        outcome = outcome_of(make_app(SECRET_KEY="dev"), "config.secret_key_in_source")
        assert outcome.status.value == "skipped"
        assert "config.secret_key_weak reports it" in (outcome.reason or "")


class TestEnvironment:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("FLASK_CONFIG", "development"),
            ("APP_ENV", "dev"),
            ("FLASK_CONFIG", "myapp.config.DevelopmentConfig"),
            ("ENV", "testing"),
        ],
    )
    def test_fires_on_config(self, make_app: MakeApp, name: str, value: str) -> None:
        """A config setting that names a non-production environment is a warning."""
        assert messages_of(make_app(**{name: value}), "config.environment") == [
            ("warning", f"{name}={value!r} in the config names a non-production environment.")
        ]

    def test_fires_on_environment(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
        """The same setting in the process environment is reported too."""
        monkeypatch.setenv("FLASK_CONFIG", "local")
        assert messages_of(make_app(), "config.environment") == [
            (
                "warning",
                "FLASK_CONFIG='local' in the environment names a non-production environment.",
            )
        ]

    @pytest.mark.parametrize(
        "value", ["production", "prod", "staging", "myapp.config.ProductionConfig", "latest"]
    )
    def test_quiet(self, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """Production-like names (staging included) pass."""
        monkeypatch.setenv("APP_ENV", value)
        assert messages_of(make_app(FLASK_CONFIG=value), "config.environment") == []


class TestMaxContentLength:
    def test_fires(self, make_app: MakeApp) -> None:
        """An unset MAX_CONTENT_LENGTH is a warning."""
        assert messages_of(make_app(MAX_CONTENT_LENGTH=None), "config.max_content_length") == [
            ("warning", "MAX_CONTENT_LENGTH is not set: request bodies are unbounded.")
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """A bound: no finding."""
        assert messages_of(make_app(), "config.max_content_length") == []


class TestPreferredUrlScheme:
    def test_fires(self, make_app: MakeApp) -> None:
        """http in an app with no code that builds URLs outside a request is info."""
        app = make_app(PREFERRED_URL_SCHEME="http")
        assert messages_of(app, "config.preferred_url_scheme") == [
            (
                "info",
                "PREFERRED_URL_SCHEME is 'http', not 'https'. No url_for(_external=True) "
                f"outside request handlers was found in 0 .py files under {app.root_path}; "
                "inside a request the scheme comes from the request, so only links built "
                "elsewhere (a template rendered by a job, a library) would say http.",
            )
        ]

    def test_quiet(self, make_app: MakeApp) -> None:
        """https: no finding."""
        assert messages_of(make_app(), "config.preferred_url_scheme") == []


class TestTrustedHosts:
    def test_fires(self, make_app: MakeApp) -> None:
        """Neither TRUSTED_HOSTS nor SERVER_NAME is info."""
        app = make_app(TRUSTED_HOSTS=None, SERVER_NAME=None)
        assert messages_of(app, "config.trusted_hosts") == [
            (
                "info",
                "Neither TRUSTED_HOSTS nor SERVER_NAME is set: any Host is accepted (no "
                "absolute URL built from the request's host was found in 0 .py files under "
                f"{app.root_path}).",
            )
        ]

    def test_quiet_with_either(self, make_app: MakeApp) -> None:
        """TRUSTED_HOSTS or SERVER_NAME: no finding."""
        assert messages_of(make_app(), "config.trusted_hosts") == []
        app = make_app(TRUSTED_HOSTS=None, SERVER_NAME="app.example.com")
        assert messages_of(app, "config.trusted_hosts") == []


COMMON = "it is a common word or password"
SHORT = "it is shorter than 8 characters"


class TestWeakSecret:
    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            (
                {"ADMIN_PASSWORD": "password"},
                [f"ADMIN_PASSWORD holds a secret too weak to keep: {COMMON}."],
            ),
            (
                {"MAIL_PASSWORD": "hunter2"},
                [f"MAIL_PASSWORD holds a secret too weak to keep: {SHORT}."],
            ),
            (
                {"STRIPE_API_KEY": "sunshine"},
                [f"STRIPE_API_KEY holds a secret too weak to keep: {COMMON}."],
            ),
            (
                {"SQLALCHEMY_DATABASE_URI": "postgresql://app:app@db/app"},
                [
                    "the password in SQLALCHEMY_DATABASE_URI holds a secret too weak to keep: "
                    f"{SHORT}."
                ],
            ),
            (
                {"CACHE_REDIS_URL": "redis://cache:6379/0?password=changeme"},
                [
                    "the query parameter 'password' in CACHE_REDIS_URL holds a secret too weak "
                    f"to keep: {COMMON}."
                ],
            ),
            (
                {"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"password": "postgres"}}},
                [
                    "SQLALCHEMY_ENGINE_OPTIONS['connect_args']['password'] holds a secret too "
                    f"weak to keep: {COMMON}."
                ],
            ),
            (
                {"API_TOKENS": ["x" * 40, "abc"]},
                [f"API_TOKENS[1] holds a secret too weak to keep: {SHORT}."],
            ),
        ],
        ids=["common-word", "short", "api-key", "url-password", "url-query", "nested", "list"],
    )
    def test_fires(self, make_app: MakeApp, config: dict[str, object], expected: list[str]) -> None:
        """A credential-named setting, a URL's password or secret query parameter, or a
        nested credential that is short or common is an error naming where, never the value."""
        assert messages_of(make_app(**config), "config.weak_secret") == [
            ("error", message) for message in expected
        ]

    def test_names_the_setting_never_the_value(self, make_app: MakeApp) -> None:
        """The finding names the setting in its message and observed value; the value is in
        neither."""
        outcome = outcome_of(make_app(ADMIN_PASSWORD="sunshine"), "config.weak_secret")
        [finding] = outcome.findings
        assert finding.observed == {"setting": "ADMIN_PASSWORD"}
        assert "sunshine" not in repr(finding)

    @pytest.mark.parametrize(
        "config",
        [
            {"ADMIN_PASSWORD": secrets.token_urlsafe(24)},
            {"SQLALCHEMY_DATABASE_URI": f"postgresql://app:{secrets.token_hex(16)}@db/app"},
            {"MAIL_PASSWORD": None, "API_TOKEN": ""},
            # Settings about a secret, not secrets: their values are words by design.
            {"SECURITY_PASSWORD_HASH": "bcrypt", "JWT_TOKEN_LOCATION": ["headers"]},
            {"SECURITY_PASSWORD_COMPLEXITY_CHECKER": "zxcvbn"},
            # Judged by config.secret_key_weak and config.secret_key_fallbacks instead.
            {"SECRET_KEY_FALLBACKS": ["dev"]},
        ],
        ids=["random", "random-url-password", "unset", "settings", "not-a-credential", "own-check"],
    )
    def test_quiet(self, make_app: MakeApp, config: dict[str, object]) -> None:
        """Long random secrets, unset ones, settings about secrets and the keys with checks
        of their own: no finding."""
        assert messages_of(make_app(**config), "config.weak_secret") == []


def test_weak_secret_leaves_message_pairs_alone(make_app: Callable[..., Flask]) -> None:
    """Flask-Security's (message, category) tuples under *_PASSWORD names are no credentials;
    a list under a plural name is judged item by item."""
    app = make_app(
        SECURITY_MSG_INVALID_PASSWORD=("Invalid password", "error"),
        API_KEYS=["k" * 40, "short"],
    )
    found = messages_of(app, "config.weak_secret")
    assert len(found) == 1
    assert found[0][1].startswith("API_KEYS[1] holds a secret too weak to keep")
