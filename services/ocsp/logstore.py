"""Writing the OCSP log: COPY batches into day partitions, and keeping partitions ahead.

``LogWriter`` moves entries from the in-memory ``OpLog`` to PostgreSQL: one transaction
per batch holding the writers' advisory lock (so ids commit in order, see
002_log_and_keys.sql), COPY, then ``pg_notify('ocsp_log', max id)`` delivered at
commit. A failed batch goes back to the front of the buffer and is retried with a
backoff; the buffer's bound decides what is dropped meanwhile, never the answers.
``PartitionKeeper`` creates today's and tomorrow's partitions at start and every hour.
``LogFeed`` is the read side: one LISTEN per process that wakes the live streams.
"""
from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web
from prometheus_client import Counter, Histogram

from services.ocsp import oplog_queries as q
from shared.clock import Clock, utc_now
from shared.logging import get_logger

if TYPE_CHECKING:  # oplog imports this module when its context starts
    from services.ocsp.oplog import LogEntry, OpLog

log = get_logger(__name__)

LOG_WRITTEN = Counter("siui_ocsp_log_written_total", "OCSP log entries committed to PostgreSQL")
LOG_INVALID = Counter("siui_ocsp_log_invalid_total", "OCSP log entries that could not be encoded")
LOG_FLUSH_SECONDS = Histogram("siui_ocsp_log_flush_seconds", "Time to write one batch of the OCSP log",
                              buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))

MAX_BATCH = 20_000         # entries per COPY when catching up: larger COPYs cost less each
STOP_TIMEOUT = 15.0        # how long a stop keeps trying to write what is left
PARTITION_CHECK = 3600.0   # seconds between partition checks


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text.replace("\x00", "") if "\x00" in text else text  # PostgreSQL text has no NUL


def to_record(entry: "LogEntry") -> tuple | None:
    """The row COPY writes for ``entry`` (``oplog_queries.LOG_COLUMNS`` order), or None
    when a field cannot be stored: one odd entry must not block the batch around it."""
    try:
        at = entry.at
        if not isinstance(at, datetime):
            return None
        latency = float(entry.latency_ms)
        if not math.isfinite(latency):
            latency = -1.0
        return (at, str(entry.operation), str(entry.status), latency, _text(entry.client),
                _text(entry.cas), _text(entry.username), _text(entry.serial), _text(entry.issuer_id),
                _text(entry.certificate_id), _text(entry.detail))
    except (AttributeError, TypeError, ValueError):
        return None


# Errors of the data itself (retrying cannot help), as opposed to the database being away.
_UNSTORABLE = (asyncpg.DataError, ValueError, TypeError)  # ValueError covers UnicodeEncodeError


async def _commit(pool: asyncpg.Pool, records: list[tuple]) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await q.lock_writer(conn)
        await q.copy_entries(conn, records)
        top = await q.last_id_in_session(conn)
        await q.notify_written(conn, top)
    return top


async def write_batch(pool: asyncpg.Pool, batch: list["LogEntry"]) -> int | None:
    """Commit ``batch`` in one transaction; returns the highest id written (None if the
    batch held nothing storable)."""
    records = []
    for entry in batch:
        record = to_record(entry)
        if record is None:
            LOG_INVALID.inc()
        else:
            records.append(record)
    if not records:
        return None
    try:
        top = await _commit(pool, records)
        LOG_WRITTEN.inc(len(records))
        return top
    except _UNSTORABLE:
        pass
    # One value that cannot be encoded or stored fails the whole COPY; rather than retry
    # that forever, write the batch row by row and count the rows refused.
    top = None
    for record in records:
        try:
            top = await _commit(pool, [record])
            LOG_WRITTEN.inc()
        except _UNSTORABLE:
            LOG_INVALID.inc()
    return top


class LogWriter:
    """The background task that empties an ``OpLog`` into the database."""

    def __init__(self, pool: asyncpg.Pool, oplog: "OpLog", *, interval: float = 0.2,
                 max_batch: int = MAX_BATCH) -> None:
        self.pool = pool
        self.oplog = oplog
        self.interval = interval
        self.max_batch = max_batch
        self.last_id = 0
        self._stopping = False
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start writing in the background."""
        self._task = asyncio.create_task(self._run(), name="ocsp-log-writer")

    async def flush_once(self) -> int:
        """Write one batch (up to ``max_batch``); returns how many entries it took.
        On failure the batch goes back into the buffer and the error propagates."""
        batch = self.oplog.take(self.max_batch)
        if not batch:
            return 0
        started = time.perf_counter()
        try:
            top = await write_batch(self.pool, batch)
        except BaseException:
            self.oplog.put_back(batch)
            raise
        LOG_FLUSH_SECONDS.observe(time.perf_counter() - started)
        if top is not None:
            self.last_id = top
        return len(batch)

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            await self.oplog.wait_for_batch(self.interval)
            try:
                # Keep going while a full batch waits; a partial one waits for the next tick.
                while self.oplog.pending and not self._stopping:
                    if await self.flush_once() < self.oplog.batch_size:
                        break
                backoff = 0.2
            except Exception as exc:  # database away: the entries are back in the buffer
                log.warning("ocsp_log_write_failed", error=repr(exc), pending=self.oplog.pending)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Finish the batch in flight, then write everything still buffered."""
        self._stopping = True
        self.oplog.wake()
        if self._task is not None:
            await self._task  # never cancelled mid-COPY: that would lose the batch in flight
        deadline = time.monotonic() + timeout
        while self.oplog.pending:
            try:
                await self.flush_once()
            except Exception as exc:
                if time.monotonic() > deadline:
                    from services.ocsp.oplog import LOG_DROPPED

                    lost = self.oplog.pending
                    LOG_DROPPED.labels("unwritable_at_stop").inc(lost)
                    log.error("ocsp_log_lost_at_stop", entries=lost, error=repr(exc))
                    return
                await asyncio.sleep(0.5)


class PartitionKeeper:
    """Creates the partitions of today and tomorrow (UTC), at start and then hourly, so a
    batch written just after midnight finds its day's partition ready."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Clock = utc_now,
                 every: float = PARTITION_CHECK) -> None:
        self.pool = pool
        self.clock = clock
        self.every = every
        self._task: asyncio.Task | None = None

    async def ensure_now(self) -> list[str]:
        """Create what is missing now; returns the days created (ISO dates)."""
        today = self.clock().date()
        created = []
        async with self.pool.acquire() as conn:
            for day in (today, today + timedelta(days=1)):
                async with conn.transaction():
                    if await q.ensure_day_partition(conn, day):
                        created.append(day.isoformat())
        if created:
            log.info("ocsp_log_partitions_created", days=created)
        return created

    async def start(self) -> None:
        """Check again every ``every`` seconds in the background."""
        self._task = asyncio.create_task(self._run(), name="ocsp-log-partitions")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.ensure_now()
            except Exception as exc:  # the default partition takes rows meanwhile
                log.warning("ocsp_log_partition_check_failed", error=repr(exc))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LogFeed:
    """Wakes this process's streams when any process has written log entries."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._changed = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    def changed(self) -> asyncio.Event:
        """The event the next notification sets; take it before reading, so a
        notification that arrives during the read is not missed."""
        return self._changed

    def _on_notify(self, *_args) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _listen(self) -> None:
        # Only processes that serve a stream hold a LISTEN connection.
        if self._conn is not None and not self._conn.is_closed():
            return
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            if self._conn is not None:  # the old one died: hand it back, take another
                with contextlib.suppress(Exception):
                    await self.pool.release(self._conn)
            conn = await self.pool.acquire()
            await conn.add_listener(q.NOTIFY_CHANNEL, self._on_notify)
            self._conn = conn

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until ``event`` is set or ``timeout`` passes."""
        try:
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("ocsp_log_listen_failed", error=repr(exc))  # polling still works
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.remove_listener(q.NOTIFY_CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self.pool.release(self._conn)
            self._conn = None


LOG_FEED = web.AppKey("ocsp_log_feed", LogFeed)
