"""users service, the limits on logging in: per client address, for everybody at once
(both 429 with Retry-After), the bounded password-checking gate (503 with Retry-After),
and the rest of the API staying responsive while logins are attacked.

Real app, real PostgreSQL and RabbitMQ; the app believes X-Forwarded-For from 127.0.0.1,
so each attempt chooses its client address. Time is a clock the tests move, never a sleep.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.users import routes
from services.users.app import create_app
from services.users.routes import NATIONAL_ADMIN_ENSURED
from services.users.config import Config
from shared.auth import ALL_RIGHTS
from tests.integration.test_users_sessions import FAST, GENERIC, HeldHasher, answer, login
from tests.support import infra
from tests.support.clock import FrozenClock
from tests.support.wait import eventually

ADMIN_PASSWORD = "parola-limite-2026"


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_users_limits") as config:
        yield dataclasses.replace(config, trusted_proxies=frozenset({"127.0.0.1", "::1"}))


@pytest.fixture(scope="module")
def national(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


@contextlib.asynccontextmanager
async def users_app(common, *, clock=None, hasher=FAST, **settings):
    config = Config(common=common, port=0, admin_password=ADMIN_PASSWORD, **settings)
    overrides = {"clock": clock} if clock else {}
    async with TestClient(TestServer(create_app(config, hasher=hasher, **overrides))) as client:
        # The national admin is made in the background at start: these tests use it.
        await asyncio.wait_for(client.app[NATIONAL_ADMIN_ENSURED].wait(), 30)
        yield client


def window_clock(second: int) -> FrozenClock:
    """A frozen clock ``second`` seconds into the current minute (a window of the limit)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return FrozenClock(now + timedelta(seconds=second))


async def test_one_address_is_limited_alike_for_every_name_and_let_through_after(common):
    clock = window_clock(10)
    async with users_app(common, clock=clock, login_per_address=3, login_global_per_second=10_000) as client:
        for username in ("admin", "nobody.here", "admin"):
            assert (await login(client, username, "not-the-password-1", address="192.0.2.1")).status == 401
        existing = await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.1")
        unknown = await login(client, "nobody.here", "not-the-password-1", address="192.0.2.1")
        assert existing.status == 429 and existing.content_type == "application/problem+json"
        # Decided before the name is looked up: the same answer whichever name.
        assert await answer(existing) == await answer(unknown)
        wait = int(existing.headers["Retry-After"])
        # 3 in a window that is 10 s old: the next window, once a third of it has passed
        # (the 3 then weigh 2 in the sliding minute).
        assert wait == 70
        assert (await existing.json())["detail"] == f"too many login attempts from your address; try again in {wait} s"
        # Another address is not affected.
        assert (await login(client, "admin", "not-the-password-1", address="192.0.2.2")).status == 401
        clock.advance(seconds=wait - 1)
        assert (await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.1")).status == 429
        clock.advance(seconds=1)
        assert (await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.1")).status == 201


async def test_everybody_together_is_limited_per_second(common):
    clock = window_clock(30)
    async with users_app(common, clock=clock, login_per_address=1000, login_global_per_second=2) as client:
        for address in ("192.0.2.11", "192.0.2.12"):
            assert (await login(client, "admin", "not-the-password-1", address=address)).status == 401
        first = await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.13")
        second = await login(client, "nobody.else", "not-the-password-1", address="192.0.2.14")
        assert first.status == 429 and first.headers["Retry-After"] == "1"
        assert (await first.json())["detail"] == "too many login attempts at the moment; try again in 1 s"
        assert await answer(first) == await answer(second)
        clock.advance(seconds=1)
        assert (await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.13")).status == 201


async def test_a_full_gate_answers_503_at_once_and_the_held_logins_finish(common):
    hasher = HeldHasher()
    async with users_app(common, hasher=hasher, login_concurrency=1, login_queue=1,
                         login_global_per_second=10_000) as client:
        gate = client.server.app[routes.KIT].gate
        hasher.hold.clear()
        try:
            held = [asyncio.create_task(login(client, "admin", "not-the-password-1", address=f"192.0.2.2{i}"))
                    for i in range(2)]

            async def full():  # one check running (held), one waiting for the thread
                return gate.admitted == 2 and hasher.entered >= 1

            await eventually(full, what="the gate's thread and queue taken")
            started = time.monotonic()
            refused = await asyncio.wait_for(login(client, "admin", ADMIN_PASSWORD, address="192.0.2.29"), 5)
            assert time.monotonic() - started < 1  # at once: not queued behind the held ones
            assert refused.status == 503 and refused.content_type == "application/problem+json"
            assert refused.headers["Retry-After"] == "1"
            assert "try again in 1 s" in (await refused.json())["detail"]
        finally:
            hasher.hold.set()
        assert [r.status for r in await asyncio.wait_for(asyncio.gather(*held), 10)] == [401, 401]
        assert gate.admitted == 0
        # A 503 was not counted against anything: the same address logs in now.
        assert (await login(client, "admin", ADMIN_PASSWORD, address="192.0.2.29")).status == 201


async def test_a_login_storm_leaves_the_api_responsive(common, national):
    """40 parallel bogus logins, wave after wave, with the production argon2 parameters:
    GET /v1/users keeps answering in its usual time, because no login holds a pool
    connection while its password is checked and the checks are bounded. The global
    ceiling is lifted here so that the gate alone bounds the work."""
    async with users_app(common, hasher=None, login_global_per_second=10_000) as client:
        gate = client.server.app[routes.KIT].gate

        async def timed_get() -> float:
            started = time.perf_counter()
            response = await client.get("/v1/users", headers=national, params={"per_page": "20"})
            assert response.status == 200
            await response.read()
            return time.perf_counter() - started

        quiet = [await timed_get() for _ in range(30)]
        statuses: collections.Counter[int] = collections.Counter()
        waves = 0
        stop = asyncio.Event()

        async def bogus(i: int, wave: int) -> None:
            response = await client.post("/v1/sessions", json={"username": f"bogus.{i}", "password": "x" * 16},
                                         headers={"X-Forwarded-For": f"10.{wave % 250}.{i}.1"})
            statuses[response.status] += 1
            if response.status in (429, 503):
                assert int(response.headers["Retry-After"]) >= 1
            else:
                assert response.status == 401 and (await response.json())["detail"] == GENERIC

        async def storm() -> None:
            nonlocal waves
            while not stop.is_set():
                await asyncio.gather(*(bogus(i, waves) for i in range(40)))
                waves += 1

        storming = asyncio.create_task(storm())
        try:
            async def checking():  # the storm is on: every thread and queue place taken
                return gate.admitted >= gate.concurrency + gate.queue_limit

            await eventually(checking, what="the gate full of bogus logins")
            loaded = []
            while len(loaded) < 60 or waves < 1:
                loaded.append(await timed_get())
        finally:
            stop.set()
            await asyncio.wait_for(storming, 60)  # never a hang
        p95 = sorted(loaded)[int(len(loaded) * 0.95)]
        print(f"GET /v1/users quiet p50 {statistics.median(quiet) * 1000:.1f} ms; under {waves} waves of 40 "
              f"bogus logins p50 {statistics.median(loaded) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
              f"max {max(loaded) * 1000:.1f} ms; logins {dict(statuses)}")
        assert p95 < 0.25, (p95, statuses)
        assert set(statuses) <= {401, 429, 503} and statuses[401] > 0 and statuses[503] > 0


async def test_the_openapi_document_gives_the_limits_and_retry_after(common):
    async with users_app(common) as client:
        document = await (await client.get("/openapi.json")).json()
    login_op = document["paths"]["/v1/sessions"]["post"]
    for status in ("429", "503"):
        assert login_op["responses"][status]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for setting in ("SIUI_LOGIN_PER_ADDRESS_PER_MINUTE", "SIUI_LOGIN_GLOBAL_PER_SECOND", "SIUI_LOGIN_CONCURRENCY",
                    "SIUI_LOGIN_QUEUE", "SIUI_LOGIN_MAX_FAILURES"):
        assert setting in login_op["description"]
    assert "locked_until" not in document["components"]["schemas"]["Problem"]["properties"]
