"""Two instances of every service behind deploy/haproxy's balancer (Debian's HAProxy):
both stacks on one database and one exchange, as two hosts of a site would be. The
balancer checks each instance's /readyz; the client's address reaches the services'
throttles through X-Forwarded-For; and when one whole instance set stops mid-traffic,
no request through the balancer fails.

In ``make test-cluster``, not ``make test``: two whole stacks beside the e2e session's own
would need more than the 100 connections of a default PostgreSQL."""
from __future__ import annotations

import asyncio
import collections
import time
import uuid

import aiohttp
import asyncpg
import pytest

from shared import license
from tests.support import infra
from tests.support.haproxy import running_balancer
from tests.support.stack import HTTP_SERVICES, start_stack
from tests.support.cluster import wait_for
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(400)

BALANCER_ADDRESS = "127.0.0.1"   # where HAProxy connects from: the trusted proxy
CLIENT = "127.0.0.7"             # a client on a loopback address of its own


@pytest.fixture(scope="module")
def two_stacks(pki):
    database_url = asyncio.run(infra.create_database("siui_lb_e2e"))
    exchange = f"siui.lb-e2e.{uuid.uuid4().hex[:8]}"
    # Two stacks on the machine's shared PostgreSQL: certs' pool kept small.
    env = {"SIUI_TRUSTED_PROXIES": BALANCER_ADDRESS, "SIUI_CERTS_POOL_SIZE": "3"}
    stacks = []
    try:
        stacks.append(start_stack(pki.data_dir, database_url, exchange, name="lb-stack-1", extra_env=env))
        stacks.append(start_stack(pki.data_dir, database_url, exchange, name="lb-stack-2", extra_env=env))
        yield tuple(stacks)
    finally:
        for stack in stacks:
            stack.stop()
        asyncio.run(infra.drop_database(database_url))
        asyncio.run(infra.delete_exchange(exchange))


@pytest.fixture(scope="module")
def balancer(two_stacks, tmp_path_factory):
    with running_balancer(two_stacks, tmp_path_factory.mktemp("haproxy")) as running:
        yield running


async def _all_ready(http: aiohttp.ClientSession, balancer) -> bool:
    for service in HTTP_SERVICES:
        async with http.get(balancer.url(service, "/readyz")) as r:
            if r.status != 200:
                return False
    return True


async def test_the_clients_address_reaches_the_throttle(balancer, two_stacks):
    connector = aiohttp.TCPConnector(local_addr=(CLIENT, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        await eventually(lambda: _all_ready(http, balancer), timeout=30)
        for _ in range(2):  # round robin: one on each instance
            async with http.post(balancer.url("keygen", "/v1/activations"),
                                 json={"license_serial": license.generate(), "cas": "B"}) as r:
                assert r.status == 403, await r.text()
    async def attempts():
        # The machine's PostgreSQL is shared (100 connections, two stacks here and other
        # suites): a moment with every slot taken is waited out, not a failure.
        try:
            conn = await asyncpg.connect(two_stacks[0].database_url)
        except asyncpg.TooManyConnectionsError:
            return None
        try:
            return await conn.fetch("select address from keygen.activation_attempts")
        finally:
            await conn.close()

    rows = await wait_for(attempts, timeout=30, what="a database connection")
    assert [r["address"] for r in rows] == [CLIENT, CLIENT]


async def test_one_instance_set_stopped_mid_traffic_fails_no_request(balancer, two_stacks):
    outcomes: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await eventually(lambda: _all_ready(http, balancer), timeout=30)

        async def traffic(service: str) -> None:
            while not stop.is_set():
                try:
                    async with http.get(balancer.url(service, "/healthz")) as r:
                        await r.read()
                        outcomes[f"{service} {r.status}"] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    outcomes[f"{service} {type(exc).__name__}"] += 1

        clients = [asyncio.create_task(traffic(s)) for s in HTTP_SERVICES for _ in range(2)]
        await wait_for(lambda: sum(outcomes.values()) >= 200, timeout=30, what="traffic flowing")
        started = time.monotonic()
        code = await asyncio.to_thread(two_stacks[0].stop)
        stopped_in = time.monotonic() - started
        before = sum(outcomes.values())
        await wait_for(lambda: sum(outcomes.values()) >= before + 500, timeout=60, what="500 more requests")
        stop.set()
        await asyncio.gather(*clients)
    failed = {k: v for k, v in outcomes.items() if not k.endswith(" 200")}
    print(f"\nledger: {sum(outcomes.values())} requests through the balancer, stack 1 stopped "
          f"(exit {code}, {stopped_in:.1f}s) mid-traffic; failed: {failed or 0}")
    assert not failed
