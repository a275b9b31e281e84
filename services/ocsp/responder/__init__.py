"""The OCSP responder (RFC 6960 / RFC 5019): the hot path.

A request is decoded (``codec``), its CertIDs resolved in this process's in-memory
``registry``, answered from the cache of signed answers or signed live behind a bounded
queue (``answering``, ``responses``), then written by one of two edges that share the
wire helpers (``wire``): the lean httptools ``front`` that owns the port in production,
and the aiohttp handlers (``routes``) for what it hands over. The registry is kept
current by ``services.ocsp.state``; answers are logged through ``services.ocsp.log``.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from services.ocsp.config import Config
from services.ocsp.responder.answering import Responder, SigningQueue
from services.ocsp.responder.appkeys import MAX_AGE, REGISTRY, RESPONDER, RESPONDER_PEM
from services.ocsp.responder.codec import MAX_REQUEST_BYTES
from services.ocsp.responder.openapi import OPENAPI
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.responses import ResponderIdentity
from services.ocsp.responder.routes import add_routes
from shared.clock import Clock, utc_now

__all__ = ["MAX_AGE", "MAX_REQUEST_BYTES", "OPENAPI", "REGISTRY", "RESPONDER", "RESPONDER_PEM",
           "add_registry", "add_routes", "responder_ctx"]


def add_registry(app: web.Application) -> Registry:
    """The process's empty registry under ``app[REGISTRY]`` (no I/O: state fills it)."""
    app[REGISTRY] = registry = Registry()
    return registry


def responder_ctx(config: Config, clock: Clock = utc_now):
    """cleanup_ctx: load the responder's certificate and key, and build the Responder
    over ``app[REGISTRY]``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cert_pem = config.responder_cert.read_bytes()
        identity = ResponderIdentity.from_pem(cert_pem, config.responder_key.read_bytes())
        validity = timedelta(seconds=config.validity_seconds)
        cache = None
        if config.cache_entries:
            # Refresh well before nextUpdate, but never beyond a quarter of the validity.
            cache = ResponseCache(config.cache_entries, refresh_margin=min(timedelta(minutes=10), validity / 4),
                                  max_bytes=config.cache_bytes)
        app[RESPONDER_PEM] = cert_pem
        app[MAX_AGE] = config.max_age_seconds
        app[RESPONDER] = Responder(app[REGISTRY], identity, SigningQueue(config.max_pending, config.signing_batch),
                                   cache, validity, clock)
        yield

    return ctx
