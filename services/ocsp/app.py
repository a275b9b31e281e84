"""The ocsp service's composition root: the only module that knows all four features.

    state ──▶ responder ──▶ log
                  ▲            ▲
                  └── online ──┘

``state`` keeps the process's registry equal to the tables certs' events fill;
``responder`` answers OCSP from it; ``online`` decides connects from it and from the
keys; both record into ``log``. No I/O here: resources open in ``cleanup_ctx`` when the
app starts, in this order (cleanup runs in reverse, so the :8443 channel stops first and
the log is written out last).
"""
from __future__ import annotations

from aiohttp import web

from services.ocsp import log, online, responder, state
from services.ocsp.config import Config
from services.ocsp.consumers import CONSUMERS
from services.ocsp.openapi import OPENAPI_DOC
from shared.auth import TokenVerifier
from shared.clock import Clock, utc_now
from shared.http.operational import base_app
from shared.service import add_platform


def create_app(config: Config, *, clock: Clock = utc_now, verifier: TokenVerifier | None = None) -> web.Application:
    """The ocsp application; ``clock`` and ``verifier`` are for tests."""
    # An OCSP request is at most MAX_REQUEST_BYTES; JSON bodies (signers) a few kB.
    app = base_app("ocsp", OPENAPI_DOC, client_max_size=max(64 * 1024, responder.MAX_REQUEST_BYTES))
    # Answers come from memory (the registry): without its database or broker for a while
    # the responder still answers every request rightly, so it stays ready, degraded.
    add_platform(app, config.common, schema="ocsp", migrations="services.ocsp", consumers=CONSUMERS,
                 verifier=verifier, serves_from_memory=True)
    responder.add_registry(app)
    app.cleanup_ctx.append(state.state_ctx(config.common.data_key_path, load_timeout=config.load_timeout,
                                           presigned=bool(config.presign_algorithms)))
    app.cleanup_ctx.append(responder.responder_ctx(config, clock))
    app.cleanup_ctx.append(state.presign_ctx(config, clock))
    app.cleanup_ctx.append(log.log_ctx(capacity=config.log_buffer_entries, retention=config.log_retention))
    app.cleanup_ctx.append(online.online_ctx(config, clock=clock))
    state.add_routes(app)
    log.add_routes(app)
    responder.add_routes(app)  # last: its GET catch-all is the least specific route
    return app
