"""The ocsp service's composition root: the responder, delegated signers, the OCSP log and
the online channel. No I/O here: resources open in ``cleanup_ctx`` when the app starts."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from shared.auth import TokenVerifier
from shared.clock import Clock, utc_now
from shared.http import base_app
from shared.service import add_platform

from . import routes
from .answering import Responder, SigningQueue
from .codec import MAX_REQUEST_BYTES
from .config import Config
from .consumers import HANDLERS
from .online import online_ctx
from .openapi import OPENAPI_DOC
from .oplog import add_log_routes, oplog_ctx
from .registry import Registry, ResponseCache
from .responder import MAX_AGE, RESPONDER, RESPONDER_PEM, add_responder_routes
from .responses import ResponderIdentity
from .state import REGISTRY, state_ctx

CONFIG = web.AppKey("ocsp_config", Config)


def responder_ctx(config: Config, clock: Clock):
    """cleanup_ctx: load the responder's certificate and key, and build the Responder."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cert_pem = config.responder_cert.read_bytes()
        identity = ResponderIdentity.from_pem(cert_pem, config.responder_key.read_bytes())
        validity = timedelta(seconds=config.validity_seconds)
        cache = None
        if config.cache_entries:
            # Refresh well before nextUpdate, but never beyond a quarter of the validity.
            cache = ResponseCache(config.cache_entries, refresh_margin=min(timedelta(minutes=10), validity / 4))
        app[RESPONDER_PEM] = cert_pem
        app[RESPONDER] = Responder(app[REGISTRY], identity, SigningQueue(config.max_pending, config.signing_batch),
                                   cache, validity, clock)
        yield

    return ctx


def create_app(config: Config, *, clock: Clock = utc_now, verifier: TokenVerifier | None = None) -> web.Application:
    """The ocsp application; ``clock`` and ``verifier`` are for tests.

    Start order: pool, broker, consumers; the registry loaded from the tables and
    followed; the responder; the log writer; the :8443 online channel (which reads the
    registry and writes the log). Cleanup runs in reverse.
    """
    # An OCSP request is at most MAX_REQUEST_BYTES; JSON bodies (signers) a few kB.
    app = base_app("ocsp", OPENAPI_DOC, client_max_size=max(64 * 1024, MAX_REQUEST_BYTES))
    app[CONFIG] = config
    app[REGISTRY] = Registry()
    app[MAX_AGE] = config.max_age_seconds
    add_platform(app, config.common, schema="ocsp", migrations="services.ocsp",
                 consumers={"ocsp.certs": HANDLERS}, verifier=verifier)
    app.cleanup_ctx.append(state_ctx(config.common.database_url, config.common.data_key_path))
    app.cleanup_ctx.append(responder_ctx(config, clock))
    app.cleanup_ctx.append(oplog_ctx(config, capacity=config.log_buffer_entries))
    add_log_routes(app)
    app.cleanup_ctx.append(online_ctx(config))

    app.router.add_get("/v1/issuers/{issuer_id}/signer", routes.get_signer)
    app.router.add_put("/v1/issuers/{issuer_id}/signer", routes.put_signer)
    app.router.add_delete("/v1/issuers/{issuer_id}/signer", routes.delete_signer)
    add_responder_routes(app)  # last: its GET catch-all is the least specific route
    return app
