"""``database.*``: the databases the app reaches through SQLAlchemy.

The checks are declared in :mod:`.checks` (and ``credentials_in_source`` in
:mod:`.credentials`); the modules beside them hold what they share.
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
from .credentials import check_credentials_in_source

__all__ = [
    "check_connect_timeout",
    "check_credentials_in_source",
    "check_migrations",
    "check_pool_budget",
    "check_pre_ping",
    "check_sqlite",
    "check_superuser",
    "check_unreachable",
]
