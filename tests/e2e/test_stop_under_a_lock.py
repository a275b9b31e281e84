"""A clean stop is bounded even while the database holds the service up: the users
service (under make up's runner) is sent SIGTERM while its users table is locked by
someone else and requests wait on it. It answers those requests 503 (its lock_timeout),
and the whole stop takes seconds, not forever (an earlier release hung in 3 of 6 tries,
in ``pool.close()``)."""
from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import asyncpg
import pytest

from shared.auth import ALL_RIGHTS
from tests.support import infra
from tests.support.stack import start_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
STOP_BOUND = 25.0  # seconds: the runner's grace (15 s) plus the pool's bounded close, with margin


async def test_users_stops_in_bounded_time_while_its_table_is_locked(pki, token_for):
    database_url = await infra.create_database("siui_stop_lock")
    exchange = f"siui.e2e.stop.{uuid.uuid4().hex[:8]}"
    stack = await asyncio.to_thread(start_stack, pki.data_dir, database_url, exchange, name="stop-lock",
                                    services=("users",))
    locker = await asyncpg.connect(database_url)
    try:
        headers = {"Authorization": f"Bearer {token_for(cas='CNAS', username='admin', rights=ALL_RIGHTS)}"}
        lock = locker.transaction()
        await lock.start()
        await locker.execute("lock table users.users in access exclusive mode")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async def list_users():
                async with http.get(stack.url("users", "/v1/users"), headers=headers) as r:
                    return r.status, r.headers.get("Retry-After")

            waiting = [asyncio.create_task(list_users()) for _ in range(12)]

            async def blocked() -> bool:  # the service's statements wait on our lock
                return await locker.fetchval(
                    "select count(*) from pg_stat_activity where application_name = 'siui-users' "
                    "and wait_event_type = 'Lock'") > 0

            await eventually(blocked, timeout=10, what="users' statements waiting on the lock")
            started = time.monotonic()
            code = await asyncio.to_thread(stack.stop, STOP_BOUND + 10)
            took = time.monotonic() - started
            answers = await asyncio.gather(*waiting, return_exceptions=True)
        assert code == 0 and took < STOP_BOUND, (code, took)
        statuses = [a[0] for a in answers if isinstance(a, tuple)]
        assert 500 not in statuses and all(s in (200, 503) for s in statuses), answers
        assert all(a[1] for a in answers if isinstance(a, tuple) and a[0] == 503)  # told when to retry
        await lock.rollback()
    finally:
        await locker.close()
        stack.stop()
        await infra.drop_database(database_url)
        await infra.delete_exchange(exchange)
