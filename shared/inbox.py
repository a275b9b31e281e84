"""Idempotent consumers: an inbox row per event id, written in the effect's transaction.

A message is acknowledged only after its transaction committed; a redelivered event
finds its inbox row and is acknowledged without a second effect. A message whose AMQP
``user_id`` is not the broker user of the service that publishes its routing key (and
its event type) is forged: it goes to the dead-letter queue at once, counted as
``forged``, and is never applied. A body that is not an event goes there at once too; a handler that keeps failing goes there
after the queue's delivery limit. While the database is unreachable the message is
held (not counted as a failure) and retried, so a database restart loses nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web
from prometheus_client import Counter

from shared.broker import BROKER, Broker, broker_user, publisher_of
from shared.db import POOL
from shared.events import EVENT_TYPES, Envelope, EventDecodeError
from shared.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]

STOP_GRACE_SECONDS = 5.0
CONSUMED = Counter("siui_events_consumed_total", "Events consumed", ["queue", "outcome"])

_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
              asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncio.TimeoutError)


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


async def handle_once(pool: asyncpg.Pool, envelope: Envelope, handler: Handler) -> bool:
    """Apply ``handler`` unless this event was already applied; True if applied now."""
    async with pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetchval(
            "insert into inbox (event_id, event_type) values ($1, $2) "
            "on conflict (event_id) do nothing returning true", envelope.id, envelope.type)
        if fresh:
            await handler(conn, envelope)
        return bool(fresh)


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
        CONSUMED.labels(queue, "dead_lettered").inc()
        await message.reject(requeue=False)
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
        backoff = 0.5
        while True:
            try:
                applied = await handle_once(pool, envelope, handler)
                break
            except _TRANSIENT as exc:
                if stopping is not None and stopping.is_set():
                    # Shutting down (the pool may be closing): leave it to the next start.
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                    CONSUMED.labels(queue, "requeued").inc()
                    return
                log.warning("event_retry_database_unreachable", queue=queue, error=repr(exc))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for((stopping or asyncio.Event()).wait(), backoff)
                backoff = min(backoff * 2, 10.0)
        await message.ack()
        CONSUMED.labels(queue, "applied" if applied else "duplicate").inc()
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
        raise
    except Exception:
        log.exception("event_handler_failed", queue=queue)
        CONSUMED.labels(queue, "failed").inc()
        # Requeued; the quorum queue's delivery limit parks a poison message in its DLQ.
        await message.nack(requeue=True)
    finally:
        structlog.contextvars.unbind_contextvars("event_id", "event_type")


async def start_consumer(pool: asyncpg.Pool, broker: Broker, queue_short: str,
                         handlers: dict[str, Handler]) -> Callable[[], Awaitable[None]]:
    """Consume ``queue_short`` with ``handlers`` (by event type); returns a stop function."""
    name = broker.queue_name(queue_short)
    channel = await broker.connection.channel()
    await channel.set_qos(prefetch_count=32)
    queue = await channel.get_queue(name, ensure=True)

    stopping = asyncio.Event()
    in_flight: set[asyncio.Task] = set()

    async def on_message(message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        in_flight.add(task)
        try:
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
            await channel.close()

    return stop


def consumer_ctx(queue_short: str, handlers: dict[str, Handler]):
    """cleanup_ctx: consume a queue for the life of the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = await start_consumer(app[POOL], app[BROKER], queue_short, handlers)
        try:
            yield
        finally:
            await stop()

    return ctx
