"""Prepare a deployment: the dev PKI (if absent), every service's schema, the national admin.

``python -m deploy.migrate`` is the one-shot step of docker-compose; ``deploy.run`` calls
``prepare()`` before starting the services. Safe to run any number of times.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import sys

import asyncpg

from deploy.devpki import ensure_dev_pki
from shared.config import CommonConfig, service_url
from shared.migrations import migrate, role_of

SCHEMAS = ("users", "keygen", "certs", "ocsp")


async def migrate_all(owner_url: str, database_url: str) -> None:
    """Every service's schema, migrated as the owner role, its share granted to the
    services' role (``database_url``'s)."""
    for schema in SCHEMAS:
        package = f"services.{schema}"
        if importlib.util.find_spec(package) is not None:
            await migrate(owner_url, schema, package, service_role=role_of(database_url))


async def bootstrap_admin(database_url: str, password: str | None) -> str | None:
    """Create the national admin on first start; returns a generated password, once."""
    from services.users.bootstrap import ensure_national_admin
    from shared.db import create_pool

    pool = await create_pool(database_url, "users", max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await ensure_national_admin(conn, password)
    finally:
        await pool.close()


def prepare(env=None) -> None:
    env = os.environ if env is None else env
    common = CommonConfig.from_env(env)
    ensure_dev_pki(common.data_dir)

    async def steps() -> str | None:
        await migrate_all(common.database_owner_url, common.database_url)
        return await bootstrap_admin(common.database_url, env.get("SIUI_ADMIN_PASSWORD") or None)

    try:
        generated = asyncio.run(steps())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"siui: cannot prepare the database at {common.database_url}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"siui: console   {service_url(env, 'console')}/", flush=True)
    if generated:
        print("siui: first start: national admin created", flush=True)
        print(f"siui:   user 'admin', password '{generated}' (shown once; change it after logging in)", flush=True)
    elif env.get("SIUI_ADMIN_PASSWORD"):
        print("siui: national admin 'admin' uses the password in SIUI_ADMIN_PASSWORD", flush=True)


if __name__ == "__main__":
    prepare()
