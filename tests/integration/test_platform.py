"""The shared platform against real PostgreSQL and RabbitMQ: migrations, the outbox
relay, idempotent consumption and the dead-letter path. Each side logs in as the service
it stands for: KeyIssued is published as siui-keygen and consumed as siui-users."""
from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from shared.broker import connect
from shared.db import create_pool
from shared.events import Envelope, ExternalUserDeleted, KeyIssued, new_envelope
from shared.inbox import CONSUMED, start_consumer
from shared.listen import Listener
from shared.migrations import PLATFORM, MigrationError, load_migrations
from shared.outbox import add_event, relay_once, run_relay
from shared.tasks import BackgroundTask
from tests.support import infra
from tests.support.wait import eventually

SCHEMA = "sample"


def key_issued(n: int = 0) -> KeyIssued:
    return KeyIssued(provider_id=str(n), cui="12433636", provider_code="12433636", provider_name="X",
                     key_id=str(uuid.uuid4()), key_digest="00", reset=False, issued_at="2026-01-01T00:00:00+00:00",
                     issued_by="admin", external_user="12433636_CAS-B")


@pytest.fixture
async def pool(database_url):
    await infra.migrate_schema(database_url, SCHEMA, "tests.support.sample_service")
    pool = await create_pool(database_url, SCHEMA)
    yield pool
    await pool.close()


async def test_migrations_apply_once_and_concurrently(database_url):
    results = await asyncio.gather(*(infra.migrate_schema(database_url, "sample_concurrent", "tests.support.sample_service")
                                     for _ in range(3)))
    # Once: the platform's migrations and the service's one, by exactly one of them.
    platform = len(load_migrations(*PLATFORM))
    assert sorted(len(r) for r in results) == [0, 0, platform + 1]
    assert await infra.migrate_schema(database_url, "sample_concurrent", "tests.support.sample_service") == []


async def test_edited_migration_is_refused(database_url, tmp_path):
    await infra.migrate_schema(database_url, "sample_edit", "tests.support.sample_service")
    conn = await __import__("asyncpg").connect(infra.owner_url(database_url))
    await conn.execute("update sample_edit.schema_migrations set checksum = 'x'")
    await conn.close()
    with pytest.raises(MigrationError, match="edited"):
        await infra.migrate_schema(database_url, "sample_edit", "tests.support.sample_service")


async def connect_as(service: str, common_config):
    return await connect(infra.amqp_url_for(service), common_config.events_exchange)


async def test_outbox_event_reaches_a_consumer_exactly_once(pool, common_config):
    broker = await connect_as("keygen", common_config)
    consumer = await connect_as("users", common_config)
    seen: list[str] = []

    async def on_key(conn, envelope):
        seen.append(envelope.id)
        await conn.execute("insert into notes (text) values ($1)", envelope.id)

    stop = await start_consumer(pool, consumer, "users.key-issued", {"KeyIssued": on_key})
    try:
        async with pool.acquire() as conn, conn.transaction():
            envelope = await add_event(conn, key_issued(), "B")
        assert await relay_once(pool, broker) == 1
        await eventually(lambda: _async(envelope.id in seen), what="event consumed")
        # The broker redelivers (a publisher retry after a lost confirm): one effect only.
        duplicates = CONSUMED.labels(broker.queue_name("users.key-issued"), "duplicate")
        before = duplicates._value.get()
        await broker.publish(envelope)
        await eventually(lambda: _async(duplicates._value.get() > before), what="duplicate recognised")
        assert seen.count(envelope.id) == 1
        assert await pool.fetchval("select count(*) from notes where text = $1", envelope.id) == 1
        assert await pool.fetchval("select count(*) from outbox") == 0
    finally:
        await stop()
        await broker.close()
        await consumer.close()


async def _drain(queue, expected: int) -> list[str]:
    """Take ``expected`` messages off ``queue`` (waiting for them); their event ids."""
    ids: list[str] = []

    async def more():
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            ids.append(Envelope.from_json(message.body).id)
        return len(ids) >= expected

    await eventually(more, timeout=20, what=f"{expected} events on the queue")
    return ids


async def test_two_relays_of_one_outbox_publish_each_event_once(pool, common_config):
    """Every process of a service runs a relay: a claimed row is published by one only,
    and a claim left by a relay that died lapses, and is then published."""
    first, second = await connect_as("users", common_config), await connect_as("users", common_config)
    reader = await connect_as("certs", common_config)
    channel = await reader.connection.channel()
    queue = await channel.get_queue(reader.queue_name("certs.users"))
    try:
        async with pool.acquire() as conn, conn.transaction():
            written = [await add_event(conn, ExternalUserDeleted(username=f"{n}_CAS-B"), "B") for n in range(1200)]
            # And one a relay claimed, then died with: its claim lapsed a second ago.
            dead = await add_event(conn, ExternalUserDeleted(username="99_CAS-B"), "B")
            await conn.execute("update outbox set claimed_until = now() - interval '1 second' where event_id = $1",
                               uuid.UUID(dead.id))
        while sum(await asyncio.gather(relay_once(pool, first), relay_once(pool, second))):
            pass
        ids = await _drain(queue, len(written) + 1)
        assert sorted(ids) == sorted(e.id for e in [*written, dead])  # each once, none missing
        assert await pool.fetchval("select count(*) from outbox") == 0
    finally:
        for broker in (first, second, reader):
            await broker.close()


async def test_an_event_no_queue_takes_stays_in_the_outbox(pool, common_config):
    """Published as mandatory: an event the broker cannot route to any queue (a topology
    not set up) is returned, not confirmed, and its row is kept for a later round."""
    broker = await connect_as("users", common_config)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "insert into outbox (event_id, event_type, routing_key, body) values ($1, $2, $3, $4)",
                uuid.uuid4(), "Nobody", "users.nobody_listens", b"{}")
        with pytest.raises(aio_pika.exceptions.PublishError):
            await relay_once(pool, broker)
        assert await pool.fetchval("select count(*) from outbox where routing_key = 'users.nobody_listens' "
                                   "and claimed_until is null") == 1
    finally:
        await pool.execute("delete from outbox where routing_key = 'users.nobody_listens'")
        await broker.close()


async def test_rolled_back_change_publishes_nothing(pool):
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await add_event(conn, key_issued(), "B")
            raise RuntimeError("the change failed")
    assert await pool.fetchval("select count(*) from outbox") == 0


@pytest.fixture
async def listener(database_url):
    """The process's LISTEN follower, as add_platform runs it."""
    listener = Listener(database_url)
    task = BackgroundTask("listen", listener.run)
    task.start()
    yield listener
    await task.stop()


async def test_relay_wakes_on_notify(pool, common_config, listener):
    broker = await connect_as("users", common_config)
    reader = await connect_as("certs", common_config)
    queue_name = broker.queue_name("certs.users")
    wake = listener.subscribe(f"outbox_{SCHEMA}")
    relay = asyncio.create_task(run_relay(pool, broker, SCHEMA, wake, asyncio.Event(), poll_interval=30))
    try:
        await eventually(lambda: _async(listener.connected), what="listening")
        async with pool.acquire() as conn, conn.transaction():
            envelope = await add_event(conn, ExternalUserDeleted(username="1_CAS-B"), "B")
        channel = await reader.connection.channel()
        queue = await channel.get_queue(queue_name)

        async def arrived():
            message = await queue.get(fail=False)
            if message is None:
                return None
            await message.ack()
            return Envelope.from_json(message.body).id == envelope.id

        # Woken by NOTIFY: well before the 30 s poll interval.
        await eventually(arrived, timeout=3, what="relayed event")
    finally:
        relay.cancel()
        await broker.close()
        await reader.close()


async def test_garbage_message_is_dead_lettered(pool, common_config):
    """From keygen itself (so not forged), but not an event: parked, never handled."""
    broker = await connect_as("keygen", common_config)
    consumer = await connect_as("users", common_config)

    async def never(conn, envelope):
        raise AssertionError("not an event; must not be handled")

    stop = await start_consumer(pool, consumer, "users.key-issued", {"KeyIssued": never})
    undecodable = CONSUMED.labels(consumer.queue_name("users.key-issued"), "dead_lettered")
    before = undecodable._value.get()
    try:
        await broker.exchange.publish(aio_pika.Message(b"not json", user_id=broker.user),
                                      routing_key="keygen.key_issued")
        admin = await aio_pika.connect(infra.admin_amqp_url())
        channel = await admin.channel()
        dlq = await channel.get_queue(consumer.queue_name("users.key-issued") + ".dlq")

        async def parked():
            message = await dlq.get(fail=False)
            if message is not None:
                await message.ack()
                return message.body == b"not json"

        await eventually(parked, what="message in the dead-letter queue")
        assert undecodable._value.get() == before + 1
        await admin.close()
    finally:
        await stop()
        await broker.close()
        await consumer.close()


async def _async(value):
    return value


async def test_clean_stop_publishes_what_was_committed(pool, common_config, listener):
    """A service stopped right after a change still hands its event to the broker."""
    broker = await connect_as("users", common_config)
    stopping = asyncio.Event()
    wake = listener.subscribe(f"outbox_{SCHEMA}")
    relay = asyncio.create_task(run_relay(pool, broker, SCHEMA, wake, stopping, poll_interval=30))
    try:
        async with pool.acquire() as conn, conn.transaction():
            envelope = await add_event(conn, ExternalUserDeleted(username="2_CAS-B"), "B")
        stopping.set()
        await asyncio.wait_for(relay, 5)
        # This test's event (a row another test's cancelled relay left claimed may remain).
        assert await pool.fetchval("select count(*) from outbox where event_id = $1", uuid.UUID(envelope.id)) == 0
    finally:
        relay.cancel()
        await broker.close()


async def test_a_consumer_stops_promptly_while_its_database_is_away(pool, common_config):
    """A message held for retry (database unreachable) must not keep the service from
    stopping; it goes back to its queue for the next start."""
    broker = await connect_as("certs", common_config)
    publisher = await connect_as("users", common_config)
    attempts = 0

    async def database_away(conn, envelope):
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("database restarting")

    stop = await start_consumer(pool, broker, "certs.users", {"ExternalUserDeleted": database_away})
    try:
        await publisher.publish(new_envelope(ExternalUserDeleted(username="3_CAS-B"), "B"))
        await eventually(lambda: _async(attempts >= 1), what="handler attempted")
        started = asyncio.get_running_loop().time()
        await stop()
        assert asyncio.get_running_loop().time() - started < 3
        attempts_at_stop = attempts
        channel = await broker.connection.channel()
        queue = await channel.get_queue(broker.queue_name("certs.users"))

        async def requeued():
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                return Envelope.from_json(message.body).data["username"] == "3_CAS-B"

        await eventually(requeued, what="message back in its queue")
        # Taken back by us, it can be nobody's retry any more: the stopped consumer made none.
        assert attempts == attempts_at_stop, "retried after stop"
    finally:
        await broker.close()
        await publisher.close()
