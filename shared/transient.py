"""Which failures mean "a dependency is away for now", written once.

A request that meets one answers 503 with ``Retry-After`` (shared.http.problems), a
consumer holds its message and retries without counting a failure (shared.inbox), a
relay or writer keeps its rows and tries again. Anything else is a real failure.
"""
from __future__ import annotations

import asyncio

import asyncpg

#: The database is unreachable, restarting, shutting down, out of connections, stalled
#: (a lock held longer than our lock_timeout), or a statement was cancelled by it (an
#: operator, a statement timeout).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OSError,                               # refused, reset, unreachable
    asyncio.TimeoutError,                  # connect or pool-acquire timeouts
    asyncpg.PostgresConnectionError,       # class 08, ConnectionDoesNotExistError included
    asyncpg.OperatorInterventionError,     # class 57: admin/crash shutdown, cannot connect now, cancelled
    asyncpg.InsufficientResourcesError,    # class 53: too many connections, disk full
    asyncpg.InterfaceError,                # "connection is closed" after the server went away
    asyncpg.ReadOnlySQLTransactionError,   # 25006: a standby answering while the primary is away
    asyncpg.ObjectNotInPrerequisiteStateError,  # 55000: "database is not currently accepting
                                                # connections" (maintenance); 55P03 lock_timeout
                                                # (shared.db) while a table is held
    asyncpg.InternalClientError,           # a connection broken mid-query ("cannot switch to state")
)

#: What a consumer or relay holds its work through and tries again, never counting it as
#: the work's failure: the database away, or a transaction PostgreSQL rolled back to
#: resolve a conflict (class 40: serialization failure, deadlock), which the same work
#: passes when retried.
RETRY_LATER: tuple[type[BaseException], ...] = DATABASE_AWAY + (asyncpg.TransactionRollbackError,)

#: Seconds a client is asked to wait when a dependency is away.
RETRY_AFTER_SECONDS = 5
