"""The certs service's composition root: issuing authorities, user certificates,
suspension, last use. No I/O here: resources open in ``cleanup_ctx`` when the app starts."""
from __future__ import annotations

import asyncio

from aiohttp import web

from shared.auth import TokenVerifier
from shared.clock import Clock, utc_now
from shared.http.operational import base_app
from shared.service import add_platform

from . import renewal_routes, routes
from .config import CLOCK, CONFIG, Config
from .consumers import CONSUMERS
from .durable import pending_writes_ctx
from .openapi import OPENAPI_DOC
from .status_fetcher import STATUS_WAKE, status_fetcher_ctx


def create_app(config: Config, *, clock: Clock = utc_now, verifier: TokenVerifier | None = None) -> web.Application:
    """The certs application; ``clock`` and ``verifier`` are for tests."""
    app = base_app("certs", OPENAPI_DOC)
    app[CONFIG] = config
    app[CLOCK] = clock
    add_platform(app, config.common, schema="certs", migrations="services.certs", consumers=CONSUMERS,
                 verifier=verifier, pool_max_size=config.pool_size)
    # After the pool's: its cleanup runs first, so in-flight writes commit before the pool closes.
    app.cleanup_ctx.append(pending_writes_ctx)
    # The issuers' CRLs, fetched in the background: a request only ever wakes it.
    app[STATUS_WAKE] = asyncio.Event()
    app.cleanup_ctx.append(status_fetcher_ctx)

    routes.add_routes(app)
    renewal_routes.add_routes(app)
    return app
