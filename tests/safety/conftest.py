"""Fixtures of the safety tests: the closed loopback port of the dependency tests."""

from tests.checks.test_dependencies import closed_port  # noqa: F401
