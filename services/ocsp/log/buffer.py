"""The OCSP log: every OCSP answer and every online connect, recorded without waiting.

The hot path calls ``app[OPLOG].record(entry)``: an append to a bounded in-memory
buffer (``OpLog``), nothing more. A background writer (``writer.LogWriter``) COPYs it to
the day-partitioned ``ocsp_log`` table every ~200 ms, or as soon as 1,000 entries wait,
and sends ``pg_notify('ocsp_log', <max id>)`` with each batch so that every process's
live streams (``routes``) read the new rows from the database.

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
from collections import deque

from prometheus_client import Counter, Gauge

from services.ocsp.log.entry import LogEntry

DEFAULT_CAPACITY = 100_000
DEFAULT_BATCH = 1_000
DEFAULT_INTERVAL = 0.2

LOG_DROPPED = Counter("siui_ocsp_log_dropped_total",
                      "OCSP log entries dropped (buffer full, or unwritable at stop)", ["why"])
# One buffer per worker process: the live workers' buffers add up.
LOG_BUFFERED = Gauge("siui_ocsp_log_buffered", "OCSP log entries waiting to be written",
                     multiprocess_mode="livesum")


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

    async def wait_for_batch(self, timeout: float, *, also: asyncio.Future | None = None) -> None:
        """Return when a batch's worth waits, after ``timeout`` seconds, or when ``also``
        (the writer's stop) is done."""
        full = asyncio.ensure_future(self._full.wait())
        try:
            await asyncio.wait([full, also] if also is not None else [full], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            full.cancel()
