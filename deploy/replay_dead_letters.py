"""Replay the events parked in dead-letter queues, once their cause is fixed.

    python -m deploy.replay_dead_letters                 # every queue, every parked event
    python -m deploy.replay_dead_letters --dry-run       # only list what is parked, and why
    python -m deploy.replay_dead_letters --queue users.key-issued --event-id 6f1c...

An event is parked (``shared.inbox``) when it cannot be read, names no real house, or
its handler failed for real five times; ``siui_dead_letter_messages{queue}`` counts them
and SiuiDeadLetterQueueNotEmpty alerts. Replaying one publishes its body, unchanged,
again under its event type's routing key, as its publisher's broker user (so consumers
accept it: the ``user_id`` is checked), with publisher confirms; only after the confirm is
it taken out of the dead-letter queue. Idempotency stays intact: every consumer's inbox
knows the event id, so a queue that had applied it (the routing key reaches every queue
bound to it) acknowledges it as a duplicate, and a replay interrupted between the
publish and the removal is harmless when run again.

Never replayed, left where they are and listed: a body that is not an event, and a
forged message (its ``user_id`` is not the publisher's): replaying it would publish it
under the real publisher's name. Remove those deliberately (``rabbitmqctl purge_queue``
once the rest is replayed).

Runs on a machine with the deployment's environment (SIUI_AMQP_URL, SIUI_EVENTS_EXCHANGE,
SIUI_DATA_DIR with the services' broker passwords, written by deploy/setup.sh): it reads
each dead-letter queue as that queue's consumer (its only reader) and publishes as the
event's publisher. Exit status: 0 when everything asked for was replayed or listed, 1 when
a publish failed (what was not confirmed stays parked), 2 for a bad invocation or set-up.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import uuid
from dataclasses import dataclass
from typing import TextIO

from aio_pika.abc import AbstractIncomingMessage

from shared.broker import TOPOLOGY, Broker, broker_url, connect, publisher_of
from shared.broker import broker_user
from shared.config import CommonConfig, ConfigError
from shared.events import EVENT_TYPES, Envelope, EventDecodeError

MAX_PER_QUEUE = 100_000  # messages taken from one dead-letter queue in one run


@dataclass
class Parked:
    """One message taken (unacknowledged) from a dead-letter queue."""

    queue: str                  # the short name of the queue it was parked from
    message: AbstractIncomingMessage
    envelope: Envelope | None
    why_not: str | None         # why it is not replayed; None: it is

    @property
    def event_id(self) -> str:
        return self.envelope.id if self.envelope is not None else (self.message.message_id or "?")[:40]

    @property
    def reason(self) -> str:
        """Why the broker parked it (the x-death header's reason: rejected, delivery_limit)."""
        deaths = (self.message.headers or {}).get("x-death") or []
        first = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
        reason = first.get("reason", "")
        return reason.decode() if isinstance(reason, bytes) else str(reason or "?")


def classify(queue: str, message: AbstractIncomingMessage, user_prefix: str) -> Parked:
    """Whether ``message`` may be replayed, and as what."""
    try:
        envelope = Envelope.from_json(message.body)
    except EventDecodeError:
        return Parked(queue, message, None, "not an event")
    event = EVENT_TYPES.get(envelope.type)
    if event is None:
        return Parked(queue, message, envelope, f"unknown event type {envelope.type[:40]!r}")
    publisher = publisher_of(event.ROUTING_KEY)
    if message.user_id != broker_user(publisher, user_prefix):
        return Parked(queue, message, envelope,
                      f"forged: published by {(message.user_id or 'nobody')[:40]!r}, not {publisher}")
    return Parked(queue, message, envelope, None)


async def take_parked(consumer: Broker, short: str, user_prefix: str, limit: int) -> tuple[object, list[Parked]]:
    """Every message of ``short``'s dead-letter queue (up to ``limit``), held unacknowledged
    on a channel of their own: what is not acknowledged goes back when it closes."""
    channel = await consumer.connection.channel()
    queue = await channel.get_queue(consumer.queue_name(short) + ".dlq", ensure=False)
    taken = []
    while len(taken) < limit:
        message = await queue.get(no_ack=False, fail=False, timeout=10)
        if message is None:
            break
        taken.append(classify(short, message, user_prefix))
    return channel, taken


async def replay(common: CommonConfig, queues: list[str], *, event_ids: set[str], dry_run: bool,
                 out: TextIO) -> int:
    """Replay (or list) the parked events of ``queues``; the exit status."""
    brokers: dict[str, Broker] = {}

    async def as_service(service: str) -> Broker:
        if service not in brokers:
            url = broker_url(common.amqp_url, common.data_dir, service, user_prefix=common.amqp_user_prefix)
            brokers[service] = await connect(url, common.events_exchange, user_prefix=common.amqp_user_prefix,
                                             wait_seconds=10)
        return brokers[service]

    counts = {"replayed": 0, "kept": 0, "failed": 0}
    try:
        for spec in (s for s in TOPOLOGY if s.name in queues):
            channel, parked = await take_parked(await as_service(spec.service), spec.name,
                                                common.amqp_user_prefix, MAX_PER_QUEUE)
            try:
                for item in parked:
                    if event_ids and item.event_id not in event_ids:
                        continue
                    type_ = item.envelope.type if item.envelope is not None else "-"
                    line = f"{spec.name}\t{item.event_id}\t{type_}\tparked: {item.reason}"
                    if item.why_not is not None:
                        counts["kept"] += 1
                        print(f"kept\t{line}\tnot replayed: {item.why_not}", file=out)
                        continue
                    if dry_run:
                        counts["kept"] += 1
                        print(f"would replay\t{line}", file=out)
                        continue
                    publisher = await as_service(publisher_of(EVENT_TYPES[item.envelope.type].ROUTING_KEY))
                    try:
                        await publisher.publish(item.envelope, body=item.message.body)
                    except Exception as exc:  # noqa: BLE001 - stays parked; reported, the rest goes on
                        counts["failed"] += 1
                        print(f"failed\t{line}\t{exc!r:.200}", file=out)
                        continue
                    await item.message.ack()
                    counts["replayed"] += 1
                    print(f"replayed\t{line}", file=out)
            finally:
                # What was not replayed goes back to the dead-letter queue, in its order.
                with contextlib.suppress(Exception):
                    await channel.close()
    finally:
        for broker in brokers.values():
            with contextlib.suppress(Exception):
                await broker.close()
    print(f"{counts['replayed']} replayed, {counts['kept']} left parked, {counts['failed']} failed", file=out)
    return 1 if counts["failed"] else 0


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    names = [spec.name for spec in TOPOLOGY]
    parser = argparse.ArgumentParser(prog="python -m deploy.replay_dead_letters",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", action="append", choices=names, metavar="QUEUE",
                        help=f"a queue whose dead letters to replay (repeatable; default all: {', '.join(names)})")
    parser.add_argument("--event-id", action="append", default=[], metavar="UUID",
                        help="replay only this event (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="list what is parked and why; replay nothing")
    args = parser.parse_args(argv)
    try:
        event_ids = {str(uuid.UUID(e)) for e in args.event_id}
    except ValueError:
        parser.error("--event-id takes an event's id (a UUID)")
    try:
        common = CommonConfig.from_env()
        return asyncio.run(replay(common, args.queue or names, event_ids=event_ids, dry_run=args.dry_run, out=out))
    except ConfigError as exc:
        print(f"deploy.replay_dead_letters: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
