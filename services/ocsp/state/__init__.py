"""State following: certs' events → the ocsp tables → every process's registry.

``consumers`` stores each certs event (issuer registered, certificate registered,
suspended, reinstated, revoked) in the tables with a NOTIFY note in the same
transaction (``queries``); ``follower`` applies every note to the process's
``Registry`` (the responder's) with the pure rules of ``apply``, and reloads after a
lost connection. Delegated signers (``signers``, ``routes``) are stored encrypted and
followed the same way.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from services.ocsp.responder import REGISTRY
from services.ocsp.state.appkeys import DATA_KEY
from services.ocsp.state.consumers import HANDLERS
from services.ocsp.state.follower import StateFollower
from services.ocsp.state.openapi import OPENAPI
from services.ocsp.state.queries import NOTIFY_CHANNEL
from services.ocsp.state.routes import add_routes
from services.ocsp.state.signers import load_data_key
from shared.db import POOL
from shared.listen import LISTENER
from shared.tasks import BackgroundTask

__all__ = ["DATA_KEY", "HANDLERS", "OPENAPI", "add_routes", "state_ctx"]

LOAD_TIMEOUT = 60.0


def state_ctx(data_key_path, *, load_timeout: float = LOAD_TIMEOUT):
    """cleanup_ctx: read the data key, load ``app[REGISTRY]`` from the tables, then follow
    their changes. Nothing is served before the first load: an empty registry would
    answer ``unauthorized`` for every issuer."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DATA_KEY] = load_data_key(data_key_path)
        follower = StateFollower(app[POOL], app[REGISTRY], app[DATA_KEY], app[LISTENER].subscribe(NOTIFY_CHANNEL))
        task = BackgroundTask("ocsp-state", follower.run, cancel_on_stop=True)
        task.start()
        try:
            await asyncio.wait_for(follower.loaded.wait(), load_timeout)
            yield
        finally:
            await task.stop()

    return ctx
