"""What a PostgreSQL or MySQL server says about the app's role and its connection limits.

``database.pool_budget`` needs the limits, ``database.superuser`` the role's powers; one
query per engine answers both, asked once per report on the report's connection to that
engine (see :mod:`.probe`), where ``database.unreachable``'s ``SELECT 1`` is asked too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...engine.context import CheckContext
from .engines import MYSQL_BACKENDS, POSTGRESQL, Database
from .probe import ANSWER_MARGIN, Answer, Connections, budget, query, wait_to_judge

#: Roles of managed PostgreSQL services (Amazon RDS, Azure, Cloud SQL) that are
#: superusers in all but the flag: their members administer the whole server.
MANAGED_ADMIN_ROLES = ("azure_pg_admin", "cloudsqlsuperuser", "rds_superuser")

# One query for what pool_budget and superuser need: the role, its limits, the server's.
_POSTGRESQL_FACTS = f"""
SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolconnlimit,
       d.datname::text, d.datconnlimit,
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       ARRAY(SELECT a.rolname::text FROM pg_roles a
             WHERE a.rolname IN ({", ".join(f"'{name}'" for name in MANAGED_ADMIN_ROLES)})
               AND pg_has_role(current_user, a.oid, 'MEMBER') ORDER BY 1)
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""
_MYSQL_FACTS = "SELECT CURRENT_USER(), DATABASE(), @@GLOBAL.max_connections, @@max_user_connections"


@dataclass(frozen=True)
class Facts:
    """What the server says about the app's role and its connection limits."""

    role: str
    superuser: bool
    create_role: bool
    create_db: bool
    admin_roles: tuple[str, ...]
    database: str
    max_connections: int
    reserved: tuple[tuple[str, int], ...]
    role_limit: int | None
    database_limit: int | None

    @property
    def server_allows(self) -> int:
        return self.max_connections - sum(n for _, n in self.reserved)

    @property
    def server_detail(self) -> str:
        parts = [f"max_connections {self.max_connections}"]
        parts += [f"{name} {n}" for name, n in self.reserved if n]
        return " - ".join(parts)


PING = "SELECT 1"


def server_facts(database: Database, seconds: float, connection: Any) -> Facts:
    """Ask a PostgreSQL or MySQL server about the app's role and its connection limits."""
    if database.backend == POSTGRESQL:
        row = query(connection, database, seconds, _POSTGRESQL_FACTS)[0]
        superuser = bool(row[1])
        # The role's and the database's CONNECTION LIMIT do not apply to superusers.
        return Facts(
            role=str(row[0]),
            superuser=superuser,
            create_role=bool(row[2]),
            create_db=bool(row[3]),
            admin_roles=tuple(str(name) for name in row[10] or ()),
            database=str(row[5]),
            max_connections=int(row[7]),
            reserved=(
                ("superuser_reserved_connections", int(row[8])),
                ("reserved_connections", int(row[9])),
            ),
            role_limit=None if superuser or int(row[4]) < 0 else int(row[4]),
            database_limit=None if superuser or int(row[6]) < 0 else int(row[6]),
        )
    row = query(connection, database, seconds, _MYSQL_FACTS)[0]
    user_limit = int(row[3] or 0)  # the session value is the account's own limit, if set
    return Facts(
        role=str(row[0]),
        superuser=False,
        create_role=False,
        create_db=False,
        admin_roles=(),
        database=str(row[1] or ""),
        max_connections=int(row[2]),
        reserved=(),
        role_limit=user_limit or None,
        database_limit=None,
    )


def has_facts(database: Database) -> bool:
    """Whether flask-prodready knows how to ask this kind of server for its facts."""
    return database.backend == POSTGRESQL or database.backend in MYSQL_BACKENDS


def ask_ping(ctx: CheckContext, database: Database) -> Answer:
    """``SELECT 1`` on the report's connection to ``database``."""
    seconds = budget(ctx)[1]
    return ctx.shared(Connections).ask(
        database, "ping", lambda connection: query(connection, database, seconds, PING), seconds
    )


def ask_facts(ctx: CheckContext, databases: Iterable[Database]) -> dict[int, Answer]:
    """The facts of each PostgreSQL and MySQL server, asked at once (keyed by ``id(database)``)."""
    seconds = budget(ctx)[1]
    connections = ctx.shared(Connections)
    return {
        id(database): connections.ask(
            database, "facts", functools.partial(server_facts, database, seconds), seconds
        )
        for database in databases
        if has_facts(database)
    }


def facts_of(ctx: CheckContext, database: Database, answer: Answer, begun: float) -> Facts:
    """The answered facts, or ``CannotJudge`` naming why the server could not be asked."""
    facts: Facts = wait_to_judge(
        answer,
        database,
        ctx.deadline - ANSWER_MARGIN,
        begun,
        failed=lambda error: f"could not be asked ({error}; database.unreachable reports it)",
    )
    return facts
