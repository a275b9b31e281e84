"""Dead-lettering is the consumer's decision, on real PostgreSQL and RabbitMQ.

* Restarts of the consumer while its database is away return the message to the broker
  again and again (the broker counts every return: an earlier release's delivery limit
  of 5 parked it here): it is never dead-lettered, and is applied once when the
  database is back.
* A handler that fails for real is retried and parked after five failures, counted in
  inbox_failures meanwhile; the dead-letter gauge shows it; ``deploy.replay_dead_letters``
  publishes it again as its publisher once the handler is fixed, and it is applied once.
  A forged message in the same dead-letter queue is listed, never replayed.

A database and exchange of this module's own, so no other test's events meet these.
"""
from __future__ import annotations

import io
import uuid

import aio_pika
import pytest

from deploy.replay_dead_letters import replay
from shared import inbox, queues
from shared.broker import connect
from shared.db import create_pool
from shared.events import KeyIssued, new_envelope
from shared.inbox import CONSUMED, start_consumer

from tests.support import infra
from tests.support.wait import eventually

SCHEMA = "sample"
QUEUE = "users.key-issued"


def key_issued(cui: str) -> KeyIssued:
    return KeyIssued(provider_id=cui, cui=cui, provider_code=cui, provider_name="X", key_id=str(uuid.uuid4()),
                     key_digest="00", reset=False, issued_at="2026-01-01T00:00:00+00:00", issued_by="admin",
                     external_user=f"{cui}_CAS-B")


@pytest.fixture(scope="module")
async def config(pki):
    async with infra.isolated_config(pki.data_dir, "deadletters") as common:
        await infra.migrate_schema(common.database_url, SCHEMA, "tests.support.sample_service")
        yield common


@pytest.fixture
async def pool(config):
    pool = await create_pool(config.database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture
async def brokers(config):
    """(keygen, users): the publisher and the consumer, each as its own broker user."""
    keygen = await connect(infra.amqp_url_for("keygen"), config.events_exchange)
    users = await connect(infra.amqp_url_for("users"), config.events_exchange)
    yield keygen, users
    await keygen.close()
    await users.close()


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(inbox, "FIRST_RETRY_DELAY", 0.05)
    monkeypatch.setattr(inbox, "MAX_RETRY_DELAY", 0.2)


def counted(queue: str, outcome: str) -> float:
    return CONSUMED.labels(queue, outcome)._value.get()


async def parked(users, short: str = QUEUE) -> int | None:
    return (await queues.read_depths(users, [short]))[short][1]


async def _async(value):
    return value


async def test_restarts_while_the_database_is_away_never_dead_letter(pool, brokers, quick_retries):
    keygen, users = brokers
    name = users.queue_name(QUEUE)
    database_away = True
    attempts = 0

    async def on_key(conn, envelope):
        nonlocal attempts
        attempts += 1
        if database_away:
            raise ConnectionRefusedError("database restarting")
        await conn.execute("insert into notes (text) values ($1)", envelope.id)

    envelope = new_envelope(key_issued("11111110"), "B")
    await keygen.publish(envelope)
    requeued_before = counted(name, "requeued")
    for restart in range(8):  # more than the old delivery limit (5) of returns to the broker
        stop = await start_consumer(pool, users, QUEUE, {"KeyIssued": on_key})
        seen = attempts
        await eventually(lambda: _async(attempts > seen), what=f"attempt after restart {restart}")
        await stop()
    assert counted(name, "requeued") >= requeued_before + 8
    applied_before = counted(name, "applied")
    database_away = False
    stop = await start_consumer(pool, users, QUEUE, {"KeyIssued": on_key})
    try:
        await eventually(lambda: _async(counted(name, "applied") == applied_before + 1), what="applied once back")
        assert await pool.fetchval("select count(*) from notes where text = $1", envelope.id) == 1
        assert await pool.fetchval("select count(*) from inbox_failures") == 0  # outages are no failures
        assert await parked(users) == 0
    finally:
        await stop()


async def test_real_failures_are_parked_after_five_and_replayed_once_fixed(pool, brokers, config, quick_retries):
    keygen, users = brokers
    name = users.queue_name(QUEUE)
    broken = True
    failures_seen: list[int] = []

    async def on_key(conn, envelope):
        if broken:
            failures_seen.append(await pool.fetchval(
                "select coalesce(max(failures), 0) from inbox_failures where event_id = $1", envelope.id))
            raise RuntimeError("a bug in the handler")
        await conn.execute("insert into notes (text) values ($1)", envelope.id)

    stop = await start_consumer(pool, users, QUEUE, {"KeyIssued": on_key})
    try:
        envelope = new_envelope(key_issued("22222227"), "B")
        dead_before, failed_before = counted(name, "dead_lettered"), counted(name, "failed")
        await keygen.publish(envelope)
        await eventually(lambda: _async(counted(name, "dead_lettered") == dead_before + 1), what="dead-lettered")
        # Retried four times (each failure counted in the table), parked at the fifth.
        assert failures_seen == [0, 1, 2, 3, 4]
        assert counted(name, "failed") == failed_before + 4
        assert await pool.fetchval("select count(*) from inbox_failures where event_id = $1", envelope.id) == 0
        # A forged KeyIssued (siui-certs may publish, but not this) joins it in the queue.
        certs = await connect(infra.amqp_url_for("certs"), config.events_exchange)
        forged = new_envelope(key_issued("33333334"), "B")
        await certs.exchange.publish(aio_pika.Message(forged.to_json(), user_id=certs.user, message_id=forged.id),
                                     routing_key=KeyIssued.ROUTING_KEY)
        await certs.close()
        await eventually(lambda: _depth_is(users, 2), what="two messages parked")
        queues.export(await queues.read_depths(users, [QUEUE]))
        assert queues.DEAD_LETTERS.labels(QUEUE)._value.get() == 2

        # Listed first: nothing moves.
        listing = io.StringIO()
        assert await replay(config, [QUEUE], event_ids=set(), dry_run=True, out=listing) == 0
        assert f"would replay\t{QUEUE}\t{envelope.id}\tKeyIssued" in listing.getvalue()
        assert f"kept\t{QUEUE}\t{forged.id}" in listing.getvalue() and "forged" in listing.getvalue()
        assert await parked(users) == 2

        # Fixed, then replayed: applied once; the forged one stays, listed.
        broken = False
        applied_before = counted(name, "applied")
        report = io.StringIO()
        assert await replay(config, [QUEUE], event_ids=set(), dry_run=False, out=report) == 0
        assert "1 replayed, 1 left parked, 0 failed" in report.getvalue(), report.getvalue()
        await eventually(lambda: _async(counted(name, "applied") == applied_before + 1), what="replayed and applied")
        assert await pool.fetchval("select count(*) from notes where text = $1", envelope.id) == 1
        assert await pool.fetchval("select count(*) from notes where text = $1", forged.id) == 0
        assert await parked(users) == 1

        # Replaying an event again (an interrupted replay run twice) applies nothing twice.
        duplicates_before = counted(name, "duplicate")
        await keygen.publish(envelope)
        await eventually(lambda: _async(counted(name, "duplicate") == duplicates_before + 1), what="duplicate")
        assert await pool.fetchval("select count(*) from notes where text = $1", envelope.id) == 1
    finally:
        await stop()


async def _depth_is(users, expected: int) -> bool:
    return await parked(users) == expected


async def test_an_event_that_names_no_house_is_parked_at_once(pool, brokers):
    """EventDecodeError from a handler: it can never be applied, so it is not retried."""
    keygen, users = brokers
    name = users.queue_name(QUEUE)
    calls = 0

    async def on_key(conn, envelope):
        nonlocal calls
        calls += 1
        envelope.house_of("44444440_CAS-ZZ")

    stop = await start_consumer(pool, users, QUEUE, {"KeyIssued": on_key})
    try:
        before, failed = counted(name, "dead_lettered"), counted(name, "failed")
        await keygen.publish(new_envelope(key_issued("44444440"), "B"))
        await eventually(lambda: _async(counted(name, "dead_lettered") == before + 1), what="parked")
        assert calls == 1 and counted(name, "failed") == failed
    finally:
        await stop()
