"""The example app's configurations: ``development`` (default), ``production``, ``testing``.

The environment variable ``FLASK_CONFIG`` picks one (``create_app("production")`` does
too). Each class holds the fixed settings as class attributes, which
``app.config.from_object`` copies, and reads what differs per deploy from the
environment in :meth:`BaseConfig.from_environment`, called by the factory when the app
is created rather than when this module is imported, so the environment at start-up
is what counts:

- ``SECRET_KEY``: signs the session cookie. Production refuses to start without it.
- ``DATABASE_URL``: any SQLAlchemy URL; defaults to a SQLite file in the instance folder.
- ``PRODREADY_TOKEN``: the bearer token of ``/_readiness``; unset, the report answers 404.
- ``TRUSTED_HOSTS`` (production): comma-separated host names the app answers to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

#: The SQLite file used when ``DATABASE_URL`` is not set, inside the instance folder.
SQLITE_FILENAME = "example.sqlite"
#: Hosts production answers to when ``TRUSTED_HOSTS`` is not set: loopback only.
DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1")
#: Largest request body production accepts.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: The development key: deliberately weak and labelled, so it cannot pass for a real one
#: (``flask readiness`` reports it as weak and as written in the source).
DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value with surrounding blanks removed; ``None`` when unset or blank."""
    value = environ.get(name, "").strip()
    return value or None


def database_url(environ: Mapping[str, str], instance_path: str) -> str:
    """``DATABASE_URL``, or a SQLite file in the instance folder when it is unset.

    The ``postgres://`` scheme some hosting platforms hand out is renamed to
    ``postgresql://``, the only spelling SQLAlchemy accepts.
    """
    url = _env(environ, "DATABASE_URL")
    if url is None:
        return "sqlite:///" + os.path.join(instance_path, SQLITE_FILENAME)
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return url


def trusted_hosts(environ: Mapping[str, str]) -> list[str]:
    """``TRUSTED_HOSTS`` split on commas, or the loopback names when it is unset or empty."""
    hosts = [host.strip() for host in environ.get("TRUSTED_HOSTS", "").split(",")]
    return [host for host in hosts if host] or list(DEFAULT_TRUSTED_HOSTS)


class BaseConfig:
    """Settings shared by every configuration."""

    #: The name ``FLASK_CONFIG`` uses for this class.
    NAME: ClassVar[str] = "base"

    DEBUG = False
    TESTING = False
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The per-deploy settings, read from ``environ`` when the app is created.

        The configuration's name is kept as ``FLASK_CONFIG`` in ``app.config`` so that
        ``flask readiness`` sees which one was loaded even when it came from the
        factory's argument rather than from the environment.
        """
        return {
            "FLASK_CONFIG": cls.NAME,
            "SECRET_KEY": _env(environ, "SECRET_KEY"),
            "SQLALCHEMY_DATABASE_URI": database_url(environ, instance_path),
            "PRODREADY_TOKEN": _env(environ, "PRODREADY_TOKEN"),
        }


class DevelopmentConfig(BaseConfig):
    """Local development: debugger on, and a labelled throwaway key when none is set."""

    NAME = "development"
    DEBUG = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The shared settings, with :data:`DEV_SECRET_KEY` when ``SECRET_KEY`` is unset."""
        settings = super().from_environment(environ, instance_path)
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or DEV_SECRET_KEY
        return settings


class TestingConfig(BaseConfig):
    """The test suite: ``TESTING`` on, an in-memory database unless ``DATABASE_URL`` is set."""

    NAME = "testing"
    TESTING = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The shared settings, with an in-memory SQLite database and a fixed test key."""
        settings = super().from_environment(environ, instance_path)
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or "testing-only-" + "k" * 32
        if _env(environ, "DATABASE_URL") is None:
            settings["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        return settings


class ProductionConfig(BaseConfig):
    """A deploy behind HTTPS: no debugger, hardened cookies, bounded bodies, known hosts."""

    NAME = "production"
    DEBUG = False
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = MAX_UPLOAD_BYTES
    PREFERRED_URL_SCHEME = "https"
    # A database that restarted drops pooled connections; test each one before use.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The shared settings plus ``TRUSTED_HOSTS``; a missing ``SECRET_KEY`` raises.

        A production app without a key would sign sessions with nothing (Flask refuses
        to use them) or, worse, with a default someone left in; failing at start-up
        turns a latent hole into a failed deploy with a clear message.
        """
        settings = super().from_environment(environ, instance_path)
        if settings["SECRET_KEY"] is None:
            raise RuntimeError(
                "The production configuration needs the SECRET_KEY environment variable; "
                "it is not set. Generate one with: "
                "python -c 'import secrets; print(secrets.token_hex())'"
            )
        settings["TRUSTED_HOSTS"] = trusted_hosts(environ)
        return settings


#: ``FLASK_CONFIG`` values and the classes they select.
CONFIGS: dict[str, type[BaseConfig]] = {
    config.NAME: config for config in (DevelopmentConfig, ProductionConfig, TestingConfig)
}
DEFAULT_CONFIG = DevelopmentConfig.NAME


def config_class(name: str | None) -> type[BaseConfig]:
    """The configuration called ``name``; ``None`` or blank means the default.

    An unknown name raises ``ValueError`` listing the known ones: silently falling
    back to development would run a production host with the debugger on.
    """
    key = (name or "").strip().lower() or DEFAULT_CONFIG
    try:
        return CONFIGS[key]
    except KeyError:
        known = ", ".join(sorted(CONFIGS))
        raise ValueError(
            f"FLASK_CONFIG={name!r} is not a known configuration: use {known}"
        ) from None
