"""Fixtures of the safety tests: the closed loopback port of the dependency tests, and the
session's PostgreSQL (see tests/postgres.py)."""

from tests.checks.test_dependencies import closed_port  # noqa: F401
from tests.postgres import pg_database, postgres  # noqa: F401
