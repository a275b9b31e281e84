"""Two instances of every service behind deploy/haproxy's balancer (Debian's HAProxy):
both stacks on one database and one exchange, as two hosts of a site would be. The
balancer checks each instance's /readyz; the client's address reaches the services'
throttles through X-Forwarded-For, and ocsp's :8443 through the PROXY protocol header
HAProxy sends there (``send-proxy-v2``); a console session opened on one instance is
good on the other; and when one whole instance set stops mid-traffic, no request
through the balancer fails.

In ``make test-cluster``, not ``make test``: two whole stacks beside the e2e session's own
would need more than the 100 connections of a default PostgreSQL."""
from __future__ import annotations

import asyncio
import collections
import re
import ssl
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
    env = {"SIUI_TRUSTED_PROXIES": BALANCER_ADDRESS, "SIUI_CERTS_POOL_SIZE": "3",
           "SIUI_ONLINE_PROXY_PROTOCOL": "on"}
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


async def test_a_desktop_on_8443_through_the_balancer_is_seen_as_itself(balancer, two_stacks, pki):
    claimed = f"{uuid.uuid4().int % 10**8:08d}_CAS-B"
    online = f"https://127.0.0.1:{balancer.ports['ocsp_tls']}/v1/online/connect"
    tls = ssl.create_default_context(cafile=str(pki.root_ca_cert))
    async with aiohttp.ClientSession() as http:
        await eventually(lambda: _all_ready(http, balancer), timeout=30)
        for _ in range(4):  # a new connection each: both instances get some (leastconn)
            connector = aiohttp.TCPConnector(local_addr=(CLIENT, 0), ssl=tls, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as desktop:
                credentials = {"Authorization": aiohttp.encode_basic_auth(claimed, "ABCDE-1234-5678-9ABC")}
                async with desktop.post(online, headers=credentials) as r:
                    body = await r.json(content_type=None)
                    assert (r.status, body.get("reason")) == (401, "certificate_missing"), body
        async with http.post(balancer.url("users", "/v1/sessions"),
                             json={"username": "admin", "password": two_stacks[0].admin_password}) as r:
            assert r.status in (200, 201), await r.text()
            headers = {"Authorization": f"Bearer {(await r.json())['token']}"}

        async def logged():
            async with http.get(balancer.url("ocsp", "/v1/log"), params={"limit": "500"}, headers=headers) as r:
                assert r.status == 200, await r.text()
                entries = [e for e in (await r.json())["items"] if claimed in (e["detail"] or "")]
            return entries if len(entries) == 4 else None

        entries = await wait_for(logged, timeout=30, what="the four attempts in the OCSP log")
    assert {e["client"] for e in entries} == {CLIENT}


async def _console_pages_served(stack) -> float:
    """The /furnizori pages an instance's console answered 200 (its request histogram)."""
    async with aiohttp.ClientSession(headers=infra.metrics_headers(stack.data_dir)) as http:
        async with http.get(stack.url("console", "/metrics")) as r:
            assert r.status == 200, await r.text()
            text = await r.text()
    pattern = r'^siui_http_request_seconds_count\{([^}]*)\} (\S+)$'
    return sum(float(value) for labels, value in re.findall(pattern, text, flags=re.M)
               if 'route="/furnizori"' in labels and 'method="GET"' in labels and 'status="200"' in labels)


async def test_a_console_session_holds_on_both_instances(balancer, two_stacks):
    before = [await _console_pages_served(stack) for stack in two_stacks]
    # unsafe=True: the balancer is on 127.0.0.1, and aiohttp keeps no cookies of an IP otherwise.
    connector = aiohttp.TCPConnector(local_addr=(CLIENT, 0))
    async with aiohttp.ClientSession(base_url=balancer.url("console"), connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await eventually(lambda: _all_ready(browser, balancer), timeout=30)
        # Round robin: the form, the login and the pages land on both instances in turn;
        # the sealed cookie and its CSRF token made by one open on the other.
        async with browser.get("/") as page:
            csrf = re.search(r'name="csrf" value="([^"]*)"', await page.text()).group(1)
        async with browser.post("/", data={"csrf": csrf, "next": "", "username": "admin",
                                           "password": two_stacks[0].admin_password}, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        for _ in range(6):
            async with browser.get("/furnizori", allow_redirects=False) as r:
                assert r.status == 200, (r.status, r.headers.get("Location"))
    after = [await _console_pages_served(stack) for stack in two_stacks]
    served = [a - b for a, b in zip(after, before)]
    assert sum(served) == 6 and min(served) >= 1, served


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
