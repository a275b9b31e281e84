"""users: the national admin made on first start (deploy/migrate.py and the app itself)."""
from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users.app import create_app
from services.users.routes import NATIONAL_ADMIN_ENSURED
from services.users.bootstrap import ensure_national_admin
from services.users.config import Config
from services.users.passwords import password_problems
from shared.config import CommonConfig
from shared.db import create_pool

from tests.support import infra

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


@pytest.fixture
async def database():
    url = await infra.create_database("siui_users_boot")
    yield url
    await infra.drop_database(url)


async def admin_row(pool):
    return await pool.fetchrow(
        """select u.cas, u.type, u.enabled, u.password_hash, array_agg(r.role) as roles
           from users u join user_roles r using (username) where username = 'admin'
           group by u.cas, u.type, u.enabled, u.password_hash""")


async def test_generated_once_then_left_alone(database):
    await infra.migrate_schema(database, "users", "services.users")
    pool = await create_pool(database, "users")
    try:
        async with pool.acquire() as conn, conn.transaction():
            generated = await ensure_national_admin(conn, None, hasher=FAST)
        assert generated and password_problems(generated, username="admin") is None
        row = await admin_row(pool)
        assert (row["cas"], row["type"], row["enabled"], row["roles"]) == ("CNAS", "internal", True, ["national-admin"])
        assert FAST.verify(row["password_hash"], generated)
        async with pool.acquire() as conn, conn.transaction():
            assert await ensure_national_admin(conn, "alta-parola-2026") is None
        assert (await admin_row(pool))["password_hash"] == row["password_hash"]
    finally:
        await pool.close()


async def test_concurrent_starts_create_one_admin(database):
    await infra.migrate_schema(database, "users", "services.users")
    pool = await create_pool(database, "users")

    async def start():
        async with pool.acquire() as conn, conn.transaction():
            return await ensure_national_admin(conn, None, hasher=FAST)

    try:
        results = await asyncio.gather(*(start() for _ in range(3)))
        generated = [r for r in results if r]
        assert len(generated) == 1
        assert FAST.verify((await admin_row(pool))["password_hash"], generated[0])
    finally:
        await pool.close()


async def test_the_app_creates_it_and_prints_the_password_once(database, pki, capsys):
    common = CommonConfig(database_url=database, database_owner_url=infra.owner_url(database),
                          amqp_url=infra.amqp_url(), data_dir=pki.data_dir,
                          events_exchange=f"siui.test.users.{uuid.uuid4().hex[:8]}", host="127.0.0.1",
                          log_format="console")
    await infra.declare_exchange(common.events_exchange)
    try:
        for start in range(2):
            async with TestClient(TestServer(create_app(Config(common=common, port=0), hasher=FAST))) as client:
                await asyncio.wait_for(client.app[NATIONAL_ADMIN_ENSURED].wait(), 10)
                printed = re.findall(r"user 'admin', password '([^']+)'", capsys.readouterr().out)
                if start == 0:
                    [password] = printed
                else:
                    assert printed == []
                response = await client.post("/v1/sessions", json={"username": "admin", "password": password})
                assert response.status == 201
    finally:
        await infra.delete_exchange(common.events_exchange)


async def test_logging_in_as_admin_while_it_is_being_made_is_503_not_a_wrong_password(database, pki):
    """Just started, with the users table held by another transaction: the admin's login
    says "starting, retry in 1 s", and succeeds once the admin is made."""
    common = CommonConfig(database_url=database, database_owner_url=infra.owner_url(database),
                          amqp_url=infra.amqp_url(), data_dir=pki.data_dir,
                          events_exchange=f"siui.test.users.{uuid.uuid4().hex[:8]}", host="127.0.0.1",
                          log_format="console")
    await infra.declare_exchange(common.events_exchange)
    await infra.migrate_schema(database, "users", "services.users")
    holder = await asyncpg.connect(database)
    try:
        await holder.execute("delete from users.users where username = 'admin'")
        locked = holder.transaction()
        await locked.start()
        await holder.execute("lock table users.users in access exclusive mode")
        config = Config(common=common, port=0, admin_password="Admin-Parola-2026!")
        async with TestClient(TestServer(create_app(config, hasher=FAST))) as client:
            response = await client.post("/v1/sessions", json={"username": "admin", "password": "Admin-Parola-2026!"})
            assert response.status == 503 and response.headers["Retry-After"] == "1"
            assert "starting" in (await response.json())["detail"]
            await locked.rollback()
            await asyncio.wait_for(client.app[NATIONAL_ADMIN_ENSURED].wait(), 20)
            response = await client.post("/v1/sessions", json={"username": "admin", "password": "Admin-Parola-2026!"})
            assert response.status == 201
    finally:
        await holder.close()
        await infra.delete_exchange(common.events_exchange)
