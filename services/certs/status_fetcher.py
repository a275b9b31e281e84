"""The background CRL fetcher of the certs service: a ``BackgroundTask`` that takes the
issuers that are due (``issuer_status.refresh_due``), sleeps until the next one is due
or a refresh is asked for (``STATUS_WAKE``), and keeps the freshness gauge. It never runs
inside a request, and nothing it meets (a dead host, a forged CRL, the database away)
stops it: each is logged, recorded on the issuer, and tried again later.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from prometheus_client import Counter, Gauge

from shared.authorities import display_name
from shared.db import POOL
from shared.logging import get_logger
from shared.tasks import BackgroundTask

from . import queries
from .config import CLOCK, CONFIG, Config
from .crl_fetch import FetchLimits, client_session
from .issuer_status import Schedule, refresh_due

log = get_logger(__name__)

#: Set by PATCH /v1/issuers/{id} and POST .../refresh-status: look now, not at the next due time.
STATUS_WAKE = web.AppKey("certs_status_wake", asyncio.Event)

NEXT_UPDATE = Gauge("siui_issuer_crl_next_update_seconds",
                    "nextUpdate (Unix time) of the newest verified CRL of each issuing authority", ["issuer"])
FETCHES = Counter("siui_certs_crl_fetches_total", "Issuer status fetches, by result", ["result"])
REVOKED_BY_ISSUER = Counter("siui_certs_revoked_by_issuer_total",
                            "Registered certificates found revoked in their issuer's CRL")


def limits_of(config: Config) -> FetchLimits:
    return FetchLimits(max_bytes=config.crl_max_bytes, timeout_seconds=config.crl_timeout_seconds,
                       allowed_hosts=config.crl_allowed_hosts, allow_loopback=config.crl_allow_loopback)


def schedule_of(config: Config) -> Schedule:
    # The lease covers a whole round: every source of a batch timing out one after another.
    lease = timedelta(seconds=config.crl_timeout_seconds * 10 * 5 + 60)
    return Schedule(min_interval=timedelta(seconds=config.crl_min_interval_seconds),
                    max_interval=timedelta(seconds=config.crl_max_interval_seconds),
                    retry=timedelta(seconds=config.crl_retry_seconds), lease=lease)


async def status_fetcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the pool's): the fetcher runs while the app does."""
    config = app[CONFIG]
    if not config.crl_fetch:
        yield
        return
    async with client_session(limits_of(config)) as session:
        task = BackgroundTask("certs-crl-fetcher", _target(app, session), stop_timeout=5.0)
        task.start()
        try:
            yield
        finally:
            await task.stop()


def _target(app: web.Application, session):
    config, clock, wake = app[CONFIG], app[CLOCK], app[STATUS_WAKE]
    limits, schedule = limits_of(config), schedule_of(config)

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            wake.clear()
            pause = config.crl_tick_seconds
            try:
                outcomes = await refresh_due(app[POOL], session, limits, schedule, clock)
                for outcome in outcomes:
                    FETCHES.labels("ok" if outcome.ok else "failed").inc()
                    REVOKED_BY_ISSUER.inc(len(outcome.revoked))
                await _update_gauge(app)
                if outcomes:
                    pause = 0  # there may be more due
                else:
                    due = await queries.next_status_due(app[POOL])
                    if due is not None:
                        pause = min(pause, max((due - clock()).total_seconds(), 0.05))
            except Exception as exc:  # the database away, a bug: logged, next round
                log.warning("issuer_status_round_failed", error=repr(exc))
            if pause and await _pause(stopping, wake, pause):
                return

    return run


async def _update_gauge(app: web.Application) -> None:
    rows = await queries.crl_next_updates(app[POOL])
    values = {display_name(r["certificate_der"]): r["crl_next_update"].timestamp() for r in rows}
    # No await between clearing and setting: a scrape (on this loop) sees all or none.
    NEXT_UPDATE.clear()
    for issuer, value in values.items():
        NEXT_UPDATE.labels(issuer).set(value)


async def _pause(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or until woken or stopping; True when stopping."""
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return stopping.is_set()
