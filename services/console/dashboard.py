"""Panou operational: the page with the charts, and ``/panou/date``, the numbers it polls.

The numbers come from the services' /metrics (see ``metrics``) and from RabbitMQ: the
depth of every queue of ``shared.broker.TOPOLOGY`` (and its dead-letter queue), read by
a passive declare, which changes nothing on the broker and needs no permission: the
console's broker user (siui-console) may neither publish nor consume queues. The broker
connection is opened on first use, so the console starts and serves pages with the
broker down (but not without its broker password: that is a set-up to finish).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
import aiohttp
from aiohttp import web

from shared.http.operational import METRICS_TOKEN
from shared import errors
from shared.broker import TOPOLOGY, broker_url
from shared.failover import connect_failover

from services.console import expiring, metrics
from services.console.api import HTTP
from services.console.config import BACKENDS, Config
from services.console.web import CONFIG, operator, render

SCRAPE_TIMEOUT = aiohttp.ClientTimeout(total=3)
# Many open dashboards must not multiply the scraping: one sample serves all for a second.
CACHE_SECONDS = 1.0


@dataclass
class QueueProbe:
    """Reads queue depths over one lazily opened broker connection."""

    amqp_url: str = field(repr=False)  # holds siui-console's password
    exchange: str
    connection: aio_pika.abc.AbstractRobustConnection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def names(self) -> dict[str, str]:
        """Short name shown → the queue's name on the broker."""
        out = {}
        for spec in TOPOLOGY:
            out[spec.name] = f"{self.exchange}.{spec.name}"
            out[f"{spec.name}.dlq"] = f"{self.exchange}.{spec.name}.dlq"
        return out

    async def depths(self) -> dict[str, int | None]:
        """Messages waiting in each queue (None: the queue does not exist, or no broker)."""
        async with self.lock:
            depths: dict[str, int | None] = dict.fromkeys(self.names())
            try:
                if self.connection is None or self.connection.is_closed:
                    # Every node of SIUI_AMQP_URL once, the first that answers.
                    self.connection = await connect_failover(self.amqp_url, wait_seconds=0, timeout=3)
                channel = await self.connection.channel()
            except Exception:  # noqa: BLE001 - no broker: the chart shows a gap, not an error
                return depths
            try:
                for short, name in self.names().items():
                    try:
                        queue = await channel.declare_queue(name, passive=True, timeout=2)
                        depths[short] = queue.declaration_result.message_count
                    except Exception:  # noqa: BLE001 - a missing queue closes the channel
                        with contextlib.suppress(Exception):
                            await channel.close()
                        channel = await self.connection.channel()
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
            return depths

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


PROBE = web.AppKey("console_queue_probe", QueueProbe)
CACHE = web.AppKey("console_dashboard_cache", dict)


def probe_ctx(config: Config):
    """cleanup_ctx: the queue probe (connects on first use), closed at stop."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        common = config.common
        url = broker_url(common.amqp_url, common.data_dir, "console", user_prefix=common.amqp_user_prefix)
        app[PROBE] = QueueProbe(url, common.events_exchange)
        app[CACHE] = {}
        yield
        await app[PROBE].close()

    return ctx


async def dashboard_page(request: web.Request) -> web.Response:
    """GET /panou: the charts (drawn by static/panou.js from /panou/date)."""
    operator(request)
    return render(request, "panou.html", {"expiry": await expiring.expiry_box(request)})


async def _scrape(http: aiohttp.ClientSession, url: str, token: bytes) -> str | None:
    try:
        async with http.get(url + "/metrics", timeout=SCRAPE_TIMEOUT,
                            headers={"Authorization": "Bearer " + token.decode()}) as response:
            return await response.text() if response.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, UnicodeDecodeError):
        return None


async def sample(app: web.Application, house: str | None) -> dict:
    """One sample of every number the dashboard draws."""
    config = app[CONFIG]
    texts = await asyncio.gather(*(_scrape(app[HTTP], config.backends[name], app[METRICS_TOKEN])
                                   for name in BACKENDS))
    summary = metrics.summarize(dict(zip(BACKENDS, texts)), house=house)
    queues = await app[PROBE].depths()
    return {"at": time.time(), "house": house, **summary.to_json(), "queues": queues}


async def dashboard_data(request: web.Request) -> web.Response:
    """GET /panou/date: JSON; counters are running totals (the page computes rates)."""
    principal = request.get("operator")
    if principal is None:
        raise errors.Unauthorized("log in to the console first")
    house = None if principal.is_national else principal.cas
    if principal.is_national and request["session"].house:
        house = request["session"].house
    cache = request.app[CACHE]
    cached = cache.get(house)
    if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
        cached = (time.monotonic(), await sample(request.app, house))
        cache[house] = cached
    return web.json_response(cached[1])
