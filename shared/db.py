"""The asyncpg pool as a ``cleanup_ctx`` resource, one PostgreSQL schema per service."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web
from prometheus_client import Counter

from shared.logging import get_logger
from shared.migrations import migrate, role_of
from shared.transient import DATABASE_AWAY

log = get_logger(__name__)

POOL = web.AppKey("pool", asyncpg.Pool)


async def init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so queries never json.dumps by hand.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


#: No statement of a service waits longer than this for a lock: a table held by someone
#: else (an operator's long transaction, a stalled migration) makes a request answer 503
#: and a consumer hold its event and try again, instead of every pool connection waiting
#: behind the lock and the service freezing with them.
LOCK_TIMEOUT = "5s"
#: PostgreSQL 14+: a backend checks this often whether its client is still there, so the
#: statements of a killed process (waiting on a lock, say) end instead of piling up.
CLIENT_CHECK_INTERVAL = "2s"


async def _server_settings(database_url: str, schema: str) -> dict[str, str]:
    settings = {"search_path": f"{schema},public", "application_name": f"siui-{schema}",
                "lock_timeout": LOCK_TIMEOUT}
    # Startup settings, not SET: the pool's RESET ALL on release keeps them. An older server
    # refuses a setting it does not know, so its version is asked first.
    probe = await asyncpg.connect(database_url, timeout=10)
    try:
        if probe.get_server_version().major >= 14:
            settings["client_connection_check_interval"] = CLIENT_CHECK_INTERVAL
    finally:
        await probe.close()
    return settings


async def create_pool(database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10,
                      read_only: bool = False, probe_url: str | None = None, **connect_kw) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first, so SQL names tables unqualified.
    ``read_only``: a standby's pool (``ReadPool``): its sessions refuse every write, even
    when the URL lands on a primary, and are named ``siui-<schema>-read``; the server's
    version is asked of ``probe_url`` (the primary: a streaming standby has its major
    version), so that a standby away at start does not stop the service starting."""
    settings = await _server_settings(probe_url or database_url, schema)
    if read_only:
        settings["application_name"] += "-read"
        settings["default_transaction_read_only"] = "on"
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings=settings,
        command_timeout=30,
        **connect_kw,
    )


# -- reads that may come from a standby ------------------------------------------------------

#: How far behind the primary a standby is, in seconds, as the standby itself can tell
#: (no access to the primary needed, nor any privilege): 0 on a primary; 0 when its WAL
#: receiver runs and everything received is replayed (an idle primary sends nothing, so
#: the last replayed commit's age says nothing then); otherwise the age of the last
#: replayed commit, infinite when none is known. A standby cut off from its primary (no
#: receiver) is judged by that age too: it cannot know what it misses.
LAG_SQL = """
select case when not pg_is_in_recovery() then 0::float8
            when exists (select from pg_stat_wal_receiver)
                 and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0::float8
            else coalesce(extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
                          'Infinity'::float8)
       end"""

READS = Counter("siui_database_reads_total", "Reads that may use the standby, by the pool that served them",
                ["schema", "pool"])
PASSED_OVER = Counter("siui_database_standby_passed_over_total",
                      "Times the standby was found away or lagging and the primary read instead",
                      ["schema", "reason"])

#: A standby that does not connect, or answer its lag, this fast is away: the primary answers.
READ_ACQUIRE_SECONDS = 2.0
#: After a standby was away, reads go to the primary this long before it is tried again,
#: so a dead standby costs one failed connection per interval, not one per request.
READ_RETRY_SECONDS = 5.0
#: The lag is asked at most this often (a round trip), not on every read.
LAG_CHECK_SECONDS = 1.0


class ReadPool:
    """The optional standby pool (SIUI_DATABASE_READ_URL) behind the heavy listings that
    tolerate replication lag. ``connection(primary)`` gives a standby connection when
    the standby answers and is at most ``max_lag`` seconds behind, and otherwise a
    connection of ``primary``: a standby away or lagging costs freshness for nobody and
    availability for nobody, the primary serves as it did before there was a standby."""

    def __init__(self, pool: asyncpg.Pool, *, max_lag: float, schema: str,
                 clock: Callable[[], float] = time.monotonic):
        self.pool = pool
        self.max_lag = max_lag
        self.schema = schema
        self._clock = clock
        self._avoid_until = 0.0
        self._checked_at = float("-inf")
        #: Reads given by each pool (the read pool's may land on a primary: prefer-standby).
        self.served = {"read_pool": 0, "primary_pool": 0}

    @contextlib.asynccontextmanager
    async def connection(self, primary: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._standby()
        if conn is None:
            self.served["primary_pool"] += 1
            READS.labels(self.schema, "primary").inc()
            async with primary.acquire() as conn:
                yield conn
            return
        self.served["read_pool"] += 1
        READS.labels(self.schema, "read").inc()
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def _standby(self) -> asyncpg.Connection | None:
        now = self._clock()
        if now < self._avoid_until:
            return None
        try:
            # Connecting is bounded by the pool's connect timeout (READ_ACQUIRE_SECONDS,
            # pool_ctx); waiting for a busy pool's free connection is not, as for the
            # primary's pool: a pool fully in use is load, not a standby away.
            conn = await self.pool.acquire()
        except (*DATABASE_AWAY, asyncpg.PostgresError) as exc:
            # PostgresError too: a read URL refused (a wrong password, no such database)
            # is a deployment's mistake, said in the log, not a reason to fail a listing.
            self._avoid(now + READ_RETRY_SECONDS, "standby_away", error=type(exc).__name__)
            return None
        if now - self._checked_at < LAG_CHECK_SECONDS:
            return conn
        try:
            lag = await conn.fetchval(LAG_SQL, timeout=READ_ACQUIRE_SECONDS)
        except BaseException as exc:
            await self.pool.release(conn)  # whatever happened, the connection goes back
            if not isinstance(exc, DATABASE_AWAY):
                raise
            self._avoid(now + READ_RETRY_SECONDS, "standby_away", error=type(exc).__name__)
            return None
        if lag > self.max_lag:
            await self.pool.release(conn)
            self._avoid(now + LAG_CHECK_SECONDS, "standby_lagging", lag_seconds=lag)
            return None
        if self._avoid_until:
            log.info("standby_reads_resumed", schema=self.schema, lag_seconds=lag)
            self._avoid_until = 0.0
        self._checked_at = now
        return conn

    def _avoid(self, until: float, event: str, **details) -> None:
        PASSED_OVER.labels(self.schema, event.removeprefix("standby_")).inc()
        if not self._avoid_until:  # once per spell, not once per request
            log.warning(event, schema=self.schema, max_lag_seconds=self.max_lag,
                        detail="reads go to the primary", **details)
        self._avoid_until = until
        self._checked_at = float("-inf")


READ_POOL = web.AppKey("read_pool", ReadPool)


def reading(app: web.Application) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """``async with reading(app) as conn``: a connection for a read that tolerates
    replication lag (a listing, a count): the standby's when one is configured and fit,
    the primary's otherwise. Never for a read whose answer decides access (a login, a
    key check, a token), nor one that must see the caller's own write just made."""
    read_pool = app.get(READ_POOL)
    if read_pool is None:
        return app[POOL].acquire()
    return read_pool.connection(app[POOL])


POOL_CLOSE_SECONDS = 5.0


async def close_pool(pool: asyncpg.Pool, timeout: float = POOL_CLOSE_SECONDS) -> None:
    """Close ``pool`` gracefully, in bounded time: a statement still blocked (on a lock, a
    stalled server) would make ``close()`` wait for it forever; after ``timeout`` its
    connections are terminated instead (the server rolls their transactions back)."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except Exception:  # asyncio.TimeoutError, or the server gone mid-close
        log.warning("pool_terminated_at_stop", after_seconds=timeout)
        pool.terminate()


def pool_ctx(database_url: str, schema: str, migrations_package: str | None = None, *,
             owner_url: str | None = None, read_url: str | None = None, read_max_lag: float = 10.0,
             **pool_kw) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: migrate the service's schema as the owner role (``owner_url``, by
    default the service's own), under an advisory lock, granting the service role its
    share; then open the pool as the service role, and with ``read_url`` the standby's
    read-only pool (``READ_POOL``, used through ``reading``). That one opens no
    connection at start: a standby away then must not keep the service from starting."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if migrations_package:
            await migrate(owner_url or database_url, schema, migrations_package,
                          service_role=role_of(database_url))
        pool = await create_pool(database_url, schema, **pool_kw)
        app[POOL] = pool
        read_pool = None
        try:
            if read_url:
                read_pool = await create_pool(read_url, schema, min_size=0, max_size=pool_kw.get("max_size", 10),
                                              read_only=True, probe_url=database_url,
                                              timeout=READ_ACQUIRE_SECONDS)
                app[READ_POOL] = ReadPool(read_pool, max_lag=read_max_lag, schema=schema)
            yield
        finally:
            if read_pool is not None:
                await close_pool(read_pool)
            await close_pool(pool)

    return ctx
