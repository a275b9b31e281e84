"""Idempotent consumers: an inbox row per event id, written in the effect's transaction.

A message is acknowledged only after its transaction committed; a redelivered event
finds its inbox row and is acknowledged without a second effect.

What goes to the dead-letter queue, and when, is decided here, not by the broker:

* a message whose AMQP ``user_id`` is not the broker user of the service that publishes
  its routing key (and its event type) is forged: dead-lettered at once, counted as
  ``forged``, never applied;
* a body that is not an event, or an event that can never be applied
  (``EventDecodeError``: no real house, an unreadable field), at once, as ``dead_lettered``;
* an event whose handler raises anything else fails for real: the failure is counted in
  the ``inbox_failures`` table, the message is held a growing moment (0.5 s doubling to
  8 s) and requeued, and on its ``MAX_HANDLER_FAILURES``-th failure it is dead-lettered;
* while the database is away or a transaction is rolled back by a conflict
  (``shared.transient.RETRY_LATER``), the message is held and retried: not a failure,
  however long it lasts. A stop requeues what is held.

So the queues' ``x-delivery-limit`` (``shared.broker.DELIVERY_LIMIT``) is only a
backstop: the broker counts every return of a message, crashes and clean stops
included, and a few restarts during a database stall must not park events that were
never wrong. Dead-lettered events are replayed with ``python -m deploy.replay_dead_letters``;
the inbox keeps event ids for SIUI_INBOX_RETENTION_DAYS, so a replay or a late
redelivery within that time is recognised.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web
from prometheus_client import Counter

from shared.broker import BROKER, Broker, broker_user, publisher_of
from shared.db import POOL
from shared.events import EVENT_TYPES, Envelope, EventDecodeError
from shared.logging import get_logger
from shared.tasks import wait_stopping
from shared.transient import RETRY_LATER

log = get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
T = TypeVar("T")

STOP_GRACE_SECONDS = 5.0
#: Real failures of one event's handler before it is dead-lettered.
MAX_HANDLER_FAILURES = 5
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
ERROR_TEXT_LIMIT = 500  # of an exception's text kept in inbox_failures
PURGE_BATCH = 5_000
CONSUMED = Counter("siui_events_consumed_total", "Events consumed", ["queue", "outcome"])


class _Stopping(Exception):
    """The consumer stops while a message waits for the database: leave it to the next start."""


def forgery(message: AbstractIncomingMessage, user_prefix: str, envelope: Envelope | None = None) -> str | None:
    """Why ``message`` is not from the service it claims (None: it is). RabbitMQ refuses a
    ``user_id`` other than the publisher's login, so the ``user_id`` says who published;
    ``shared.broker.PUBLISHERS`` says who may publish under the routing key, and a known
    event type must belong to that same publisher (no KeyIssued under ``certs.*``)."""
    routing_key = message.routing_key or ""
    service = publisher_of(routing_key)
    if service is None:
        return "no service publishes under this routing key"
    expected = broker_user(service, user_prefix)
    if message.user_id != expected:
        return f"user_id is not {expected!r}"
    event = EVENT_TYPES.get(envelope.type) if envelope is not None else None
    if event is not None and publisher_of(event.ROUTING_KEY) != service:
        return f"{envelope.type} is not published under {routing_key.partition('.')[0]}.*"
    return None


async def refuse_forged(message: AbstractIncomingMessage, queue: str, reason: str) -> None:
    """Dead-letter (reject, no requeue) and count a forged message; the log line says who
    it claims to be from, bounded (both come from whoever published it)."""
    log.error("event_forged", queue=queue, reason=reason, routing_key=(message.routing_key or "")[:80],
              user_id=(message.user_id or "")[:80])
    CONSUMED.labels(queue, "forged").inc()
    await message.reject(requeue=False)


async def handle_once(pool: asyncpg.Pool, envelope: Envelope, handler: Handler, *,
                      redelivered: bool = False) -> bool:
    """Apply ``handler`` unless this event was already applied; True if applied now. A
    redelivered event may have failed before: its failure count goes with the success."""
    async with pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetchval(
            "insert into inbox (event_id, event_type) values ($1, $2) "
            "on conflict (event_id) do nothing returning true", envelope.id, envelope.type)
        if fresh:
            await handler(conn, envelope)
        if redelivered:
            await conn.execute("delete from inbox_failures where event_id = $1", envelope.id)
        return bool(fresh)


async def count_failure(pool: asyncpg.Pool, envelope: Envelope, error: BaseException) -> int:
    """Record one more real failure of ``envelope``'s handler; how many there have been."""
    return await pool.fetchval(
        """insert into inbox_failures (event_id, event_type, failures, last_error) values ($1, $2, 1, $3)
           on conflict (event_id) do update set failures = inbox_failures.failures + 1,
               last_error = excluded.last_error, last_failed_at = now()
           returning failures""", envelope.id, envelope.type, repr(error)[:ERROR_TEXT_LIMIT])


async def forget_failures(pool: asyncpg.Pool, event_id: str) -> None:
    """Before an event is dead-lettered: a replay of it starts counting afresh."""
    await pool.execute("delete from inbox_failures where event_id = $1", event_id)


async def purge_inbox(pool: asyncpg.Pool, before: datetime) -> int:
    """Forget event ids consumed before ``before`` (and failures last seen then), a batch
    at a time (no long lock); how many inbox rows went."""
    total = 0
    while True:
        deleted = await pool.fetchval(
            """with gone as (delete from inbox where event_id in (
                   select event_id from inbox where received_at < $1 limit $2) returning 1)
               select count(*) from gone""", before, PURGE_BATCH)
        total += deleted
        if deleted < PURGE_BATCH:
            break
    await pool.execute("delete from inbox_failures where last_failed_at < $1", before)
    return total


def retry_delay(attempt: int) -> float:
    """How long to hold a message before its ``attempt``-th retry (1, 2, ...)."""
    return min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), MAX_RETRY_DELAY)


async def _through_outages(operation: Callable[[], Awaitable[T]], queue: str,
                           stopping: asyncio.Event | None) -> T:
    """``operation()``, tried again for as long as the database is away (or a conflict
    rolls it back), with a growing pause; raises _Stopping when the consumer stops."""
    attempt = 0
    while True:
        try:
            return await operation()
        except RETRY_LATER as exc:
            if stopping is not None and stopping.is_set():
                raise _Stopping() from None
            attempt += 1
            log.warning("event_retry_database_unreachable", queue=queue, error=repr(exc)[:ERROR_TEXT_LIMIT])
            if await wait_stopping(stopping or asyncio.Event(), retry_delay(attempt)):
                raise _Stopping() from None


async def _dead_letter(message: AbstractIncomingMessage, queue: str, outcome: str = "dead_lettered") -> None:
    CONSUMED.labels(queue, outcome).inc()
    await message.reject(requeue=False)


async def process_message(pool: asyncpg.Pool, queue: str, message: AbstractIncomingMessage,
                          handlers: dict[str, Handler], stopping: asyncio.Event | None = None, *,
                          user_prefix: str) -> None:
    # Who sent it is settled before its body is even read.
    reason = forgery(message, user_prefix)
    if reason is not None:
        await refuse_forged(message, queue, reason)
        return
    try:
        envelope = Envelope.from_json(message.body)
    except EventDecodeError as exc:
        log.error("event_undecodable", queue=queue, error=str(exc))
        await _dead_letter(message, queue)
        return
    reason = forgery(message, user_prefix, envelope)
    if reason is not None:
        await refuse_forged(message, queue, reason)
        return
    handler = handlers.get(envelope.type)
    if handler is None:  # a type this queue need not act on (bound by a wider key)
        await message.ack()
        CONSUMED.labels(queue, "ignored").inc()
        return
    structlog.contextvars.bind_contextvars(event_id=envelope.id, event_type=envelope.type)
    try:
        try:
            applied = await _through_outages(
                lambda: handle_once(pool, envelope, handler, redelivered=bool(message.redelivered)), queue, stopping)
        except (_Stopping, asyncio.CancelledError):
            raise
        except EventDecodeError as exc:  # it reads, but can never be applied: retrying cannot help
            log.error("event_refused", queue=queue, error=str(exc)[:ERROR_TEXT_LIMIT])
            await _dead_letter(message, queue)
            return
        except Exception as exc:
            await _failed(pool, queue, message, envelope, exc, stopping)
            return
        await message.ack()
        CONSUMED.labels(queue, "applied" if applied else "duplicate").inc()
    except _Stopping:
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
        CONSUMED.labels(queue, "requeued").inc()
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
        raise
    finally:
        structlog.contextvars.unbind_contextvars("event_id", "event_type")


async def _failed(pool: asyncpg.Pool, queue: str, message: AbstractIncomingMessage, envelope: Envelope,
                  error: Exception, stopping: asyncio.Event | None) -> None:
    """A real failure of the handler: counted; requeued after a pause, or dead-lettered
    once it is the last one allowed. Counting waits through database outages too."""
    failures = await _through_outages(lambda: count_failure(pool, envelope, error), queue, stopping)
    if failures >= MAX_HANDLER_FAILURES:
        await _through_outages(lambda: forget_failures(pool, envelope.id), queue, stopping)
        log.error("event_dead_lettered", queue=queue, failures=failures, error=repr(error)[:ERROR_TEXT_LIMIT],
                  exc_info=error)
        await _dead_letter(message, queue)
        return
    log.error("event_handler_failed", queue=queue, failures=failures, retry_in=retry_delay(failures),
              exc_info=error)
    CONSUMED.labels(queue, "failed").inc()
    if stopping is not None:
        await wait_stopping(stopping, retry_delay(failures))
    else:
        await asyncio.sleep(retry_delay(failures))
    await message.nack(requeue=True)


PREFETCH = 16


def consumer_slots(pool_max_size: int) -> asyncio.Semaphore:
    """How many events a process's consumers handle at once, all queues together: half its
    pool. The other half stays for requests: while the database is slow or a table is
    locked, consumers waiting on it must not hold every connection (the API, readiness
    and the relay would freeze with them)."""
    return asyncio.Semaphore(max(1, pool_max_size // 2))


CONSUMER_SLOTS = web.AppKey("consumer_slots", asyncio.Semaphore)


async def start_consumer(pool: asyncpg.Pool, broker: Broker, queue_short: str,
                         handlers: dict[str, Handler], *,
                         slots: asyncio.Semaphore | None = None) -> Callable[[], Awaitable[None]]:
    """Consume ``queue_short`` with ``handlers`` (by event type), at most ``slots`` events
    at once (default: half the pool); returns a stop function."""
    name = broker.queue_name(queue_short)
    slots = slots or consumer_slots(pool.get_max_size())
    channel = await broker.connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(name, ensure=True)

    stopping = asyncio.Event()
    in_flight: set[asyncio.Task] = set()

    async def on_message(message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        in_flight.add(task)
        try:
            async with slots:
                if stopping.is_set():
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                    return
                await process_message(pool, name, message, handlers, stopping, user_prefix=broker.user_prefix)
        finally:
            in_flight.discard(task)

    tag = await queue.consume(on_message)

    async def stop() -> None:
        stopping.set()
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
        # Let the messages being handled finish (their transactions commit or roll back)
        # before the pool closes under them; whatever is left is requeued by the broker.
        if in_flight:
            await asyncio.wait(list(in_flight), timeout=STOP_GRACE_SECONDS)
        for task in list(in_flight):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(channel.close(), 2.0)

    return stop


def consumer_ctx(queue_short: str, handlers: dict[str, Handler]):
    """cleanup_ctx: consume a queue for the life of the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = await start_consumer(app[POOL], app[BROKER], queue_short, handlers, slots=app.get(CONSUMER_SLOTS))
        try:
            yield
        finally:
            await stop()

    return ctx
