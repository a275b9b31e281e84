"""Three RabbitMQ nodes in one cluster, the deployment's topology on them (quorum
queues, a replica on every node), and a flow through the project's own outbox relay and
inbox consumer, both given every node in SIUI_AMQP_URL's form. The node both are
connected to is killed (-9) mid-flow. The ledger: every event written to the outbox is
applied by the consumer exactly once, none lost, none applied twice.

Slow (three nodes booted and joined: about a minute): ``make test-cluster``.
"""
from __future__ import annotations

import asyncio
import collections
import secrets
import time
import uuid

import pytest

from shared.broker import connect
from shared.db import create_pool
from shared.events import CertificateRegistered
from shared.inbox import start_consumer
from shared.listen import Subscription
from shared.outbox import add_event, run_relay
from tests.chaos.infra import remove_tree
from tests.support import infra
from tests.support.cluster import cluster_members, declare_on, start_cluster, stop_all, wait_for, workspace

pytestmark = pytest.mark.timeout(600)

EVENTS = 3000
KILL_AT = 1000       # events written before the node goes
PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="module")
async def cluster():
    base = workspace("siui-rabbit-cluster-")
    nodes = await start_cluster(base, 3)
    try:
        for user in ("siui-certs", "siui-users"):
            await nodes[0].ctl("add_user", user, PASSWORD)
            # Any name: the least-privilege set is deploy.broker's, tested on its own.
            await nodes[0].ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield nodes
    finally:
        await stop_all(nodes)
        remove_tree(base)


@pytest.fixture
async def schemas():
    url = await infra.create_database("siui_cluster")
    await infra.migrate_schema(url, "certs", "services.certs")
    await infra.migrate_schema(url, "users", "services.users")
    yield url
    await infra.drop_database(url)


def _event(n: int) -> CertificateRegistered:
    return CertificateRegistered(certificate_id=str(uuid.uuid4()), issuer_id=str(uuid.uuid4()), serial=str(n),
                                 username=f"user{n}", provider_cui="RO123", status="active",
                                 changed_at="2026-12-02T14:00:00+00:00")


async def test_a_node_killed_mid_flow_loses_nothing_and_applies_nothing_twice(cluster, schemas):
    nodes = cluster
    assert len(await cluster_members(nodes[0])) == 3
    exchange = f"siui.cluster.{uuid.uuid4().hex[:8]}"
    await declare_on(nodes[0], exchange)
    listed = await nodes[0].ctl("-q", "list_queues", "name", "type", "--formatter", "json")
    import json

    types = {q["name"]: q["type"] for q in json.loads(listed.stdout) if q["name"].startswith(exchange)}
    assert types[f"{exchange}.users.certs"] == "quorum"

    def urls(service: str) -> str:
        return ", ".join(f"amqp://siui-{service}:{PASSWORD}@127.0.0.1:{node.port}/" for node in nodes)

    certs_pool = await create_pool(schemas, "certs", max_size=4)
    users_pool = await create_pool(schemas, "users", max_size=4)
    publisher = await connect(urls("certs"), exchange)
    consumer = await connect(urls("users"), exchange)
    assert publisher.connection.url.port == consumer.connection.url.port == nodes[0].port
    moved = {"publisher": asyncio.Event(), "consumer": asyncio.Event()}
    publisher.on_reconnect(moved["publisher"].set)
    consumer.on_reconnect(moved["consumer"].set)

    applied: collections.Counter[str] = collections.Counter()

    async def handler(conn, envelope) -> None:
        applied[envelope.id] += 1

    stopping = asyncio.Event()
    relay = asyncio.create_task(run_relay(certs_pool, publisher, "certs", Subscription("outbox_certs"), stopping,
                                          poll_interval=0.1))
    stop_consumer = await start_consumer(users_pool, consumer, "users.certs", {"CertificateRegistered": handler})
    written: list[str] = []
    try:
        async def write(count: int) -> None:
            for n in range(count):
                async with certs_pool.acquire() as conn, conn.transaction():
                    envelope = await add_event(conn, _event(len(written)), "B")
                written.append(envelope.id)
                if n % 50 == 49:
                    await asyncio.sleep(0.02)  # a flow, not one burst

        await write(KILL_AT)
        await wait_for(lambda: len(applied) >= KILL_AT // 2, timeout=60, what="half the first events applied")
        killed = nodes[0].kill()
        killed_at = time.monotonic()
        writing = asyncio.create_task(write(EVENTS - KILL_AT))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in moved.values())), 60)
        moved_after = time.monotonic() - killed_at
        assert publisher.connection.url.port != nodes[0].port
        assert consumer.connection.url.port != nodes[0].port
        await writing
        await wait_for(lambda: len(applied) >= EVENTS, timeout=120, what=f"all {EVENTS} events applied")
        all_in = time.monotonic() - killed_at
        backlog = await certs_pool.fetchval("select count(*) from outbox")
        inbox = await users_pool.fetchval("select count(*) from inbox")
    finally:
        stopping.set()
        await asyncio.wait_for(relay, 30)
        await stop_consumer()
        await publisher.close()
        await consumer.close()
        await certs_pool.close()
        await users_pool.close()
        await nodes[0].restart_after_kill()
    lost = [i for i in written if i not in applied]
    twice = [i for i, times in applied.items() if times > 1]
    assert len(written) == EVENTS
    assert not lost, f"{len(lost)} events lost"
    assert not twice, f"{len(twice)} events applied twice"
    assert backlog == 0 and inbox == EVENTS
    print(f"\nledger: {EVENTS} events written to the outbox, node {nodes[0].name} (pid {killed}) killed after "
          f"{KILL_AT}; publisher and consumer on another node {moved_after:.2f}s later; every event applied "
          f"{all_in:.2f}s after the kill; lost 0, applied twice 0, outbox left {backlog}, inbox rows {inbox}")
