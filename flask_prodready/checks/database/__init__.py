"""``database.*``: the databases the app reaches through SQLAlchemy.

The checks are declared in :mod:`.checks`; the modules beside it hold what they share.
"""

from .checks import (
    check_connect_timeout,
    check_migrations,
    check_pool_budget,
    check_pre_ping,
    check_sqlite,
    check_superuser,
    check_unreachable,
)

__all__ = [
    "check_connect_timeout",
    "check_migrations",
    "check_pool_budget",
    "check_pre_ping",
    "check_sqlite",
    "check_superuser",
    "check_unreachable",
]
