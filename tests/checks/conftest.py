"""Fixtures of the check tests: the throwaway PostgreSQL and its helpers."""

from tests.postgres import blackhole, migrations_template, pg_database, postgres  # noqa: F401
