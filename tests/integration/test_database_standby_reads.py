"""Listings from a standby (SIUI_DATABASE_READ_URL): the users service on a primary and
a streaming standby of the test's own (tests.support.cluster), its read URL the same
two hosts with ``prefer-standby``.

Shown on the real service over HTTP: ``GET /v1/users`` and ``GET /v1/audit`` are served
by the standby (its ``siui-users-read`` sessions; a user created while the standby's
replay is paused is not listed until the lag bound sends the listing to the primary);
every write lands on the primary (the standby holds no session of the service's own
pool, and the read pool's sessions refuse writes wherever they land); with the standby
stopped the listings still answer, from the primary, and writes carry on.

About fifteen seconds (two servers, a base backup, the lag bound waited out once)."""
from __future__ import annotations

import time
import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users.app import create_app
from services.users.config import Config
from shared.auth import ALL_RIGHTS
from shared.config import CommonConfig
from shared.db import POOL, READ_POOL, create_pool, reading
from tests.chaos.infra import remove_tree
from tests.support import infra
from tests.support.cluster import streaming_pair, wait_for, workspace

pytestmark = pytest.mark.timeout(300)

ROLE, PASSWORD, DATABASE = "siui_rd", "siui_rd", "siui_rd"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
MAX_LAG = 4.0


@pytest.fixture
async def pair():
    base = workspace("siui-pgread-")
    try:
        async with streaming_pair(base, ROLE, PASSWORD, DATABASE) as (primary, standby):
            yield primary, standby
    finally:
        remove_tree(base)


@pytest.fixture
async def service(pair, pki, auth_for):
    primary, standby = pair
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    exchange = f"siui.test.standby_reads.{uuid.uuid4().hex[:8]}"
    await infra.declare_exchange(exchange)
    common = CommonConfig.from_env({
        "SIUI_DATABASE_URL": f"postgresql://{ROLE}:{PASSWORD}@{hosts}/{DATABASE}",
        # The standby alone: when it is away, the service's own fallback answers (with
        # several hosts, prefer-standby would fall back inside the connect; shown below).
        "SIUI_DATABASE_READ_URL": f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{standby.port}/{DATABASE}",
        "SIUI_DATABASE_READ_MAX_LAG_SECONDS": str(MAX_LAG),
        "SIUI_AMQP_URL": infra.amqp_url(), "SIUI_DATA_DIR": str(pki.data_dir),
        "SIUI_EVENTS_EXCHANGE": exchange, "SIUI_LOG_FORMAT": "console"})
    config = Config(common=common, port=0, admin_password="parola-de-test-2026")
    app = create_app(config, hasher=FAST)
    cnas = auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client, app, cnas
    finally:
        await infra.delete_exchange(exchange)


async def admin_on(server) -> asyncpg.Connection:
    return await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/{DATABASE}")


async def sessions(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch("select application_name, count(*) from pg_stat_activity "
                             "where application_name like 'siui-users%' group by 1")
    return {r["application_name"]: r["count"] for r in rows}


async def create(client, cnas, username: str) -> None:
    response = await client.post("/v1/users", headers=cnas, json={
        "username": username, "password": "munte-si-mare-2026", "cas": "B", "employee_code": "E-1",
        "employee_name": username.title(), "roles": ["house-viewer"]})
    assert response.status == 201, await response.text()


async def listed(client, cnas) -> set[str]:
    response = await client.get("/v1/users", headers=cnas, params={"type": "internal", "per_page": 100})
    assert response.status == 200, await response.text()
    return {item["username"] for item in (await response.json())["items"]}


async def test_listings_come_from_the_standby_and_fall_back_to_the_primary(pair, service):
    primary, standby = pair
    client, app, cnas = service
    on_primary, on_standby = await admin_on(primary), await admin_on(standby)
    try:
        # A write, then the listing: the write is the primary's, the listing the standby's.
        await create(client, cnas, "ana.ionescu")
        await wait_for(lambda: _has(client, cnas, "ana.ionescu"), timeout=30, what="the first user listed")
        served = dict(app[READ_POOL].served)
        assert served["read_pool"] >= 1
        async with reading(app) as conn:
            assert (await conn.fetchval("select pg_is_in_recovery()"),
                    await conn.fetchval("show default_transaction_read_only")) == (True, "on")
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await conn.execute("insert into users (username) values ('nobody')")
        assert (await client.get("/v1/audit", headers=cnas)).status == 200
        assert app[READ_POOL].served["read_pool"] > served["read_pool"]
        # Writes never go to the standby: it holds the read pool's sessions only, the
        # primary the service's own pool (and listener) and none of the read pool's.
        assert set(await sessions(on_standby)) == {"siui-users-read"}
        assert "siui-users" in await sessions(on_primary)
        assert "siui-users-read" not in await sessions(on_primary)
        assert await app[POOL].fetchval("select pg_is_in_recovery()") is False

        # Replay paused: a user created now is on the primary but not yet on the standby,
        # so the listing, served from the standby, does not show it... (paused just after
        # a commit replayed, so that the lag bound's clock starts now, not at the last one)
        await create(client, cnas, "ioana.muresan")
        await wait_for(lambda: on_standby.fetchval("select count(*) from users.users where username = $1",
                                                   "ioana.muresan"), timeout=30, what="the standby replaying")
        await on_standby.execute("select pg_wal_replay_pause()")
        await create(client, cnas, "mihai.popa")
        assert await app[POOL].fetchval("select count(*) from users where username = 'mihai.popa'") == 1
        names = await listed(client, cnas)
        assert "ana.ionescu" in names and "mihai.popa" not in names
        # ...until the standby is more than MAX_LAG behind: then the primary answers.
        primary_before = app[READ_POOL].served["primary_pool"]
        paused_at = time.monotonic()
        await wait_for(lambda: _has(client, cnas, "mihai.popa"), timeout=MAX_LAG + 20,
                       what="the lag bound sending the listing to the primary")
        assert app[READ_POOL].served["primary_pool"] > primary_before
        print(f"\nlag bound {MAX_LAG:g}s: the paused standby passed over for the primary "
              f"{time.monotonic() - paused_at:.2f}s after the write it had not replayed; "
              f"reads so far: {app[READ_POOL].served}")
        assert await on_standby.fetchval("select pg_is_wal_replay_paused()") is True
        await on_standby.execute("select pg_wal_replay_resume()")
    finally:
        await on_standby.close()

    try:
        # The standby stopped: listings still answer (from the primary), writes carry on.
        await standby.stop()
        before = app[READ_POOL].served["primary_pool"]
        await create(client, cnas, "elena.popescu")
        assert {"ana.ionescu", "mihai.popa", "elena.popescu"} <= await listed(client, cnas)
        assert (await client.get("/v1/audit", headers=cnas)).status == 200
        assert app[READ_POOL].served["primary_pool"] >= before + 2
        async with reading(app) as conn:
            assert await conn.fetchval("select pg_is_in_recovery()") is False
    finally:
        await on_primary.close()


async def test_a_read_pool_of_several_hosts_prefers_the_standby_and_never_writes(pair):
    primary, standby = pair
    # The standby listed second: prefer-standby picks it by its state, not its place.
    given = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}"
    common = CommonConfig.from_env({"SIUI_DATABASE_URL": given, "SIUI_DATABASE_READ_URL": given})
    assert common.database_read_url.endswith("target_session_attrs=prefer-standby")
    for expected_standby in (True, False):
        pool = await create_pool(common.database_read_url, "public", min_size=0, max_size=2, read_only=True,
                                 probe_url=common.database_url)
        try:
            async with pool.acquire() as conn:
                assert (await conn.fetchval("select pg_is_in_recovery()"),
                        await conn.fetchval("select current_setting('application_name')")) == \
                    (expected_standby, "siui-public-read")
                # Read-only wherever it landed: on the primary too, no write gets through.
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await conn.execute("create table nobody (n int)")
        finally:
            await pool.close()
        await standby.stop()  # then: no standby left, the primary takes the reads


async def _has(client, cnas, username: str) -> bool:
    return username in await listed(client, cnas)
