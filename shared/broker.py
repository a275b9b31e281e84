"""The RabbitMQ side: one robust connection, the topic exchange, the queues, publishing.

Every service declares the whole topology (exchange, queues, bindings, dead-letter
queues) when it connects. Declarations are idempotent, and it means an event published
before its consumer ever started is still queued for it, never dropped as unroutable.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiohttp import web

from shared.events import Envelope
from shared.logging import get_logger

log = get_logger(__name__)

DELIVERY_LIMIT = 5  # redeliveries before a message is parked in the dead-letter queue
PUBLISH_TIMEOUT = 10.0


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue one service consumes, and the routing keys bound to it."""

    name: str
    routing_keys: tuple[str, ...]


TOPOLOGY: tuple[QueueSpec, ...] = (
    QueueSpec("users.key-issued", ("keygen.key_issued",)),
    QueueSpec("certs.users", ("users.external_user_created", "users.external_user_deleted")),
    QueueSpec("certs.usage", ("ocsp.certificate_used",)),
    QueueSpec("ocsp.certs", ("certs.issuer_registered", "certs.issuer_updated",
                             "certs.certificate_registered", "certs.certificate_suspended",
                             "certs.certificate_reinstated", "certs.certificate_revoked")),
    QueueSpec("ocsp.keys", ("keygen.key_issued", "users.external_user_created",
                            "users.external_user_deleted")),
    # users counts each external user's certificates: one that has any is not deleted.
    QueueSpec("users.certs", ("certs.certificate_registered", "certs.certificate_revoked")),
)


class Broker:
    """A connection with a confirming channel and the declared exchange."""

    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel,
                 exchange: AbstractExchange, exchange_name: str):
        self.connection = connection
        self.channel = channel
        self.exchange = exchange
        self.exchange_name = exchange_name

    def queue_name(self, short: str) -> str:
        # Prefixed with the exchange so that isolated test exchanges get their own queues.
        return f"{self.exchange_name}.{short}"

    @property
    def is_connected(self) -> bool:
        return not self.connection.is_closed

    async def publish(self, envelope: Envelope) -> None:
        """Publish persistently and wait for the broker's confirm (raises if refused)."""
        message = aio_pika.Message(
            envelope.to_json(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=envelope.id,
            type=envelope.type,
        )
        await self.exchange.publish(message, routing_key=envelope.routing_key,
                                    mandatory=True, timeout=PUBLISH_TIMEOUT)

    async def close(self) -> None:
        await self.connection.close()


async def declare_topology(channel: AbstractChannel, exchange_name: str) -> AbstractExchange:
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(f"{exchange_name}.dlx", aio_pika.ExchangeType.DIRECT, durable=True)
    for spec in TOPOLOGY:
        name = f"{exchange_name}.{spec.name}"
        dead = await channel.declare_queue(f"{name}.dlq", durable=True)
        await dead.bind(dlx, routing_key=name)
        queue = await channel.declare_queue(name, durable=True, arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": f"{exchange_name}.dlx",
            "x-dead-letter-routing-key": name,
        })
        for key in spec.routing_keys:
            await queue.bind(exchange, routing_key=key)
    return exchange


async def connect(amqp_url: str, exchange_name: str, *, wait_seconds: float = 60.0) -> Broker:
    """Connect (retrying while the broker starts), open a confirming channel, declare all."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            connection = await aio_pika.connect_robust(amqp_url, timeout=10)
            break
        except (OSError, aiormq.exceptions.AMQPError, asyncio.TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("broker_unreachable", error=str(exc))
            await asyncio.sleep(1.0)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=64)
    exchange = await declare_topology(channel, exchange_name)
    return Broker(connection, channel, exchange, exchange_name)


BROKER = web.AppKey("broker", Broker)


def broker_ctx(amqp_url: str, exchange_name: str):
    """cleanup_ctx: the service's broker connection under ``app[BROKER]``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broker = await connect(amqp_url, exchange_name)
        app[BROKER] = broker
        try:
            yield
        finally:
            await broker.close()

    return ctx
