"""The test session's RabbitMQ exchange as other services use it: events published as they
publish them (persistent JSON envelopes on ``<service>.<event>``), and a tap that keeps
every event under a routing-key pattern, from the moment it is bound."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from shared.events import Envelope, EventData, new_envelope
from tests.support.wait import eventually


async def publish(exchange: AbstractExchange, event: EventData, cas: str, **envelope_fields) -> Envelope:
    """Publish ``event`` of house ``cas``; ``envelope_fields`` override the envelope's own
    (``id`` for a redelivery, ``occurred_at`` for a late event). Returns the envelope."""
    envelope = new_envelope(event, cas)
    if envelope_fields:
        envelope = Envelope(**{**envelope.__dict__, **envelope_fields})
    await exchange.publish(aio_pika.Message(envelope.to_json(), content_type="application/json",
                                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                           routing_key=envelope.routing_key)
    return envelope


class EventTap:
    """The events seen on a tapped queue, in arrival order."""

    def __init__(self, exchange: AbstractExchange):
        self.exchange = exchange
        self.messages: list[AbstractIncomingMessage] = []

    @property
    def bodies(self) -> list[bytes]:
        return [message.body for message in self.messages]

    async def publish(self, event: EventData, cas: str, **envelope_fields) -> Envelope:
        return await publish(self.exchange, event, cas, **envelope_fields)

    def events(self, routing_key: str | None = None, **data) -> list[Envelope]:
        """The events seen (with this routing key, if given) whose data has these values."""
        found = []
        for message in self.messages:
            envelope = Envelope.from_json(message.body)
            if routing_key in (None, message.routing_key) and all(envelope.data.get(k) == v for k, v in data.items()):
                found.append(envelope)
        return found

    async def first(self, routing_key: str | None = None, *, timeout: float = 10.0, **data) -> Envelope:
        """Wait for such an event; the first one seen."""
        async def arrived():
            return self.events(routing_key, **data)

        return (await eventually(arrived, timeout=timeout, what=f"event {routing_key or ''} {data}"))[0]

    async def one(self, routing_key: str, **data) -> Envelope:
        """Wait for such an event and check it is the only one."""
        first = await self.first(routing_key, **data)
        found = self.events(routing_key, **data)
        assert found == [first], found
        return first

    def raw(self, **data) -> bytes:
        """The wire body of an event already seen (to search it for what it must not hold)."""
        for message in self.messages:
            if all(Envelope.from_json(message.body).data.get(k) == v for k, v in data.items()):
                return message.body
        raise AssertionError(f"no event {data}")


@contextlib.asynccontextmanager
async def tapped(amqp_url: str, exchange_name: str, pattern: str) -> AsyncIterator[EventTap]:
    """An exclusive queue bound to ``pattern`` on the exchange (declared here if no service
    has yet: topic, durable, as the services declare it), consumed into an EventTap."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=pattern)
        tap = EventTap(exchange)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            tap.messages.append(message)

        await queue.consume(on_message)
        yield tap
    finally:
        await connection.close()
