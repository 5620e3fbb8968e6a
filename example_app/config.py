"""The example app's configurations: ``development`` (default), ``production``, ``testing``.

The environment variable ``FLASK_CONFIG`` picks one (``create_app("production")`` does
too). Each class holds the fixed settings as class attributes, which
``app.config.from_object`` copies, and reads what differs per deploy from the
environment in :meth:`BaseConfig.from_environment`, called by the factory when the app
is created rather than when this module is imported, so the environment at start-up
is what counts:

- ``SECRET_KEY``: signs the session cookie. Production refuses to start without it.
- ``DATABASE_URL``: any SQLAlchemy URL; defaults to a SQLite file in the instance folder.
  ``postgres://`` and ``postgresql://`` use psycopg 3 (``postgresql+psycopg://``).
- ``PRODREADY_TOKEN``: the bearer token of ``/_readiness``; unset, the report answers 404.
- ``SENTRY_DSN`` (optional): errors go to Sentry, with ``SENTRY_ENVIRONMENT`` (default:
  the configuration's name) and ``SENTRY_RELEASE`` (default: what sentry-sdk finds).
- ``TRUSTED_HOSTS`` (production): comma-separated host names the app answers to.
- ``PROXY_HOPS`` (production): how many proxies in front of the app set
  ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (default 1: one nginx).
- ``LOG_LEVEL``: the app logger's level (default ``INFO``; ``DEBUG`` in development).

Tables: production never creates them; ``flask --app example_app db upgrade`` does, as a
deploy step before the new code serves requests. Development and testing create them
from the models on a database that has none yet, and mark them as at the migrations head,
so that ``flask run`` works on a fresh checkout and later migrations apply on top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy.engine import make_url

#: The SQLite file used when ``DATABASE_URL`` is not set, inside the instance folder.
SQLITE_FILENAME = "example.sqlite"
#: Hosts production answers to when ``TRUSTED_HOSTS`` is not set: loopback only.
DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1")
#: Largest request body production accepts; deploy/nginx-example-app.conf's
#: ``client_max_body_size 16m`` says the same, so nginx refuses what the app would.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: The development key: deliberately weak and labelled, so it cannot pass for a real one
#: (``flask readiness`` reports it as weak and as written in the source).
DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"
#: The values ``LOG_LEVEL`` accepts.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The SQLAlchemy driver for PostgreSQL URLs that name none: the one the example installs.
POSTGRES_DRIVER = "postgresql+psycopg"

# The connection pool of each worker process, for database servers (not SQLite). A sync
# gunicorn worker serves one request at a time, so it needs one connection; the rest is
# headroom for threads the app may start. workers x (POOL_SIZE + MAX_OVERFLOW) must fit
# the server's max_connections, which ``database.pool_budget`` checks.
POOL_SIZE = 5
MAX_OVERFLOW = 5
#: Seconds a request waits for a pooled connection before failing (under gunicorn's 30 s).
POOL_TIMEOUT = 10
#: Seconds after which a pooled connection is replaced (before idle-killing firewalls act).
POOL_RECYCLE = 1800
#: Seconds the driver waits to connect: a database host that stopped answering fails the
#: request after this, instead of hanging it until gunicorn kills the worker.
CONNECT_TIMEOUT = 5

#: Response headers production adds to every response of the app that lacks them. The
#: policy suits this app (its own stylesheet, no script, no frame); widen it with care.
PRODUCTION_SECURITY_HEADERS: dict[str, str] = {
    # One year, subdomains included: only once every subdomain is on HTTPS.
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # For browsers without CSP frame-ancestors.
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value with surrounding blanks removed; ``None`` when unset or blank."""
    value = environ.get(name, "").strip()
    return value or None


def database_url(environ: Mapping[str, str], instance_path: str) -> str:
    """``DATABASE_URL``, or a SQLite file in the instance folder when it is unset.

    ``postgres://`` (what some hosting platforms hand out, and which SQLAlchemy does not
    accept) and ``postgresql://`` (which SQLAlchemy would open with psycopg2, not
    installed here) become ``postgresql+psycopg://``; a URL naming its driver is kept.
    """
    url = _env(environ, "DATABASE_URL")
    if url is None:
        return "sqlite:///" + os.path.join(instance_path, SQLITE_FILENAME)
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return f"{POSTGRES_DRIVER}://" + url.removeprefix(bare)
    return url


def engine_options(database_uri: str) -> dict[str, Any]:
    """``SQLALCHEMY_ENGINE_OPTIONS`` for production on the database at ``database_uri``.

    Every engine tests a pooled connection before use (a database that restarted dropped
    them all). A database server also gets a bounded pool and a connect timeout, in the
    argument its driver reads; SQLite, a local file, has no server to wait for, and keeps
    Flask-SQLAlchemy's pool.
    """
    url = make_url(database_uri)
    options: dict[str, Any] = {"pool_pre_ping": True}
    backend = url.get_backend_name()
    if backend == "sqlite":
        return options
    options.update(
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT,
        pool_recycle=POOL_RECYCLE,
    )
    if backend in ("postgresql", "mysql", "mariadb"):
        # psycopg, psycopg2, PyMySQL and mysqlclient call it connect_timeout; pg8000 timeout.
        key = "timeout" if url.get_driver_name() == "pg8000" else "connect_timeout"
        options["connect_args"] = {key: CONNECT_TIMEOUT}
    return options


def trusted_hosts(environ: Mapping[str, str]) -> list[str]:
    """``TRUSTED_HOSTS`` split on commas, or the loopback names when it is unset or empty."""
    hosts = [host.strip() for host in environ.get("TRUSTED_HOSTS", "").split(",")]
    return [host for host in hosts if host] or list(DEFAULT_TRUSTED_HOSTS)


def log_level(environ: Mapping[str, str], default: str) -> str:
    """``LOG_LEVEL`` as a logging level name (``DEBUG``, ``INFO`` ...), or ``default``.

    An unknown name raises ``ValueError`` at start-up rather than logging at a level
    nobody chose.
    """
    name = (_env(environ, "LOG_LEVEL") or default).upper()
    if name not in LOG_LEVELS:
        raise ValueError(
            f"LOG_LEVEL={name!r} is not a logging level: use DEBUG, INFO, WARNING or ERROR"
        )
    return name


def proxy_hops(environ: Mapping[str, str], default: int) -> int:
    """``PROXY_HOPS`` as a count of proxies (0 or more), or ``default`` when unset."""
    value = _env(environ, "PROXY_HOPS")
    if value is None:
        return default
    if not value.isdigit():
        raise ValueError(f"PROXY_HOPS={value!r} is not a number of proxies (0, 1, 2 ...)")
    return int(value)


def sentry_options(environ: Mapping[str, str], config_name: str) -> dict[str, Any] | None:
    """The arguments of ``sentry_sdk.init()`` when ``SENTRY_DSN`` is set, else ``None``.

    The environment defaults to the configuration's name, so events from a laptop are
    never filed as production; the release defaults to ``None``, which lets sentry-sdk
    find one (``SENTRY_RELEASE``, the git commit, a platform's variable). Personal data
    (IP addresses, cookies, headers) is not sent.
    """
    dsn = _env(environ, "SENTRY_DSN")
    if dsn is None:
        return None
    return {
        "dsn": dsn,
        "environment": _env(environ, "SENTRY_ENVIRONMENT") or config_name,
        "release": _env(environ, "SENTRY_RELEASE"),
        "send_default_pii": False,
    }


class BaseConfig:
    """Settings shared by every configuration."""

    #: The name ``FLASK_CONFIG`` uses for this class.
    NAME: ClassVar[str] = "base"
    #: The app logger's level when ``LOG_LEVEL`` is unset.
    DEFAULT_LOG_LEVEL: ClassVar[str] = "INFO"

    DEBUG = False
    TESTING = False
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    #: Create the tables of a database that has none at start-up (see the module's doc).
    CREATE_TABLES_AT_START = False
    #: Proxies in front of the app whose X-Forwarded-For/-Proto ProxyFix trusts; 0: none.
    PROXY_HOPS = 0
    #: Headers added to every response that lacks them (production:
    #: :data:`PRODUCTION_SECURITY_HEADERS`).
    SECURITY_HEADERS: ClassVar[dict[str, str]] = {}

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
            "LOG_LEVEL": log_level(environ, cls.DEFAULT_LOG_LEVEL),
        }


class DevelopmentConfig(BaseConfig):
    """Local development: debugger on, and a labelled throwaway key when none is set."""

    NAME = "development"
    DEFAULT_LOG_LEVEL = "DEBUG"
    DEBUG = True
    CREATE_TABLES_AT_START = True

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
    CREATE_TABLES_AT_START = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The shared settings, with an in-memory SQLite database and a fixed test key."""
        settings = super().from_environment(environ, instance_path)
        settings["SECRET_KEY"] = settings["SECRET_KEY"] or "testing-only-" + "k" * 32
        if _env(environ, "DATABASE_URL") is None:
            settings["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        return settings


class ProductionConfig(BaseConfig):
    """A deploy behind an HTTPS proxy: no debugger, hardened cookies and headers, bounded
    bodies and pools, known hosts, tables from migrations only."""

    NAME = "production"
    DEBUG = False
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = MAX_UPLOAD_BYTES
    PREFERRED_URL_SCHEME = "https"
    PROXY_HOPS = 1
    SECURITY_HEADERS = PRODUCTION_SECURITY_HEADERS
    # /healthz is the readiness signal of this deploy (nginx's upstream, a load balancer,
    # the Kubernetes readiness probe): it fails while the database is unreachable. The
    # liveness probe uses /livez instead, which never touches the database (see
    # example_app.LIVENESS_PATH and deploy/kubernetes.yaml).
    PRODREADY_HEALTHZ_CHECKS: ClassVar[list[str]] = ["database.unreachable"]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
        """The shared settings plus hosts, proxy hops and engine options; a missing
        ``SECRET_KEY`` raises.

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
        settings["PROXY_HOPS"] = proxy_hops(environ, cls.PROXY_HOPS)
        settings["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(settings["SQLALCHEMY_DATABASE_URI"])
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
