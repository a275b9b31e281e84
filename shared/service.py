"""The composition every database-backed service shares, and the run loop.

A service's ``create_app`` calls ``add_platform`` once with its consumers declared as
``{queue: {EventClass.TYPE: handler}}`` and adds its own routes; nothing here runs at
import time. Start order (cleanup runs in reverse): migrations and the pool, the LISTEN
follower, the broker, token verification, the outbox relay, the consumers.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aio_pika
from aiohttp import web

from shared.audit import add_audit, checkpoint_job, purge_audit
from shared.auth import VERIFIER, TokenVerifier
from shared.broker import BROKER, REVOCATION_WORD, broker_ctx, declare_process_queue
from shared.config import CommonConfig
from shared.db import POOL, pool_ctx
from shared.events import Envelope, EventDecodeError
from shared.http.clients import TRUSTED_PROXIES
from shared.http.operational import DEGRADED_BY, READINESS, metrics_token_ctx
from shared.http.serving import serve_forever
from shared.inbox import CONSUMER_SLOTS, Handler, consumer_ctx, consumer_slots, forgery, purge_inbox, refuse_forged
from shared.listen import LISTENER, Listener
from shared.logging import configure_logging, get_logger
from shared.outbox import outbox_relay_ctx
from shared.queues import queue_depths_ctx
from shared.clock import utc_now
from shared.supervisor import follow_supervisor, restarts
from shared.tasks import BackgroundTask, background_ctx, periodic_ctx, wait_stopping

log = get_logger(__name__)

Consumers = dict[str, dict[str, Handler]]


async def database_reachable(app: web.Application) -> None:
    await asyncio.wait_for(app[POOL].fetchval("select 1"), 2.0)


async def broker_reachable(app: web.Application) -> None:
    if not app[BROKER].is_connected:
        raise ConnectionError("broker connection is down")


REVOKED_CATCH_UP_SECONDS = 60.0


async def catch_up_revocations(verifier: TokenVerifier, users_url: str) -> bool:
    """Learn the logouts that happened before this process started (events only tell of
    later ones) from the users service, once; True when learnt."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
            async with http.get(users_url + "/v1/sessions/revoked") as response:
                if response.status != 200:
                    return False
                items = (await response.json())["items"]
                verifier.revoked.update(str(item["jti"]) for item in items)
                return True
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
        return False


def _keep_catching_up(verifier: TokenVerifier, users_url: str):
    async def target(stopping: asyncio.Event) -> None:
        deadline = asyncio.get_running_loop().time() + REVOKED_CATCH_UP_SECONDS
        while not await catch_up_revocations(verifier, users_url):
            if asyncio.get_running_loop().time() >= deadline:
                log.warning("revoked_sessions_unknown", users_url=users_url,
                            detail="tokens ended before this start are accepted until they expire")
                return
            if await wait_stopping(stopping, 1.0):
                return

    return target


def verifier_ctx(common: CommonConfig, verifier: TokenVerifier | None, *, catch_up: bool = True,
                 service: str):
    """cleanup_ctx: load the token public key, follow SessionRevoked on a private queue,
    and (``catch_up``) read the logouts that happened before this start. A logout not
    published by the users service's broker user is refused (a forged one would end
    anybody's session: a denial of service), counted as ``forged``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[VERIFIER] = verifier or TokenVerifier.from_file(common.token_public_key_path)
        broker = app[BROKER]
        # The metrics label is the same for every process (the queue's own name is not).
        label = f"{common.events_exchange}.{service}.{REVOCATION_WORD}"

        async def on_revoked(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            # Who sent it is settled before its body is read, its event type right after.
            envelope = None
            reason = forgery(message, broker.user_prefix)
            if reason is None:
                try:
                    envelope = Envelope.from_json(message.body)
                except EventDecodeError as exc:
                    log.error("session_revoked_undecodable", error=str(exc))
                reason = forgery(message, broker.user_prefix, envelope)
            if reason is not None:
                await refuse_forged(message, label, reason)
                return
            async with message.process(requeue=False):
                if envelope is None:
                    return
                try:
                    app[VERIFIER].revoked.add(envelope.payload().jti)
                except EventDecodeError as exc:
                    log.error("session_revoked_undecodable", error=str(exc))

        # One exclusive queue per process: every replica must learn of every logout. Its
        # name starts with the service's, which is all its broker user may create and read.
        channel, _queue = await declare_process_queue(broker, service, REVOCATION_WORD, on_revoked)
        # Subscribed first, then read what came before: no logout falls in between. One
        # try before serving; if users is not up yet (all start together), keep trying.
        catching_up = None
        if catch_up and not await catch_up_revocations(app[VERIFIER], common.users_url):
            catching_up = BackgroundTask("catch-up-revocations", _keep_catching_up(app[VERIFIER], common.users_url))
            catching_up.start()
        # The queue is exclusive: it dies with the connection, and a logout published
        # while the connection was away (a broker node lost, the connection moving to
        # another) reached no queue of ours. Once restored, read the ended sessions again.
        after_reconnect: list[BackgroundTask] = []

        def reconnected() -> None:
            if catch_up and not any(task.running for task in after_reconnect):
                task = BackgroundTask("catch-up-revocations-after-reconnect",
                                      _keep_catching_up(app[VERIFIER], common.users_url))
                after_reconnect[:] = [task]
                task.start()

        stop_following = broker.on_reconnect(reconnected)
        try:
            yield
        finally:
            stop_following()
            for task in after_reconnect:
                await task.stop()
            if catching_up is not None:
                await catching_up.stop()
            try:
                await asyncio.wait_for(channel.close(), 2.0)
            except Exception:  # the broker may be gone; the queue is exclusive and goes with us
                pass

    return ctx


def _purge_audit(common: CommonConfig):
    async def purge(app: web.Application) -> None:
        await purge_audit(app[POOL], utc_now() - timedelta(days=common.audit_retention_days))

    return purge


def _purge_inbox(common: CommonConfig):
    async def purge(app: web.Application) -> None:
        await purge_inbox(app[POOL], utc_now() - timedelta(days=common.inbox_retention_days))

    return purge


def add_platform(app: web.Application, common: CommonConfig, *, schema: str, migrations: str,
                 consumers: Consumers | None = None, verifier: TokenVerifier | None = None,
                 pool_max_size: int = 10, follow_past_logouts: bool = True,
                 serves_from_memory: bool = False) -> None:
    """Attach the shared resources, in start order (cleanup runs in reverse), the audit
    trail, and the readiness checks. ``serves_from_memory``: the service keeps serving
    while its database and broker are away (ocsp answers from its registry), so their
    loss degrades it rather than making it not ready."""
    app.cleanup_ctx.append(metrics_token_ctx(common.metrics_token_path))
    app.cleanup_ctx.append(pool_ctx(common.database_url, schema, migrations, max_size=pool_max_size,
                                    owner_url=common.database_owner_url, read_url=common.database_read_url,
                                    read_max_lag=common.database_read_max_lag_seconds))
    app[LISTENER] = Listener(common.database_url)
    app.cleanup_ctx.append(background_ctx("listen", lambda a: a[LISTENER].run))
    # The schema is the service's name: it decides the broker user (siui-<schema>).
    app.cleanup_ctx.append(broker_ctx(common.amqp_url, common.events_exchange, data_dir=common.data_dir,
                                      service=schema, user_prefix=common.amqp_user_prefix))
    app.cleanup_ctx.append(verifier_ctx(common, verifier, catch_up=follow_past_logouts, service=schema))
    app.cleanup_ctx.append(outbox_relay_ctx(schema))
    app[CONSUMER_SLOTS] = consumer_slots(pool_max_size)
    for queue, handlers in (consumers or {}).items():
        app.cleanup_ctx.append(consumer_ctx(queue, handlers))
    if consumers:
        app.cleanup_ctx.append(queue_depths_ctx(schema))
        app.cleanup_ctx.append(periodic_ctx("inbox-retention", 3600, _purge_inbox(common)))
    app[TRUSTED_PROXIES] = common.trusted_proxies
    add_audit(app, schema)
    app.cleanup_ctx.append(periodic_ctx("audit-retention", 3600, _purge_audit(common)))
    app.cleanup_ctx.append(periodic_ctx("audit-checkpoint", common.audit_checkpoint_seconds, checkpoint_job(app)))
    # Every service publishes through its outbox and consumes at its own pace, so a broker
    # away (reconnecting) delays events but stops no request: /readyz stays 200, degraded,
    # and the balancer keeps the instance. The database is needed to serve, except by ocsp.
    app[DEGRADED_BY if serves_from_memory else READINESS].append(database_reachable)
    app[DEGRADED_BY].append(broker_reachable)


def run(service: str, common: CommonConfig, make_app: Callable[[], web.Application], port: int,
        *, reuse_port: bool = False) -> None:
    """Run one service in the foreground until SIGINT/SIGTERM, then stop gracefully,
    through the guarded server (shared.http.serving: slow clients cut off, per-address
    connection cap, problem+json for what aiohttp refuses)."""
    configure_logging(service, common.log_format)
    follow_supervisor()  # under make up's runner: stop with it, never linger
    log.info("starting", port=port, host=common.host, restarts=restarts())
    asyncio.run(serve_forever(make_app, common.host, port, reuse_port=reuse_port))
    log.info("stopped")
