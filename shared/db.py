"""The asyncpg pool as a ``cleanup_ctx`` resource, one PostgreSQL schema per service."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from shared.logging import get_logger
from shared.migrations import migrate, role_of

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


async def create_pool(database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first, so SQL names tables unqualified."""
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        server_settings=await _server_settings(database_url, schema),
        command_timeout=30,
    )


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
             owner_url: str | None = None, **pool_kw) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: migrate the service's schema as the owner role (``owner_url``, by
    default the service's own), under an advisory lock, granting the service role its
    share; then open the pool as the service role."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if migrations_package:
            await migrate(owner_url or database_url, schema, migrations_package,
                          service_role=role_of(database_url))
        pool = await create_pool(database_url, schema, **pool_kw)
        app[POOL] = pool
        try:
            yield
        finally:
            await close_pool(pool)

    return ctx
