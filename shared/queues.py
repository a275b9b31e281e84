"""How full the queues a service consumes are, its dead-letter queues above all.

Every consuming service reads, every ``INTERVAL`` seconds, the depth of each queue it
consumes and of that queue's dead-letter queue, with a passive declare (it changes
nothing on the broker), and exports them:

* ``siui_queue_messages{queue}``: events waiting to be consumed (a consumer behind);
* ``siui_dead_letter_messages{queue}``: events parked for good, whose effect never
  happened until someone replays them (``python -m deploy.replay_dead_letters``).
  Alerted on by SiuiDeadLetterQueueNotEmpty (deploy/prometheus) and drawn on the
  national dashboard.

``queue`` is the queue's short name (``users.key-issued``), the same in every deployment.
The reading is the broker's, so every process of a service reports the same numbers:
the gauges keep the largest live reading rather than a sum.
"""
from __future__ import annotations

import asyncio
import contextlib

from aio_pika.abc import AbstractChannel
from aiohttp import web
from prometheus_client import Gauge

from shared.broker import BROKER, TOPOLOGY, Broker
from shared.logging import get_logger
from shared.tasks import periodic_ctx

log = get_logger(__name__)

INTERVAL = 15.0  # Prometheus scrapes every 15 s: a new reading for each scrape
DECLARE_TIMEOUT = 3.0

QUEUE_MESSAGES = Gauge("siui_queue_messages", "Events waiting in a queue this service consumes", ["queue"],
                       multiprocess_mode="livemax")
DEAD_LETTERS = Gauge("siui_dead_letter_messages", "Events parked in the dead-letter queue of a queue this "
                     "service consumes", ["queue"], multiprocess_mode="livemax")


def consumed_queues(service: str) -> list[str]:
    """The short names of the queues ``service`` consumes."""
    return [spec.name for spec in TOPOLOGY if spec.service == service]


async def _depth(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True, timeout=DECLARE_TIMEOUT)
    return queue.declaration_result.message_count


async def read_depths(broker: Broker, shorts: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """Short name → (waiting, dead-lettered); None where the broker did not say (a queue
    missing closes the channel: a new one is opened for the next)."""
    out: dict[str, tuple[int | None, int | None]] = {}
    channel = await broker.connection.channel()
    try:
        for short in shorts:
            depths: list[int | None] = []
            for name in (broker.queue_name(short), broker.queue_name(short) + ".dlq"):
                try:
                    depths.append(await _depth(channel, name))
                except Exception:  # noqa: BLE001 - missing queue or broker away: unknown, not 0
                    depths.append(None)
                    with contextlib.suppress(Exception):
                        await channel.close()
                    channel = await broker.connection.channel()
            out[short] = (depths[0], depths[1])
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(channel.close(), DECLARE_TIMEOUT)
    return out


def export(depths: dict[str, tuple[int | None, int | None]]) -> None:
    for short, (waiting, parked) in depths.items():
        if waiting is not None:
            QUEUE_MESSAGES.labels(short).set(waiting)
        if parked is not None:
            DEAD_LETTERS.labels(short).set(parked)


def queue_depths_ctx(service: str):
    """cleanup_ctx: export the depths of ``service``'s queues every ``INTERVAL`` seconds."""
    shorts = consumed_queues(service)

    async def read(app: web.Application) -> None:
        depths = await read_depths(app[BROKER], shorts)
        export(depths)
        parked = {short: d[1] for short, d in depths.items() if d[1]}
        if parked:
            log.warning("dead_letters_waiting", queues=parked,
                        detail="replay them with python -m deploy.replay_dead_letters once the cause is fixed")

    return periodic_ctx("queue-depths", INTERVAL, read)
