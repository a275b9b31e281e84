"""The composition every service shares: database, broker, outbox relay, consumers,
token verification and the run loop. A service's ``create_app`` calls ``add_platform``
and adds its own routes; nothing here runs at import time."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
from aiohttp import web

from shared.auth import VERIFIER, TokenVerifier
from shared.broker import BROKER, broker_ctx
from shared.config import CommonConfig
from shared.db import POOL, pool_ctx
from shared.events import Envelope, EventDecodeError, SessionRevoked
from shared.http import READINESS
from shared.inbox import Handler, consumer_ctx
from shared.logging import configure_logging, get_logger
from shared.outbox import outbox_relay_ctx

log = get_logger(__name__)


async def database_reachable(app: web.Application) -> None:
    await asyncio.wait_for(app[POOL].fetchval("select 1"), 2.0)


async def broker_reachable(app: web.Application) -> None:
    if not app[BROKER].is_connected:
        raise ConnectionError("broker connection is down")


REVOKED_CATCH_UP_SECONDS = 60.0


async def catch_up_revocations(verifier: TokenVerifier, users_url: str, *,
                               deadline_seconds: float = REVOKED_CATCH_UP_SECONDS, quiet: bool = False) -> bool:
    """Learn the logouts that happened before this process started (events only tell of
    later ones): ask the users service, retrying while it starts. True once learnt."""
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        while True:
            try:
                async with http.get(users_url + "/v1/sessions/revoked") as response:
                    if response.status == 200:
                        verifier.revoked.update(item["jti"] for item in (await response.json())["items"])
                        return True
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
                pass
            if loop.time() >= deadline:
                if quiet:
                    return False
                log.warning("revoked_sessions_unknown", users_url=users_url,
                            detail="tokens ended before this start are accepted until they expire")
                return False
            await asyncio.sleep(1.0)


def verifier_ctx(common: CommonConfig, verifier: TokenVerifier | None, *, catch_up: bool = True):
    """cleanup_ctx: load the token public key, follow SessionRevoked on a private queue,
    and (``catch_up``) read the logouts that happened before this start."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[VERIFIER] = verifier or TokenVerifier.from_file(common.token_public_key_path)
        channel = await app[BROKER].connection.channel()
        exchange = await channel.get_exchange(common.events_exchange)
        # One exclusive queue per process: every replica must learn of every logout.
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=SessionRevoked.ROUTING_KEY)

        async def on_revoked(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process(requeue=False):
                try:
                    app[VERIFIER].revoked.add(Envelope.from_json(message.body).payload().jti)
                except EventDecodeError as exc:
                    log.error("session_revoked_undecodable", error=str(exc))

        await queue.consume(on_revoked)
        # Subscribed first, then read what came before: no logout falls in between. One
        # try before serving; if users is not up yet (all start together), keep trying.
        catching_up = None
        if catch_up and not await catch_up_revocations(app[VERIFIER], common.users_url,
                                                       deadline_seconds=0, quiet=True):
            catching_up = asyncio.create_task(catch_up_revocations(app[VERIFIER], common.users_url))
        try:
            yield
        finally:
            if catching_up is not None:
                catching_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await catching_up
            with contextlib.suppress(Exception):
                await channel.close()

    return ctx


def add_platform(app: web.Application, common: CommonConfig, *, schema: str, migrations: str,
                 consumers: dict[str, dict[str, Handler]] | None = None,
                 verifier: TokenVerifier | None = None, pool_max_size: int = 10,
                 follow_past_logouts: bool = True) -> None:
    """Attach the shared resources, in start order (cleanup runs in reverse)."""
    app.cleanup_ctx.append(pool_ctx(common.database_url, schema, migrations, max_size=pool_max_size))
    app.cleanup_ctx.append(broker_ctx(common.amqp_url, common.events_exchange))
    app.cleanup_ctx.append(verifier_ctx(common, verifier, catch_up=follow_past_logouts))
    app.cleanup_ctx.append(outbox_relay_ctx(schema))
    for queue, handlers in (consumers or {}).items():
        app.cleanup_ctx.append(consumer_ctx(queue, handlers))
    app[READINESS].extend([database_reachable, broker_reachable])


def run(service: str, common: CommonConfig, make_app: Callable[[], web.Application], port: int,
        *, reuse_port: bool = False, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Run one service in the foreground until SIGINT/SIGTERM, then stop gracefully.

    ``loop``: the event loop to run on (e.g. uvloop's); default asyncio's."""
    configure_logging(service, common.log_format)
    log.info("starting", port=port, host=common.host)
    web.run_app(make_app(), host=common.host, port=port, reuse_port=reuse_port,
                shutdown_timeout=10, print=None, access_log=None,
                handle_signals=True, loop=loop)
    log.info("stopped")




def periodic_ctx(name: str, every_seconds: float, job: Callable[[web.Application], Awaitable[None]]):
    """cleanup_ctx: run ``job(app)`` now and then every ``every_seconds`` while the app
    runs (housekeeping such as purges); a failing round is logged and tried next time."""

    async def forever(app: web.Application) -> None:
        while True:
            try:
                await job(app)
            except Exception as exc:  # database away or busy: try again next round
                log.warning("periodic_job_failed", job=name, error=repr(exc))
            await asyncio.sleep(every_seconds)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(forever(app), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx
