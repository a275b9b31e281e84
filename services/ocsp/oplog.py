"""The OCSP log: every OCSP answer and every online connect, recorded without waiting.

The hot path calls ``app[OPLOG].record(entry)``: an append to a bounded in-memory
buffer, nothing more. A background writer (``logstore.LogWriter``) COPYs the buffer to
the day-partitioned ``ocsp_log`` table every ~200 ms, or as soon as 1,000 entries wait,
and sends ``pg_notify('ocsp_log', <max id>)`` with each batch so that every process's
live streams (``logroutes``) read the new rows from the database.

What a crash can lose: only what is still in memory, never anything committed. In
normal running that is the entries of the last flush interval (~200 ms of traffic, about
1,000 entries at 5,000/s) plus the one batch in flight. While the database is
unreachable the buffer keeps up to ``capacity`` entries (500,000 by default in the
service, SIUI_OCSP_LOG_BUFFER: some 100 s at 5,000/s) and retries; beyond that new entries are dropped rather than answers
delayed, and counted in ``siui_ocsp_log_dropped_total``. A clean stop (SIGTERM) writes
everything: the writer drains the buffer after the HTTP sites have stopped.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import Counter, Gauge

DEFAULT_CAPACITY = 100_000
DEFAULT_BATCH = 1_000
DEFAULT_INTERVAL = 0.2

LOG_DROPPED = Counter("siui_ocsp_log_dropped_total",
                      "OCSP log entries dropped (buffer full, or unwritable at stop)", ["why"])
# One buffer per worker process: the live workers' buffers add up.
LOG_BUFFERED = Gauge("siui_ocsp_log_buffered", "OCSP log entries waiting to be written",
                     multiprocess_mode="livesum")

OPERATIONS = frozenset({"ocsp", "connect"})
STATUSES = frozenset({"good", "revoked", "unknown", "unauthorized", "malformed", "try_later",
                      "online", "offline"})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the OCSP log.

    operation: 'ocsp' | 'connect'. status: for 'ocsp' the answer given ('good', 'revoked',
    'unknown', 'unauthorized', 'malformed', 'try_later'); for 'connect' 'online' or
    'offline'. ``at`` is timezone-aware (UTC). ``serial`` is the certificate serial in
    decimal. ``client`` is the caller's address. ``detail``: a refusal's reason code,
    or other short context.
    """

    at: datetime
    operation: str
    status: str
    latency_ms: float
    client: str | None
    cas: str | None = None
    username: str | None = None
    serial: str | None = None
    issuer_id: str | None = None
    certificate_id: str | None = None
    detail: str | None = None


class OpLog:
    """A bounded in-memory buffer of entries waiting for the writer.

    Only ever used from the event loop's thread, so a deque needs no lock.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, batch_size: int = DEFAULT_BATCH) -> None:
        if capacity < batch_size or batch_size < 1:
            raise ValueError("capacity must be at least batch_size, and batch_size at least 1")
        self.capacity = capacity
        self.batch_size = batch_size
        self.dropped = 0
        self._buffer: deque[LogEntry] = deque()
        self._full = asyncio.Event()  # set once a batch's worth waits: the writer need not wait

    def record(self, entry: LogEntry) -> None:
        """Queue ``entry`` for writing. Never blocks, never raises: when the buffer is
        full the entry is dropped and counted, because an answer must not wait on the log."""
        try:
            buffer = self._buffer
            if len(buffer) >= self.capacity:
                self.dropped += 1
                LOG_DROPPED.labels("buffer_full").inc()
                return
            buffer.append(entry)
            if len(buffer) >= self.batch_size:
                self._full.set()
        except Exception:  # noqa: BLE001 - by contract, nothing escapes to the hot path
            pass

    @property
    def pending(self) -> int:
        """How many entries wait to be written."""
        return len(self._buffer)

    def take(self, limit: int) -> list[LogEntry]:
        """Remove and return up to ``limit`` of the oldest entries."""
        buffer = self._buffer
        taken = [buffer.popleft() for _ in range(min(limit, len(buffer)))]
        if len(buffer) < self.batch_size:
            self._full.clear()
        LOG_BUFFERED.set(len(buffer))
        return taken

    def put_back(self, batch: list[LogEntry]) -> None:
        """Return a batch that could not be written to the front, keeping the order; what
        no longer fits (newest first) is dropped and counted."""
        room = self.capacity - len(self._buffer)
        if room < len(batch):
            lost = len(batch) - max(room, 0)
            self.dropped += lost
            LOG_DROPPED.labels("buffer_full").inc(lost)
            batch = batch[:max(room, 0)]
        self._buffer.extendleft(reversed(batch))
        LOG_BUFFERED.set(len(self._buffer))

    async def wait_for_batch(self, timeout: float) -> None:
        """Return when a batch's worth waits, or after ``timeout`` seconds."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._full.wait(), timeout)

    def wake(self) -> None:
        """Make a pending ``wait_for_batch`` return now (used when stopping)."""
        self._full.set()


OPLOG = web.AppKey("ocsp_oplog", OpLog)


def oplog_ctx(config, *, capacity: int = DEFAULT_CAPACITY, batch_size: int = DEFAULT_BATCH,
              interval: float = DEFAULT_INTERVAL):
    """cleanup_ctx: ``app[OPLOG]``, its writer and the day partitions, and the feed the
    live streams wait on. Append it after ``add_platform`` (it needs the pool), and
    before ``online_ctx`` so that the online site stops before the final flush."""
    # Imported here: logstore and logroutes import this module.
    from services.ocsp.logstore import LOG_FEED, LogFeed, LogWriter, PartitionKeeper
    from shared.db import POOL

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        oplog = OpLog(capacity, batch_size)
        app[OPLOG] = oplog
        keeper = PartitionKeeper(app[POOL])
        await keeper.ensure_now()
        writer = LogWriter(app[POOL], oplog, interval=interval)
        feed = LogFeed(app[POOL])
        app[LOG_FEED] = feed
        await writer.start()
        await keeper.start()
        try:
            yield
        finally:
            await feed.close()
            await keeper.stop()
            await writer.stop()  # drains the buffer: nothing is lost on a clean stop

    return ctx


def add_log_routes(app: web.Application) -> None:
    """Add ``GET /v1/log`` and ``GET /v1/log/stream`` (and their OpenAPI paths) to ``app``."""
    from services.ocsp.logroutes import add_routes

    add_routes(app)
