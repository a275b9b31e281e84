"""The OCSP log ("Log OCSP") and its live stream.

Everything flows one way: an ``entry`` is recorded into the in-memory ``buffer`` by the
hot path (never waiting), the ``writer`` COPYs batches into day partitions (``queries``)
with a NOTIFY, the ``feed`` wakes the live streams, and ``routes`` serves the log and
the stream to readers whose house the ``filters`` enforce, masked by ``privacy`` for
those who may not see people. ``partitions`` makes days ahead and forgets them as the
``retention`` per house group says.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.ocsp.log.appkeys import LOG_FEED, OPLOG, STREAMS
from services.ocsp.log.buffer import DEFAULT_BATCH, DEFAULT_CAPACITY, DEFAULT_INTERVAL, OpLog
from services.ocsp.log.entry import OPERATIONS, STATUSES, LogEntry
from services.ocsp.log.feed import LogFeed
from services.ocsp.log.openapi import OPENAPI
from services.ocsp.log.queries import NOTIFY_CHANNEL
from services.ocsp.log.routes import add_routes
from services.ocsp.log.partitions import PARTITION_CHECK, PartitionKeeper
from services.ocsp.log.retention import RetentionPolicy
from services.ocsp.log.writer import STOP_TIMEOUT, LogWriter
from shared.db import POOL
from shared.listen import LISTENER
from shared.tasks import BackgroundTask, every

__all__ = ["LOG_FEED", "OPERATIONS", "OPENAPI", "OPLOG", "STATUSES", "STREAMS", "LogEntry", "OpLog",
           "add_routes", "log_ctx"]


def log_ctx(*, capacity: int = DEFAULT_CAPACITY, batch_size: int = DEFAULT_BATCH,
            interval: float = DEFAULT_INTERVAL, retention: RetentionPolicy = RetentionPolicy(90)):
    """cleanup_ctx: ``app[OPLOG]`` with its writer and the day partitions, and the feed the
    live streams wait on. Needs the pool (``add_platform``); the sites that record into
    the log must stop before it, so that its final drain writes their last entries."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        oplog = OpLog(capacity, batch_size)
        app[OPLOG] = oplog
        keeper = PartitionKeeper(app[POOL], policy=retention)
        await keeper.ensure_now()
        feed = LogFeed(app[LISTENER].subscribe(NOTIFY_CHANNEL))
        app[LOG_FEED] = feed
        writer = LogWriter(app[POOL], oplog, interval=interval)
        tasks = [BackgroundTask("ocsp-log-writer", writer.run, stop_timeout=STOP_TIMEOUT + 5),
                 BackgroundTask("ocsp-log-partitions", every(PARTITION_CHECK, keeper.ensure_now,
                                                             name="ocsp-log-partitions", first_delay=PARTITION_CHECK)),
                 BackgroundTask("ocsp-log-feed", feed.run, cancel_on_stop=True)]
        for task in tasks:
            task.start()
        try:
            yield
        finally:
            for task in reversed(tasks):
                await task.stop()  # the writer last: it drains the buffer, nothing is lost

    return ctx
