"""The asyncpg pool as a ``cleanup_ctx`` resource, one PostgreSQL schema per service."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from shared.migrations import migrate

POOL = web.AppKey("pool", asyncpg.Pool)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so queries never json.dumps by hand.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first, so SQL names tables unqualified."""
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": f"{schema},public", "application_name": f"siui-{schema}"},
        command_timeout=30,
    )


def pool_ctx(database_url: str, schema: str, migrations_package: str | None = None,
             **pool_kw) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: migrate the service's schema (under an advisory lock), open the pool."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if migrations_package:
            await migrate(database_url, schema, migrations_package)
        pool = await create_pool(database_url, schema, **pool_kw)
        app[POOL] = pool
        try:
            yield
        finally:
            await pool.close()

    return ctx
