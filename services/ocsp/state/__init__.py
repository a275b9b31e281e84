"""State following: certs' events → every process's registry, and → the ocsp tables.

``consumers`` stores each certs event (issuer registered, certificate registered,
suspended, reinstated, revoked) in the tables (``queries``): what a responder starts
from. ``follower`` takes the same events on the process's own broker queue and applies
each to the process's ``Registry`` (the responder's) with the pure rules of ``apply``;
it reads the tables (the standby's when configured) only at start and after a lost
broker connection. Delegated signers (``signers``, ``routes``) are stored encrypted and
announced by a SignerChanged event from the outbox. The pre-signed answers
(``presigner``: one elected process signs every certificate's answer once per state and
stores the bytes) travel in AnswersPresigned events from the outbox into every
process's store, so every worker of every instance serves the same bytes.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from aiohttp import web

from services.ocsp.config import Config
from services.ocsp.responder import PRESIGNED, REGISTRY, RESPONDER
from services.ocsp.state.appkeys import DATA_KEY, FOLLOWER, PRESIGNER
from services.ocsp.state.consumers import HANDLERS
from services.ocsp.state.follower import StateFollower
from services.ocsp.state.presigner import Presigner
from services.ocsp.state.openapi import OPENAPI
from services.ocsp.state.routes import add_routes
from services.ocsp.state.signers import load_data_key
from shared.clock import Clock, utc_now
from shared.broker import BROKER
from shared.db import reading
from shared.tasks import BackgroundTask, background_ctx

__all__ = ["DATA_KEY", "FOLLOWER", "HANDLERS", "PRESIGNER", "OPENAPI", "add_routes", "presign_ctx", "state_ctx"]

LOAD_TIMEOUT = 60.0


def state_ctx(data_key_path, *, load_timeout: float = LOAD_TIMEOUT, presigned: bool = True):
    """cleanup_ctx: read the data key, declare this process's queue, load ``app[REGISTRY]``
    (and, with ``presigned``, ``app[PRESIGNED]``) from the tables (the read pool), then
    follow the events. Nothing is served before the first load: an empty registry would
    answer ``unauthorized`` for every issuer."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DATA_KEY] = load_data_key(data_key_path)
        follower = StateFollower(app[BROKER], lambda: reading(app), app[REGISTRY], app[DATA_KEY],
                                 app[PRESIGNED] if presigned else None)
        app[FOLLOWER] = follower
        await follower.start()  # first: an event committed during the load is queued
        task = BackgroundTask("ocsp-state", follower.run, cancel_on_stop=True)
        task.start()
        try:
            await asyncio.wait_for(follower.loaded.wait(), load_timeout)
            yield
        finally:
            await task.stop()
            await follower.close()

    return ctx


def presign_ctx(config: Config, clock: Clock = utc_now):
    """cleanup_ctx (after the responder's): this process's candidate for presigner, fed
    by the follower's changes and the responder's signer switch. Nothing without
    SIUI_OCSP_PRESIGN_HASHES."""
    if not config.presign_algorithms:
        return _nothing
    database_url = config.common.database_url

    def presigner_of(app: web.Application):
        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(database_url, timeout=10, server_settings={
                "search_path": "ocsp", "application_name": "siui-ocsp-presigner"})

        presigner = Presigner(connect, app[REGISTRY], app[PRESIGNED], lambda: app.get(RESPONDER),
                              config.presign_algorithms, timedelta(seconds=config.validity_seconds), clock=clock)
        app[PRESIGNER] = presigner
        app[FOLLOWER].changed.append(presigner.changed)
        app[RESPONDER].on_switch.append(presigner.signer_switched)
        return presigner.run

    return background_ctx("ocsp-presigner", presigner_of, cancel_on_stop=True)


async def _nothing(_app: web.Application) -> AsyncIterator[None]:
    yield
