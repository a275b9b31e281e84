"""Writes that must persist even when the client goes away mid-request.

A suspension an operator clicked must happen and reach OCSP whether or not the browser
waits for the answer. aiohttp cancels a handler whose client disconnects (when
``handler_cancellation`` is on, as in its test server) and at shutdown after the grace
period; so the transaction runs as its own task behind ``asyncio.shield``, and the app
waits for such tasks before it closes the pool.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from aiohttp import web

from shared import errors
from shared.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

PENDING_WRITES = web.AppKey("certs_pending_writes", set)


async def run_to_completion(pending: set, work: Awaitable[T]) -> T:
    """Await ``work``; if the caller is cancelled meanwhile, ``work`` still finishes."""
    task = asyncio.ensure_future(work)
    pending.add(task)
    task.add_done_callback(pending.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Nobody is left to see how it ends: say it in the log if it fails.
        task.add_done_callback(_log_orphan_failure)
        raise


def _log_orphan_failure(task: asyncio.Future) -> None:
    if task.cancelled():
        log.error("durable_write_cancelled")
        return
    exc = task.exception()
    if isinstance(exc, errors.DomainError):
        log.info("durable_write_refused", error=exc.detail)
    elif exc is not None:
        log.error("durable_write_failed", error=repr(exc))


async def pending_writes_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the pool's): at shutdown, let in-flight writes commit first."""
    app[PENDING_WRITES] = set()
    yield
    if app[PENDING_WRITES]:
        await asyncio.gather(*app[PENDING_WRITES], return_exceptions=True)
