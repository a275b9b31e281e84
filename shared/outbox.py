"""The transactional outbox: an event is a row written with the change it describes.

``add_event`` runs inside the caller's transaction; the relay publishes committed rows
with publisher confirms and deletes each only after its confirm. So an event exists if
and only if its change committed, and survives a crash of the service or the broker.
The relay is woken by NOTIFY (``shared.listen``) and also polls, in case one is missed.
"""
from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Gauge

from shared.broker import BROKER, Broker
from shared.db import POOL
from shared.events import Envelope, EventData, new_envelope
from shared.listen import LISTENER, Subscription
from shared.logging import get_logger
from shared.tasks import background_ctx, wait_stopping

log = get_logger(__name__)


OUTBOX_PUBLISHED = Counter("siui_outbox_published_total", "Events published from the outbox", ["schema"])
# Every worker of a multi-process service counts the same table: the largest live reading, not a sum.
OUTBOX_BACKLOG = Gauge("siui_outbox_backlog", "Events written but not yet confirmed by the broker", ["schema"],
                       multiprocess_mode="livemax")
BATCH = 200


async def add_event(conn: asyncpg.Connection, event: EventData, cas: str) -> Envelope:
    """Write ``event`` to the outbox in the caller's transaction; returns its envelope."""
    envelope = new_envelope(event, cas)
    await conn.execute(
        "insert into outbox (event_id, event_type, routing_key, body) values ($1, $2, $3, $4)",
        envelope.id, envelope.type, envelope.routing_key, envelope.to_json())
    # Delivered at commit; wakes the relay without waiting for its next poll.
    await conn.execute("select pg_notify('outbox_' || current_schema(), '')")
    return envelope


async def relay_once(pool: asyncpg.Pool, broker: Broker) -> int:
    """Publish one batch of committed events in order; returns how many were published."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "select seq, body from outbox order by seq limit $1 for update skip locked", BATCH)
        for row in rows:
            await broker.publish(Envelope.from_json(row["body"]))
            await conn.execute("delete from outbox where seq = $1", row["seq"])
    return len(rows)


async def outbox_backlog(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("select count(*) from outbox")


async def run_relay(pool: asyncpg.Pool, broker: Broker, schema: str, wake: Subscription,
                    stopping: asyncio.Event, *, poll_interval: float = 1.0) -> None:
    """Publish what is pending, then wait until notified (``wake``: the schema's outbox
    channel) or the poll interval; until ``stopping`` is set, after which what was
    committed by then is published and it returns."""
    backoff = 0.5
    while True:
        last_round = stopping.is_set()
        try:
            published = await relay_once(pool, broker)
            backoff = 0.5
            if published:
                OUTBOX_PUBLISHED.labels(schema).inc(published)
                if published == BATCH:
                    continue
            OUTBOX_BACKLOG.labels(schema).set(await outbox_backlog(pool))
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # broker or database away: keep the rows, retry later
            if last_round:
                return
            log.warning("outbox_relay_failed", schema=schema, error=repr(exc))
            await wait_stopping(stopping, backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        if last_round:
            return
        await _woken(wake, stopping, poll_interval)


async def _woken(wake: Subscription, stopping: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait(timeout)), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


DRAIN_SECONDS = 5.0


def outbox_relay_ctx(schema: str):
    """cleanup_ctx: run the relay for the service's schema in the background. On a clean
    stop it is not cancelled mid-publish: it publishes what was committed, then ends."""

    def relay(app: web.Application):
        wake = app[LISTENER].subscribe(f"outbox_{schema}")

        async def target(stopping: asyncio.Event) -> None:
            await run_relay(app[POOL], app[BROKER], schema, wake, stopping)

        return target

    return background_ctx(f"outbox-{schema}", relay, stop_timeout=DRAIN_SECONDS)
