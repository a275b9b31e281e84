"""Last use of certificates, summarised into ``CertificateUsed`` events.

A successful online connect or heartbeat calls ``UsageTracker.used`` (a dict write, no
I/O). Every few seconds the tracker publishes, per house, ONE ``CertificateUsed``
carrying each certificate used since the last one with its latest use, through the
outbox; certs turns it into ``last_used_at``. OCSP queries do not count: they are made
by whoever validates a certificate, not by its holder using it.

What a crash can lose: at most the uses of the last interval, which only delays a
``last_used_at`` until the certificate is used again.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import datetime

import asyncpg
from aiohttp import web
from prometheus_client import Counter

from shared.events import CertificateUsed
from shared.logging import get_logger
from shared.outbox import add_event

log = get_logger(__name__)

USAGE_PUBLISHED = Counter("siui_ocsp_usage_events_total", "CertificateUsed events written to the outbox")
DEFAULT_INTERVAL = 5.0
MAX_PER_EVENT = 1000  # usages per event: keeps one message small whatever the load


class UsageTracker:
    """Latest use per certificate since the last publication."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[str, datetime]] = {}  # certificate_id -> (cas, at)

    def used(self, certificate_id: str, cas: str, at: datetime) -> None:
        """Note that ``certificate_id`` (of house ``cas``) was used at ``at``."""
        held = self._latest.get(certificate_id)
        if held is None or at > held[1]:
            self._latest[certificate_id] = (cas, at)

    @property
    def pending(self) -> int:
        return len(self._latest)

    def drain(self) -> dict[str, list[CertificateUsed]]:
        """Take everything noted so far, as events grouped by house."""
        taken, self._latest = self._latest, {}
        return summarise(taken)

    def restore(self, certificate_id: str, cas: str, at: datetime) -> None:
        """Put back a use whose event could not be written (a newer one wins)."""
        self.used(certificate_id, cas, at)


def summarise(latest: dict[str, tuple[str, datetime]]) -> dict[str, list[CertificateUsed]]:
    """``{cas: [CertificateUsed, ...]}``: one event per house (split beyond MAX_PER_EVENT)."""
    by_house: dict[str, list[dict[str, str]]] = defaultdict(list)
    for certificate_id, (cas, at) in sorted(latest.items(), key=lambda kv: kv[1][1]):
        by_house[cas].append({"certificate_id": certificate_id, "last_used_at": at.isoformat()})
    return {cas: [CertificateUsed(usages=usages[i:i + MAX_PER_EVENT])
                  for i in range(0, len(usages), MAX_PER_EVENT)]
            for cas, usages in by_house.items()}


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
                                    datetime.fromisoformat(usage["last_used_at"]))
        raise
    USAGE_PUBLISHED.inc(written)
    return written


USAGE = web.AppKey("ocsp_usage", UsageTracker)


class UsagePublisher:
    """Publishes the tracker's summary every ``interval`` seconds, and at stop."""

    def __init__(self, pool: asyncpg.Pool, tracker: UsageTracker, *, interval: float = DEFAULT_INTERVAL):
        self.pool = pool
        self.tracker = tracker
        self.interval = interval
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ocsp-usage")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.tracker.pending:
                continue
            try:
                await publish(self.pool, self.tracker)
            except Exception as exc:  # kept in the tracker; next interval tries again
                log.warning("ocsp_usage_publish_failed", error=repr(exc))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.tracker.pending:
            try:
                await publish(self.pool, self.tracker)
            except Exception as exc:
                log.error("ocsp_usage_lost_at_stop", certificates=self.tracker.pending, error=repr(exc))
