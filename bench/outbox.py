"""Benchmark: how fast one service's outbox reaches RabbitMQ.

    .venv/bin/python -m bench.outbox [--events 20000] [--relays 1]

Writes ``--events`` committed events into a scratch schema's outbox, then times their
relay to a real RabbitMQ (publisher confirms, persistent messages, a quorum queue bound
to them), twice in the same run:

* the anchor: the relay of the first release, one publish at a time, each confirm
  awaited inside the transaction that holds the rows' locks (kept here only to compare);
* ``shared.outbox.relay_round`` as the services run it: batches claimed in short
  transactions, published at once with their confirms gathered, deleted by ``= any($1)``,
  two in flight at a time.

Prints events/s for both (target: at least 5,000/s from one service's outbox). Needs
PostgreSQL and RabbitMQ as the tests do; the scratch database and exchange are removed.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from deploy.devpki import ensure_dev_pki
from shared.broker import Broker, connect
from shared.db import create_pool
from shared.events import CertificateSuspended, Envelope, new_envelope

from shared.outbox import relay_once, relay_round
from tests.support import infra

SCHEMA = "certs"  # the suspensions' outbox: CertificateSuspended, published as siui-certs to ocsp.certs
TARGET = 5_000.0
ISSUER = str(uuid.uuid4())


async def fill(pool: asyncpg.Pool, count: int) -> None:
    """``count`` committed events, written as add_event writes them (copied in bulk)."""
    envelopes = [new_envelope(CertificateSuspended(
        certificate_id=str(uuid.uuid4()), issuer_id=ISSUER, serial=str(10**30 + n), username=f"{10_000_000 + n}_CAS-B",
        provider_cui=str(10_000_000 + n), status="suspended", changed_at="2026-12-01T10:00:00+00:00",
        reason="certificateHold", changed_by="operator.b"), "B") for n in range(count)]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "outbox", columns=["event_id", "event_type", "routing_key", "body"],
            records=[(e.id, e.type, e.routing_key, e.to_json()) for e in envelopes])


async def anchor_relay_once(pool: asyncpg.Pool, broker: Broker, batch: int = 200) -> int:
    """The first release's relay: one confirm at a time inside a row-locking transaction."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("select seq, body from outbox order by seq limit $1 for update skip locked", batch)
        for row in rows:
            await broker.publish(Envelope.from_json(row["body"]))
            await conn.execute("delete from outbox where seq = $1", row["seq"])
    return len(rows)


async def _round(pool: asyncpg.Pool, broker: Broker) -> int:
    """One round of the relay as run_relay makes it; nonzero while batches were full."""
    return int(await relay_round(pool, broker, SCHEMA))


async def timed(pool: asyncpg.Pool, relays: list, once, count: int) -> float:
    await fill(pool, count)
    started = time.perf_counter()
    while sum(await asyncio.gather(*(once(pool, broker) for broker in relays))):
        pass
    elapsed = time.perf_counter() - started
    assert await pool.fetchval("select count(*) from outbox") == 0
    return count / elapsed


async def purge(exchange: str) -> None:
    """Empty the bound queue between runs (it is nobody's in this benchmark)."""
    import aio_pika

    connection = await aio_pika.connect(infra.admin_amqp_url())
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{exchange}.ocsp.certs", ensure=False)
        await queue.purge()
    finally:
        await connection.close()


async def main(events: int, relays: int) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="siui-bench-outbox-"))
    ensure_dev_pki(data_dir)
    infra.install_broker_secrets(data_dir)
    async with infra.isolated_config(data_dir, "bench_outbox") as common:
        await infra.migrate_schema(common.database_url, SCHEMA, "services.certs")
        pool = await create_pool(common.database_url, SCHEMA, max_size=relays + 2)
        brokers = [await connect(infra.amqp_url_for("certs"), common.events_exchange) for _ in range(relays)]
        try:
            anchor = await timed(pool, brokers, anchor_relay_once, events)
            await purge(common.events_exchange)
            ours = await timed(pool, brokers, _round, events)
            await purge(common.events_exchange)
        finally:
            for broker in brokers:
                await broker.close()
            await pool.close()
    print(f"certs outbox relay, {events:,} CertificateSuspended, {relays} relay(s), publisher confirms, "
          "quorum queue ocsp.certs:")
    print(f"  anchor (one confirm at a time, rows locked): {anchor:8,.0f} events/s")
    print(f"  shared.outbox.relay_round (batches, gathered):{ours:8,.0f} events/s  ({ours / anchor:.1f}x)")
    print(f"  target {TARGET:,.0f} events/s: {'met' if ours >= TARGET else 'NOT met'}")
    return 0 if ours >= TARGET else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--relays", type=int, default=1)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.events, args.relays)))
