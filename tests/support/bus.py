"""The test session's RabbitMQ exchange as other services use it: events published as they
publish them (persistent JSON envelopes on ``<service>.<event>``, each as its publisher's
broker user, since consumers refuse anyone else's), and a tap that keeps every event
under a routing-key pattern from the moment it is bound (the broker's administrator's
queue: a watcher, not a service)."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.broker import publisher_of
from shared.events import Envelope, EventData, new_envelope
from tests.support import infra
from tests.support.wait import eventually


async def publish(publishers: infra.Publishers, event: EventData, cas: str, **envelope_fields) -> Envelope:
    """Publish ``event`` of house ``cas`` as its publisher does; ``envelope_fields``
    override the envelope's own (``id`` for a redelivery, ``occurred_at`` for a late
    event). Returns the envelope."""
    envelope = new_envelope(event, cas)
    if envelope_fields:
        envelope = Envelope(**{**envelope.__dict__, **envelope_fields})
    await publishers.publish(envelope)
    return envelope


class EventTap:
    """The events seen on a tapped queue, in arrival order. Every event must carry its
    publisher's broker identity (``user_id``): ``first`` checks it."""

    def __init__(self, publishers: infra.Publishers):
        self.publishers = publishers
        self.messages: list[AbstractIncomingMessage] = []

    @property
    def bodies(self) -> list[bytes]:
        return [message.body for message in self.messages]

    async def publish(self, event: EventData, cas: str, **envelope_fields) -> Envelope:
        return await publish(self.publishers, event, cas, **envelope_fields)

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

        first = (await eventually(arrived, timeout=timeout, what=f"event {routing_key or ''} {data}"))[0]
        message = next(m for m in self.messages if Envelope.from_json(m.body).id == first.id)
        expected = infra.user_prefix() + publisher_of(message.routing_key)
        assert message.user_id == expected, (message.routing_key, message.user_id)  # what consumers require
        return first

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
async def tapped(exchange_name: str, pattern: str) -> AsyncIterator[EventTap]:
    """An exclusive queue (the administrator's) bound to ``pattern`` on the session's
    exchange, consumed into an EventTap that publishes as each event's publisher."""
    connection = await aio_pika.connect(infra.admin_amqp_url())
    publishers = infra.Publishers(exchange_name)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(exchange_name)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=pattern)
        tap = EventTap(publishers)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            tap.messages.append(message)

        await queue.consume(on_message)
        yield tap
    finally:
        await publishers.close()
        await connection.close()
