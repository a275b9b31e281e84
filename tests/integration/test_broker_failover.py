"""SIUI_AMQP_URL with several nodes: the first that answers is taken, and when its node
dies the connection moves to the next, with its channel, and publishes with confirms
there. Two independent RabbitMQ nodes of the test's own (tests/support/cluster.py), not
a cluster: the fast check of the failover itself; tests/cluster/ (``make test-cluster``)
has the three-node cluster with quorum queues and the ledger of a flow."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.broker import connect
from shared.failover import FailoverConnection, connect_failover
from shared.config import ConfigError
from tests.chaos.infra import remove_tree
from tests.support.cluster import declare_on, start_nodes, stop_all, wait_for, workspace
from tests.support.infra import free_port

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def two_nodes():
    base = workspace("siui-failover-")
    nodes = await start_nodes(base, 2)
    yield nodes
    await stop_all(nodes)
    remove_tree(base)


async def _publish(broker) -> None:
    """One event under a routing key bound to a queue (what the outbox relay sends)."""
    await broker.publish_body(b"{}", routing_key="keygen.key_issued", event_id=str(uuid.uuid4()),
                              event_type="KeyIssued")


async def _count(node, queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(node.admin_url, timeout=10)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count
    finally:
        await connection.close()


async def test_the_first_node_that_answers_is_taken(two_nodes):
    a, b = two_nodes
    dead = free_port()
    urls = [f"amqp://guest:guest@127.0.0.1:{dead}/", a.admin_url, b.admin_url]
    connection = await connect_failover(urls, wait_seconds=10)
    try:
        assert isinstance(connection, FailoverConnection)
        assert connection.url.port == a.port  # the dead one skipped, the next in order taken
    finally:
        await connection.close()


async def test_a_wrong_password_fails_at_once(two_nodes):
    a, _ = two_nodes
    with pytest.raises(ConfigError, match="refused the login"):
        await connect_failover([f"amqp://guest:wrong@127.0.0.1:{a.port}/"], wait_seconds=30)


async def test_the_connection_moves_to_the_next_node_when_its_node_dies(two_nodes):
    a, b = two_nodes
    exchange = f"siui.test.failover.{uuid.uuid4().hex[:8]}"
    await declare_on(a, exchange)
    await declare_on(b, exchange)
    queue = f"{exchange}.users.key-issued"
    broker = await connect(f"{a.admin_url}, {b.admin_url}", exchange, wait_seconds=10)
    moved = asyncio.Event()
    broker.on_reconnect(moved.set)
    try:
        await _publish(broker)
        assert broker.connection.url.port == a.port
        assert await _count(a, queue) == 1

        a.kill()
        await asyncio.wait_for(moved.wait(), 30)
        assert broker.connection.url.port == b.port

        # The restored confirming channel publishes on the other node, confirmed there.
        await wait_for(lambda: not broker.channel.is_closed, timeout=10, what="the channel restored")
        await _publish(broker)
        assert await _count(b, queue) == 1
    finally:
        await broker.close()
        await a.restart_after_kill()


async def test_ended_sessions_are_read_again_after_the_connection_moves(two_nodes):
    """A service's SessionRevoked queue is exclusive: it dies with the node's connection,
    and a logout published meanwhile reaches no queue of the service's. After the move it
    reads the ended sessions from users again (shared.service.verifier_ctx)."""
    from aiohttp import web

    from shared.auth import VERIFIER
    from shared.broker import BROKER
    from shared.config import CommonConfig
    from shared.service import verifier_ctx

    a, b = two_nodes
    exchange = f"siui.test.failover.{uuid.uuid4().hex[:8]}"
    await declare_on(a, exchange)
    await declare_on(b, exchange)
    ended = [str(uuid.uuid4())]
    users = web.Application()

    async def revoked(_request):
        return web.json_response({"items": [{"jti": jti} for jti in ended]})

    users.router.add_get("/v1/sessions/revoked", revoked)
    runner = web.AppRunner(users)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    class Verifier:  # the part of TokenVerifier the follower uses
        revoked: set[str] = set()

    verifier = Verifier()
    common = CommonConfig.from_env({"SIUI_EVENTS_EXCHANGE": exchange, "SIUI_USERS_URL": f"http://127.0.0.1:{port}"})
    broker = await connect(f"{a.admin_url},{b.admin_url}", exchange, wait_seconds=10)
    app = web.Application()
    app[BROKER] = broker
    following = verifier_ctx(common, verifier, service="certs")(app)
    try:
        await following.__anext__()
        assert app[VERIFIER].revoked == {ended[0]}
        ended.append(str(uuid.uuid4()))  # a logout while the connection is away
        a.kill()
        await wait_for(lambda: ended[1] in verifier.revoked, timeout=30, what="the logout read after the move")
        assert broker.connection.url.port == b.port
    finally:
        with pytest.raises(StopAsyncIteration):
            await following.__anext__()
        await broker.close()
        await runner.cleanup()
        await a.restart_after_kill()
