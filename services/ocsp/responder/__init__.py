"""The OCSP responder (RFC 6960 / RFC 5019): the hot path.

A request is decoded (``codec``), its CertIDs resolved in this process's in-memory
``registry``, answered from the pre-signed answers every responder shares
(``presigned``), from this process's cache of its own, or signed live behind a bounded
queue (``answering``, ``responses``), then written by one of two edges that share the
wire helpers (``wire``): the lean httptools ``front`` that owns the port in production,
and the aiohttp handlers (``routes``) for what it hands over. The registry is kept
current by ``services.ocsp.state``; answers are logged through ``services.ocsp.log``.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from services.ocsp.config import Config
from services.ocsp.responder.answering import Responder, SigningQueue
from services.ocsp.responder.appkeys import MAX_AGE, PRESIGNED, REGISTRY, RESPONDER
from services.ocsp.responder.codec import MAX_REQUEST_BYTES
from services.ocsp.responder.identities import RotationError, load_responder_keys
from services.ocsp.responder.lifetime import publish_delegated, publish_responder
from services.ocsp.responder.openapi import OPENAPI
from services.ocsp.responder.presigned import PresignedStore
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.routes import add_routes
from shared.clock import Clock, utc_now

__all__ = ["MAX_AGE", "MAX_REQUEST_BYTES", "OPENAPI", "PRESIGNED", "REGISTRY", "RESPONDER", "RotationError",
           "add_registry", "add_routes", "load_responder_keys", "publish_delegated", "responder_ctx"]

#: The switch timer re-reads the clock at least this often (seconds): a monotonic timer
#: and the wall clock drift apart (NTP), and the switch time is a wall-clock moment.
SWITCH_RECHECK = 60.0


def add_registry(app: web.Application) -> Registry:
    """The process's empty registry under ``app[REGISTRY]`` and its empty store of
    pre-signed answers under ``app[PRESIGNED]`` (no I/O: state fills both)."""
    app[REGISTRY] = registry = Registry()
    app[PRESIGNED] = PresignedStore()
    return registry


def responder_ctx(config: Config, clock: Clock = utc_now):
    """cleanup_ctx: load the responder's identities (key file or HSM; the next one, if a
    rotation is configured, checked) and build the Responder over ``app[REGISTRY]``,
    with a timer that lets the next identity take over at the switch time."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        keys = load_responder_keys(config)
        validity = timedelta(seconds=config.validity_seconds)
        cache = None
        if config.cache_entries:
            # Refresh well before nextUpdate, but never beyond a quarter of the validity.
            cache = ResponseCache(config.cache_entries, refresh_margin=min(timedelta(minutes=10), validity / 4),
                                  max_bytes=config.cache_bytes)
        app[MAX_AGE] = config.max_age_seconds
        app[RESPONDER] = responder = Responder(
            app[REGISTRY], keys.current, SigningQueue(config.max_pending, config.signing_batch), cache, validity,
            clock, next_identity=keys.next, switch_at=keys.switch_at,
            presigned=app[PRESIGNED] if config.presign_algorithms else None)
        responder.on_switch.append(lambda identity: publish_responder(identity, None))
        responder.switch_if_due()  # a restart after the switch time starts with the next one
        publish_responder(responder.identity, responder.next_identity)
        timer = _SwitchTimer(responder, clock)
        try:
            yield
        finally:
            timer.cancel()
            keys.close()

    return ctx


class _SwitchTimer:
    """Switches ``responder`` at its ``switch_at`` even when no request comes (each worker
    has its own: they all switch within their timers' precision, milliseconds)."""

    def __init__(self, responder: Responder, clock: Clock):
        self._responder, self._clock = responder, clock
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        switch_at = self._responder.switch_at
        if switch_at is None:
            return
        remaining = (switch_at - self._clock()).total_seconds()
        self._handle = self._loop.call_later(max(0.0, min(remaining, SWITCH_RECHECK)), self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._responder.switch_if_due()
        self._arm()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
