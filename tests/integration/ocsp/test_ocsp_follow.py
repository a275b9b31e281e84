"""Responders follow events from the broker, not the database (issue 14 part 2): each
ocsp process's own queue carries certs' events straight into its registry; the start
state is read after the queue is bound, so no event of the load's time is lost and none
older rolls it back; the responder answers from memory while its database is stopped
(a PostgreSQL of the test's own) and while its broker connection is down (a RabbitMQ
node of the test's own), and reads again what it missed once the broker is back."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY as METRICS

from deploy.broker import DEFAULT_EXCHANGE_PREFIX, Target, definitions, permissions
from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder.registry import Registry
from services.ocsp.state import FOLLOWER, queries
from services.ocsp.state.follower import StateFollower, reload
from shared.broker import BROKER, broker_url, connect
from shared.db import create_pool
from shared.holders import holder_key, holder_of
from tests.chaos.infra import Postgres, remove_tree
from tests.support import infra
from tests.support.cluster import start_nodes, stop_all, workspace
from tests.support.ocsp_harness import Feed, Issuer, ask, registered, request_der
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(240)

HOLD = x509.ReasonFlags.certificate_hold
USER = "12433636_CAS-B"


def _suspended(response) -> bool:
    return (response.certificate_status == x509.ocsp.OCSPCertStatus.REVOKED
            and response.revocation_reason == HOLD)


def _good(response) -> bool:
    return response.certificate_status == x509.ocsp.OCSPCertStatus.GOOD


@contextlib.asynccontextmanager
async def responder(common):
    config = Config(common=common, port=0, tls_port=0, workers=1)
    async with TestClient(TestServer(create_app(config))) as client:
        yield client


# -- on the session's broker and database ---------------------------------------------------------

async def test_a_suspension_reaches_the_responder_through_its_own_queue_within_a_second(common_config, feed):
    ca = Issuer.new("Follow Test CA")
    leaf = ca.issue("follow one")
    async with responder(common_config) as client:
        follower = client.app[FOLLOWER]
        assert follower.queue_name.startswith(f"{common_config.events_exchange}.ocsp.follow.")
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf)
        await registered(client.app, ca, leaf.serial)
        der = request_der(ca, leaf)
        assert _good(await ask(client, der))
        before = METRICS.get_sample_value("siui_ocsp_state_propagation_seconds_count", {"action": "suspended"}) or 0

        started = time.monotonic()
        await feed.certificate(ca, leaf, status="suspended", certificate_id=certificate_id)

        async def answered_suspended():
            return _suspended(await ask(client, der))

        await eventually(answered_suspended, timeout=5, interval=0.02, what="the suspension in the answer")
        elapsed = time.monotonic() - started
        print(f"\nsuspension published → answered by the responder: {elapsed * 1000:.0f} ms")
        assert elapsed <= 1.0
        after = METRICS.get_sample_value("siui_ocsp_state_propagation_seconds_count", {"action": "suspended"})
        assert after == before + 1


@pytest.fixture
async def ocsp_tables(common_config):
    await infra.migrate_schema(common_config.database_url, "ocsp", "services.ocsp")
    pool = await create_pool(common_config.database_url, "ocsp", max_size=2)
    yield pool
    await pool.close()


async def _store_state(pool, ca: Issuer, serial: int, status: str, changed_at: datetime) -> None:
    """What the durable ocsp.certs consumer stores for an event (the tables a load reads)."""
    async with pool.acquire() as conn:
        await queries.upsert_issuer(conn, uuid.UUID(ca.issuer_id), ca.cert.subject.rfc4514_string(),
                                    ca.cert.public_bytes(serialization.Encoding.DER), changed_at)
        await queries.upsert_certificate(
            conn, issuer_id=uuid.UUID(ca.issuer_id), serial=serial, certificate_id=uuid.uuid4(), username=USER,
            cas="B", provider_cui="12433636", status=status, changed_at=changed_at, revocation_reason=None,
            not_before=None, not_after=None, certificate_der=None)


async def test_the_load_after_the_queue_loses_no_event_and_an_older_one_does_not_roll_it_back(
        common_config, feed, ocsp_tables):
    """The race of the start: the queue is bound, the tables are read (an event arrives
    after the read, before its rows are applied), then the queued events are applied."""
    ca = Issuer.new("Follow Race CA")
    during, after = ca.issue("during the load"), ca.issue("after the load")
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    await _store_state(ocsp_tables, ca, during.serial, "active", t0)            # what the load reads
    await _store_state(ocsp_tables, ca, after.serial, "suspended", t0 + timedelta(minutes=2))
    broker = await connect(infra.amqp_url_for("ocsp"), common_config.events_exchange)
    registry = Registry()
    follower: StateFollower | None = None

    @contextlib.asynccontextmanager
    async def read():
        async with ocsp_tables.acquire() as conn:
            yield conn
        if follower.reloads == 0 and not follower.loaded.is_set():
            # The snapshot is read; its rows not applied yet: a suspension commits now.
            taken = follower.applied
            await feed.certificate(ca, during, status="suspended", changed_at=t0 + timedelta(minutes=1))
            await eventually(lambda: _queued(follower), what="the suspension in the follower's queue")
            assert follower.applied == taken  # not applied before the load's rows

    follower = StateFollower(broker, read, registry, os.urandom(32))
    stopping = asyncio.Event()
    try:
        await follower.start()
        task = asyncio.create_task(follower.run(stopping))
        await asyncio.wait_for(follower.loaded.wait(), 30)
        await eventually(lambda: _async(registry.certificate(ca.issuer_id, during.serial).suspended),
                         what="the suspension committed during the load applied after it")
        # An older event after the load: the newer state the load read stands.
        applied = follower.applied
        await feed.certificate(ca, after, status="active", changed_at=t0 + timedelta(minutes=1))
        await eventually(lambda: _async(follower.applied > applied), what="the older event taken")
        record = registry.certificate(ca.issuer_id, after.serial)
        assert record.suspended and record.changed_at == t0 + timedelta(minutes=2)
        assert registry.certificate(ca.issuer_id, during.serial).suspended
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
        await follower.close()
        await broker.close()


async def _queued(follower: StateFollower) -> bool:
    return not follower._events.empty()


async def _async(value):
    return value


async def test_a_start_loads_the_stored_holder_key_and_derives_it_for_rows_stored_before_it(
        common_config, feed, ocsp_tables):
    """Issue 14: the consumer stores each certificate's holder key beside the holder's
    JSON, and a start reads the key instead of decoding the JSON; a row stored before the
    key (only the JSON, or only the DER) gives the same key, so a renewal is known alike."""
    ca = Issuer.new("Holder Key CA")
    keyed, from_json, from_der = ca.issue("holder keyed"), ca.issue("holder from json"), ca.issue("holder from der")
    issuer_id = uuid.UUID(ca.issuer_id)
    async with responder(common_config):
        await feed.issuer(ca)
        for leaf in (keyed, from_json, from_der):
            await feed.certificate(ca, leaf)

        async def stored() -> bool:
            async with ocsp_tables.acquire() as conn:
                return await conn.fetchval("select count(*) from certificates where issuer_id = $1 "
                                           "and holder_key is not null", issuer_id) == 3

        await eventually(stored, what="the three certificates stored by the consumer")
    async with ocsp_tables.acquire() as conn:
        keys = {int(row["serial"]): bytes(row["holder_key"]) for row in await conn.fetch(
            "select serial, holder_key from certificates where issuer_id = $1", issuer_id)}
        # As the rows of a database older than the key: the JSON only, the DER only.
        await conn.execute("update certificates set holder_key = null where issuer_id = $1 and serial = any($2)",
                           issuer_id, [Decimal(from_json.serial), Decimal(from_der.serial)])
        await conn.execute("update certificates set holder = null where issuer_id = $1 and serial = $2",
                           issuer_id, Decimal(from_der.serial))
    expected = {leaf.serial: holder_key(holder_of(leaf.cert.subject)) for leaf in (keyed, from_json, from_der)}
    assert keys == expected
    assert len(set(expected.values())) == 3

    @contextlib.asynccontextmanager
    async def read():
        async with ocsp_tables.acquire() as conn:
            yield conn

    registry = Registry()
    await reload(read, registry, os.urandom(32))
    assert {serial: registry.certificate(ca.issuer_id, serial).holder_key for serial in expected} == expected


# -- the database stopped ---------------------------------------------------------------------------

@pytest.fixture
async def own_database():
    base = workspace("siui-follow-pg-")
    server = Postgres(base)
    try:
        await server.start()
        yield server, await server.create_database("siui_follow", "siui_follow", "siui_follow")
    finally:
        await server.stop()
        remove_tree(base)


async def test_the_responder_answers_and_follows_while_its_database_is_stopped(common_config, feed, own_database):
    server, url = own_database
    common = dataclasses.replace(common_config, database_url=url, database_owner_url=url, database_read_url=None)
    ca = Issuer.new("Follow No Database CA")
    leaf, other = ca.issue("without a database"), ca.issue("untouched")
    async with responder(common) as client:
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf)
        await feed.certificate(ca, other)
        await registered(client.app, ca, other.serial)
        reloads = client.app[FOLLOWER].reloads

        await server._pg_ctl("-w", "-m", "immediate", "stop")  # the database's machine is gone
        assert _good(await ask(client, request_der(ca, leaf)))
        await feed.certificate(ca, leaf, status="suspended", certificate_id=certificate_id)

        async def answered_suspended():
            return _suspended(await ask(client, request_der(ca, leaf)))

        await eventually(answered_suspended, timeout=5, what="the suspension answered with the database away")
        assert _good(await ask(client, request_der(ca, other)))

        await server._pg_ctl("-w", "-t", "60", "start")
        # Back alone: nothing was missed, nothing is read again; the answers stay right.
        await eventually(lambda: _async(client.app[FOLLOWER].applied >= 3), what="events taken")
        assert client.app[FOLLOWER].reloads == reloads
        assert _suspended(await ask(client, request_der(ca, leaf)))
        assert _good(await ask(client, request_der(ca, other)))


# -- the broker connection down ---------------------------------------------------------------------

@pytest.fixture
async def own_broker(pki):
    """A RabbitMQ node of the test's own, set up as deploy/setup.sh sets one up (each
    service's user, least-privilege permissions, the exchange's queues)."""
    base = workspace("siui-follow-mq-")
    nodes = await start_nodes(base, 1, prefix="follow")
    try:
        exchange = f"siui.follow.{uuid.uuid4().hex[:8]}"
        target = Target(pki.data_dir, "/", exchange, DEFAULT_EXCHANGE_PREFIX, infra.user_prefix())
        described = base / "definitions.json"
        described.write_text(json.dumps(definitions(target, with_users=True)))  # salted hashes only
        described.chmod(0o644)
        await nodes[0].ctl("import_definitions", str(described))
        yield nodes[0], exchange
    finally:
        await stop_all(nodes)
        remove_tree(base)


async def test_the_responder_answers_while_its_broker_is_away_and_reads_again_what_it_missed(
        common_config, pki, own_broker):
    node, exchange = own_broker
    common = dataclasses.replace(common_config, amqp_url=node.url, events_exchange=exchange)
    ocsp_user = f"{infra.user_prefix()}ocsp"
    certs = await connect(broker_url(node.url, pki.data_dir, "certs", user_prefix=infra.user_prefix()), exchange)
    publishers = infra.Publishers(exchange)
    publishers.brokers["certs"] = certs
    feed = Feed(publishers)
    ca = Issuer.new("Follow No Broker CA")
    leaf, missed = ca.issue("while the broker is away"), ca.issue("while cut off")
    granted = permissions(DEFAULT_EXCHANGE_PREFIX, infra.user_prefix())[ocsp_user]

    async def restore() -> None:
        await node.ctl("set_permissions", "-p", "/", ocsp_user, granted.configure, granted.write, granted.read)

    try:
        async with responder(common) as client:
            try:
                follower = client.app[FOLLOWER]
                follower.settle_seconds = 3.0  # the durable consumer is this very app: soon done
                await feed.issuer(ca)
                await feed.certificate(ca, leaf)
                missed_id = await feed.certificate(ca, missed)
                await registered(client.app, ca, missed.serial)
                await registered(client.app, ca, leaf.serial)

                # The node stopped: every answer still comes, rightly, from memory.
                await node.stop_app()
                for _ in range(5):
                    assert _good(await ask(client, request_der(ca, leaf)))
                # And says so: ready (the balancer keeps it), degraded by the broker.
                await eventually(lambda: _readiness(client, "degraded"), what="/readyz degraded by the broker")
                await node.start_app()
                await eventually(lambda: _readiness(client, "ready"), timeout=30, what="/readyz ready again")

                # Cut off alone (its connections closed, its login refused meanwhile) while
                # certs publishes a suspension: its queue is gone, the event reaches only the
                # durable ocsp.certs queue.
                await node.ctl("clear_permissions", "-p", "/", ocsp_user)
                await node.ctl("close_all_user_connections", ocsp_user, "cut off by the test")
                await eventually(lambda: _broker_down(client.app), what="the responder's connection down")
                reloads = follower.reloads
                await feed.certificate(ca, missed, status="suspended", certificate_id=missed_id)
                assert _good(await ask(client, request_der(ca, missed)))  # what it knows, from memory
                await restore()

                async def answered_suspended():
                    return _suspended(await ask(client, request_der(ca, missed)))

                await eventually(answered_suspended, timeout=30, what="the missed suspension after the reconnect")
                assert follower.reloads > reloads
                assert _good(await ask(client, request_der(ca, leaf)))
                # And it follows its queue again.
                started = time.monotonic()
                await feed.certificate(ca, leaf, status="suspended")
                await eventually(lambda: _suspended_now(client, ca, leaf), timeout=5, interval=0.02,
                                 what="a suspension after the reconnect")
                assert time.monotonic() - started <= 1.0
            finally:
                await restore()  # whatever failed: the app's stop must find its broker
    finally:
        await publishers.close()


async def _broker_down(app) -> bool:
    return not app[BROKER].is_connected


async def _readiness(client, status: str) -> bool:
    response = await client.get("/readyz")
    body = await response.json()
    if status == "degraded":
        return response.status == 200 and body["status"] == "degraded" and "broker_reachable" in body["degraded"]
    return response.status == 200 and body["status"] == status


async def _suspended_now(client, ca, leaf) -> bool:
    return _suspended(await ask(client, request_der(ca, leaf)))
