"""Fixtures of the integration tests."""

from tests.postgres import blackhole, migrations_template, pg_database, postgres  # noqa: F401
