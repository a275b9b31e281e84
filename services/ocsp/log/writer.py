"""Writing the OCSP log: COPY batches into day partitions, and keeping partitions ahead.

``LogWriter`` moves entries from the in-memory ``OpLog`` to PostgreSQL: one transaction
per batch holding the writers' advisory lock (so ids commit in order, see
002_log_and_keys.sql), COPY, then ``pg_notify('ocsp_log', max id)`` delivered at
commit. A failed batch goes back to the front of the buffer and is retried with a
backoff; the buffer's bound decides what is dropped meanwhile, never the answers.
It runs as a ``shared.tasks`` background task (started and stopped by ``log_ctx``);
the day partitions are ``partitions.PartitionKeeper``'s.
"""
from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime

import asyncpg
from prometheus_client import Counter, Histogram

from services.ocsp.log import queries as q
from services.ocsp.log.buffer import LOG_DROPPED, OpLog
from services.ocsp.log.entry import LogEntry
from shared.logging import get_logger
from shared.tasks import wait_stopping

log = get_logger(__name__)

LOG_WRITTEN = Counter("siui_ocsp_log_written_total", "OCSP log entries committed to PostgreSQL")
LOG_INVALID = Counter("siui_ocsp_log_invalid_total", "OCSP log entries that could not be encoded")
LOG_FLUSH_SECONDS = Histogram("siui_ocsp_log_flush_seconds", "Time to write one batch of the OCSP log",
                              buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))

MAX_BATCH = 20_000         # entries per COPY when catching up: larger COPYs cost less each
#: Entries converted, and rows handed to COPY, between two turns of the event loop. A
#: catching-up batch of 20,000 converted and encoded in one go held the loop for ~80 ms
#: (measured with a loop-lag probe under bench.ocsp's 64 connections): the p99 of every
#: answer queued meanwhile. 500 rows are ~2 ms.
PACE = 500
STOP_TIMEOUT = 15.0        # how long a stop keeps trying to write what is left


# How much of each text column is kept: bounds on what a client can make us store per
# row (a claimed username, a detail), well within the btree limit of the indexed ones.
TEXT_LIMITS = {"client": 64, "cas": 16, "username": 128, "serial": 64, "issuer_id": 64,
               "certificate_id": 64, "detail": 256}


def _text(value, limit: int) -> str | None:
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")  # PostgreSQL text has no NUL
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    # A lone surrogate cannot be encoded for PostgreSQL: replace rather than lose the row.
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def to_record(entry: LogEntry) -> tuple | None:
    """The row COPY writes for ``entry`` (``queries.LOG_COLUMNS`` order), every text
    field capped (``TEXT_LIMITS``), or None when a field cannot be stored at all: one odd
    entry must not block the batch around it."""
    try:
        at = entry.at
        if not isinstance(at, datetime):
            return None
        latency = float(entry.latency_ms)
        if not math.isfinite(latency):
            latency = -1.0
        limits = TEXT_LIMITS
        return (at, _text(entry.operation, 16), _text(entry.status, 16), latency,
                _text(entry.client, limits["client"]), _text(entry.cas, limits["cas"]),
                _text(entry.username, limits["username"]), _text(entry.serial, limits["serial"]),
                _text(entry.issuer_id, limits["issuer_id"]), _text(entry.certificate_id, limits["certificate_id"]),
                _text(entry.detail, limits["detail"]))
    except (AttributeError, TypeError, ValueError):
        return None


# Errors of the data itself (retrying cannot help), as opposed to the database being away:
# class 22 (data exception) and 54 (a program limit, such as an index row too large).
_UNSTORABLE = (asyncpg.DataError, asyncpg.ProgramLimitExceededError, ValueError, TypeError)


async def _paced(records: list[tuple]):
    """``records`` for COPY, letting the loop run between every ``PACE`` of them (asyncpg
    encodes a plain list in one go, however long)."""
    for start in range(0, len(records), PACE):
        for record in records[start:start + PACE]:
            yield record
        await asyncio.sleep(0)


async def _commit(pool: asyncpg.Pool, records: list[tuple]) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await q.lock_writer(conn)
        await q.copy_entries(conn, _paced(records) if len(records) > PACE else records)
        top = await q.last_id_in_session(conn)
        await q.notify_written(conn, top)
    return top


async def write_batch(pool: asyncpg.Pool, batch: list[LogEntry]) -> int | None:
    """Commit ``batch`` in one transaction; returns the highest id written (None if the
    batch held nothing storable)."""
    records = []
    for start in range(0, len(batch), PACE):
        if start:
            await asyncio.sleep(0)  # see PACE
        for entry in batch[start:start + PACE]:
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
    """Empties an ``OpLog`` into the database (``run`` is a ``shared.tasks`` target)."""

    def __init__(self, pool: asyncpg.Pool, oplog: OpLog, *, interval: float = 0.2,
                 max_batch: int = MAX_BATCH, drain_timeout: float = STOP_TIMEOUT) -> None:
        self.pool = pool
        self.oplog = oplog
        self.interval = interval
        self.max_batch = max_batch
        self.drain_timeout = drain_timeout
        self.last_id = 0

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

    async def run(self, stopping: asyncio.Event) -> None:
        """Write batches until ``stopping``; then write what is left (a batch in flight is
        never cancelled: that would lose it) for at most ``drain_timeout`` seconds."""
        backoff = 0.2
        stop_waiting = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                await self.oplog.wait_for_batch(self.interval, also=stop_waiting)
                try:
                    # Keep going while a full batch waits; a partial one waits for the next tick.
                    while self.oplog.pending and not stopping.is_set():
                        if await self.flush_once() < self.oplog.batch_size:
                            break
                    backoff = 0.2
                except Exception as exc:  # database away: the entries are back in the buffer
                    log.warning("ocsp_log_write_failed", error=repr(exc), pending=self.oplog.pending)
                    await wait_stopping(stopping, backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            stop_waiting.cancel()
        await self.drain()

    async def drain(self) -> None:
        """Write everything still buffered, giving up (and counting the loss) after
        ``drain_timeout`` seconds of failures."""
        deadline = time.monotonic() + self.drain_timeout
        while self.oplog.pending:
            try:
                await self.flush_once()
            except Exception as exc:
                if time.monotonic() > deadline:
                    lost = self.oplog.pending
                    LOG_DROPPED.labels("unwritable_at_stop").inc(lost)
                    log.error("ocsp_log_lost_at_stop", entries=lost, error=repr(exc))
                    return
                await asyncio.sleep(0.5)
