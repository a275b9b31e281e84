"""Publishing the usage summary (``usage.UsageTracker``) as ``CertificateUsed`` events
through the outbox, every few seconds and once more at stop."""
from __future__ import annotations

import asyncio

import asyncpg
from prometheus_client import Counter

from services.ocsp.online.usage import UsageTracker
from shared.events import parse_time
from shared.logging import get_logger
from shared.outbox import add_event
from shared.tasks import wait_stopping

log = get_logger(__name__)

USAGE_PUBLISHED = Counter("siui_ocsp_usage_events_total", "CertificateUsed events written to the outbox")
DEFAULT_INTERVAL = 5.0


async def publish(pool: asyncpg.Pool, tracker: UsageTracker) -> int:
    """Write the pending summary to the outbox; returns the number of events."""
    batches = tracker.drain()
    written = 0
    try:
        async with pool.acquire() as conn, conn.transaction():
            for cas, events in batches.items():
                for event in events:
                    await add_event(conn, event, cas)
                    written += 1
    except BaseException:
        for cas, events in batches.items():
            for event in events:
                for usage in event.usages:
                    tracker.restore(usage["certificate_id"], cas,
                                    parse_time(usage["last_used_at"], "last_used_at"))
        raise
    USAGE_PUBLISHED.inc(written)
    return written


def publishing(pool: asyncpg.Pool, tracker: UsageTracker, *, interval: float = DEFAULT_INTERVAL):
    """A ``shared.tasks`` target: publish every ``interval`` seconds, and at stop."""

    async def target(stopping: asyncio.Event) -> None:
        while not await wait_stopping(stopping, interval):
            if not tracker.pending:
                continue
            try:
                await publish(pool, tracker)
            except Exception as exc:  # kept in the tracker; the next interval tries again
                log.warning("ocsp_usage_publish_failed", error=repr(exc))
        if tracker.pending:
            try:
                await publish(pool, tracker)
            except Exception as exc:
                log.error("ocsp_usage_lost_at_stop", certificates=tracker.pending, error=repr(exc))

    return target
