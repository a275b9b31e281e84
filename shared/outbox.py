"""The transactional outbox: an event is a row written with the change it describes.

``add_event`` runs inside the caller's transaction; the relay publishes committed rows
with publisher confirms and deletes each only after its confirm. So an event exists if
and only if its change committed, and survives a crash of the service or the broker.

The relay, per round:

1. claims up to ``BATCH`` rows, oldest first, in one short transaction (``claimed_until``
   a while ahead; rows another relay of the schema claimed are skipped), and commits:
   no row lock is held while it waits on the network;
2. publishes the batch on one confirming channel, every message sent at once in order
   and the confirms gathered together (one round trip per batch, not per event);
3. deletes the confirmed rows (``seq = any($1)``) and gives the others' claims back.

A relay that dies between 1 and 3 leaves claims that lapse after ``CLAIM_SECONDS``;
the rows are published again then (consumers' inboxes drop the repeat). It is woken by
NOTIFY on its schema's channel, by ``RESYNC`` when the LISTEN connection comes back
after a database restart, and by the broker connection's reconnect, and polls besides;
after a failure it retries within ``MAX_BACKOFF`` seconds.
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
OUTBOX_FAILURES = Counter("siui_outbox_relay_failures_total", "Relay rounds that failed (broker or database away)",
                          ["schema"])
BATCH = 500
LANES = 2                 # batches in flight at once per relay
CLAIM_SECONDS = 30.0      # longer than a batch's publish can take (PUBLISH_TIMEOUT), far shorter than an outage
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 1.0         # events flow again within about a second of the broker or database coming back


async def add_event(conn: asyncpg.Connection, event: EventData, cas: str) -> Envelope:
    """Write ``event`` to the outbox in the caller's transaction; returns its envelope."""
    envelope = new_envelope(event, cas)
    await conn.execute(
        "insert into outbox (event_id, event_type, routing_key, body) values ($1, $2, $3, $4)",
        envelope.id, envelope.type, envelope.routing_key, envelope.to_json())
    # Delivered at commit; wakes the relay without waiting for its next poll.
    await conn.execute("select pg_notify('outbox_' || current_schema(), '')")
    return envelope


async def claim(pool: asyncpg.Pool, limit: int = BATCH) -> list[asyncpg.Record]:
    """Claim the oldest unclaimed rows (or lapsed claims), in one short transaction."""
    return await pool.fetch(
        """update outbox set claimed_until = now() + make_interval(secs => $2)
           where seq in (select seq from outbox
                         where claimed_until is null or claimed_until < now()
                         order by seq limit $1 for update skip locked)
           returning seq, event_id, event_type, routing_key, body""", limit, CLAIM_SECONDS)


async def publish_batch(broker: Broker, rows: list[asyncpg.Record]) -> tuple[list[int], BaseException | None]:
    """Publish ``rows`` at once, in order, and gather their confirms; the sequence numbers
    confirmed, and the first error of those that were not."""
    results = await asyncio.gather(*(broker.publish_body(row["body"], routing_key=row["routing_key"],
                                                         event_id=str(row["event_id"]), event_type=row["event_type"])
                                     for row in rows), return_exceptions=True)
    confirmed = [row["seq"] for row, result in zip(rows, results) if not isinstance(result, BaseException)]
    error = next((r for r in results if isinstance(r, BaseException)), None)
    return confirmed, error


async def relay_once(pool: asyncpg.Pool, broker: Broker) -> int:
    """Publish one batch of committed events; how many were published. Raises (after
    deleting what was confirmed and giving the rest back) when some could not be."""
    rows = await claim(pool)
    if not rows:
        return 0
    confirmed, error = await publish_batch(broker, rows)
    if confirmed:
        await pool.execute("delete from outbox where seq = any($1::bigint[])", confirmed)
    if error is not None:
        unconfirmed = [row["seq"] for row in rows if row["seq"] not in set(confirmed)]
        try:
            await pool.execute("update outbox set claimed_until = null where seq = any($1::bigint[])", unconfirmed)
        except Exception:  # the database is away too: the claims lapse by themselves
            pass
        raise error
    return len(rows)


async def relay_round(pool: asyncpg.Pool, broker: Broker, schema: str, lanes: int = LANES) -> bool:
    """``lanes`` batches at once (one's rows travel while the next is claimed or deleted:
    the database's and the broker's round trips overlap), counted as published; whether
    a batch was full (more are waiting). Raises the first lane's error once every lane
    has finished."""
    results = await asyncio.gather(*(relay_once(pool, broker) for _ in range(lanes)), return_exceptions=True)
    published = sum(r for r in results if isinstance(r, int))
    if published:
        OUTBOX_PUBLISHED.labels(schema).inc(published)
    error = next((r for r in results if isinstance(r, BaseException)), None)
    if error is not None:
        raise error
    return any(r == BATCH for r in results)


async def outbox_backlog(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("select count(*) from outbox")


async def run_relay(pool: asyncpg.Pool, broker: Broker, schema: str, wake: Subscription,
                    stopping: asyncio.Event, *, poll_interval: float = 1.0) -> None:
    """Publish what is pending, then wait until woken (``wake``: the schema's outbox
    channel and RESYNC; the broker's reconnect) or the poll interval; until ``stopping``
    is set, after which what was committed by then is published and it returns."""
    reconnected = asyncio.Event()
    remove = broker.on_reconnect(reconnected.set)
    backoff = FIRST_BACKOFF
    try:
        while True:
            last_round = stopping.is_set()
            try:
                full = await relay_round(pool, broker, schema)
                backoff = FIRST_BACKOFF
                if full:
                    continue
                OUTBOX_BACKLOG.labels(schema).set(await outbox_backlog(pool))
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # broker or database away: keep the rows, retry soon
                if last_round:
                    return
                OUTBOX_FAILURES.labels(schema).inc()
                log.warning("outbox_relay_failed", schema=schema, error=repr(exc)[:300], retry_in=round(backoff, 2))
                await _backlog_if_possible(pool, schema)
                reconnected.clear()
                await _woken(wake, stopping, backoff, reconnected)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if last_round:
                return
            reconnected.clear()
            await _woken(wake, stopping, poll_interval, reconnected)
    finally:
        remove()


async def _backlog_if_possible(pool: asyncpg.Pool, schema: str) -> None:
    """The backlog while the broker is away (it grows; the alert must see it)."""
    try:
        OUTBOX_BACKLOG.labels(schema).set(await asyncio.wait_for(outbox_backlog(pool), 2.0))
    except Exception:  # the database is the one away: nothing to count with
        pass


async def _woken(wake: Subscription, stopping: asyncio.Event, timeout: float, *others: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(wake.wait(timeout)), asyncio.ensure_future(stopping.wait()),
               *(asyncio.ensure_future(e.wait()) for e in others)]
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
