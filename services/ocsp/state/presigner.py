"""The presigner: one process in the whole array signs every registered certificate's
answer, once per state and again at half its validity, and stores the bytes for all.

Elected through a PostgreSQL session advisory lock (``queries.try_presigner_lock``) on a
connection of its own: every process runs a ``Presigner``, the one holding the lock
works, the others retry every ``ELECTION_INTERVAL`` and take over within that when the
holder stops or its connection dies (the lock goes with the session). It writes only on
the lock's connection, so no two presigners ever write and rows commit in ``seq`` order.

What it signs comes from this process's own registry (kept by the follower, like every
process's) and what is due from its own store (``presigned.due``): a certificate the
follower reports changed is signed at once, in the batch after the note; a full sweep
(at start, after a reload, at a signer switch, and every ``sweep_interval``) catches
refreshes and anything missed. Each batch is written, in the same transaction, with
AnswersPresigned events in the outbox carrying the signed bytes (at most
``PRESIGNED_MESSAGE_BYTES`` of answers each): every responder process's follower puts
them into its store from its own queue, and needs the table only to start. Through the
outbox, not published straight after the commit: a presigner dying in between would
leave the other responders without answers it committed (the next leader finds them
in the table, not due, and would not sign them again). The batch is also put into this
process's store at once (the same bytes), which wakes its requests waiting for them.

Signing shares the loop with the requests of this worker, so it goes a few answers at a
time (``SIGN_SLICE``) with the loop free in between; an HSM signer signs on its executor.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import timedelta

import asyncpg
from prometheus_client import Counter, Gauge

from services.ocsp.responder.answering import Responder
from services.ocsp.responder.presigned import PresignedAnswer, PresignedStore, canonical_cert_id, due, sign_answer, \
    state_of
from services.ocsp.responder.registry import CertificateRecord, Registry
from services.ocsp.responder.responses import ResponderIdentity
from services.ocsp.state import queries
from services.ocsp.state.apply import presigned_event_answers
from shared.auth import NATIONAL
from shared.clock import Clock, utc_now
from shared.events import AnswersPresigned
from shared.outbox import add_event
from shared.logging import get_logger
from shared.tasks import wait_stopping

log = get_logger(__name__)

ELECTION_INTERVAL = 2.0   # seconds between attempts at the lock by the processes not holding it
WRITE_BATCH = 500         # answers per transaction
#: Signed octets per AnswersPresigned message (base64 adds a third): a batch of RSA-signed
#: answers with their delegated signer's certificate is split into several; a message
#: stays far under RabbitMQ's max_message_size and a follower's prefetch holds little.
PRESIGNED_MESSAGE_BYTES = 96 * 1024
SIGN_SLICE = 8            # answers signed between two turns of the event loop (~0.5 ms of ECDSA P-256)
SWEEP_SLICE = 500         # certificates checked between two turns of the loop in a sweep (~1.5 ms)
HEALTH_INTERVAL = 5.0     # an idle leader checks its connection (and so its lock) this often

PRESIGNED = Counter("siui_ocsp_presigned_total", "Answers signed by the presigner, by why", ["why"])
LEADING = Gauge("siui_ocsp_presigner_leading", "1 in the process that holds the presigner's lock",
                multiprocess_mode="livesum")


class Presigner:
    """See the module docstring. ``responder`` gives the current signer (rotation included);
    ``connect`` opens the election's connection (its own, never the pool's)."""

    def __init__(self, connect: Callable[[], asyncpg.Connection], registry: Registry, store: PresignedStore,
                 responder: Callable[[], Responder | None], algorithms: Iterable[str], validity: timedelta, *,
                 clock: Clock = utc_now, sweep_interval: float | None = None,
                 election_interval: float = ELECTION_INTERVAL):
        self._connect = connect
        self.registry, self.store, self._responder = registry, store, responder
        self.algorithms = tuple(algorithms)
        self.validity = validity
        self.clock = clock
        # Refreshes fall due at half the validity; sweeping at an eighth of it (at most
        # five minutes) signs each within an eighth of its life after it fell due.
        self.sweep_interval = sweep_interval or min(validity.total_seconds() / 8, 300.0)
        self.election_interval = election_interval
        self.leading = False
        self._dirty: set[tuple[str, int]] = set()
        self._dirty_issuers: set[str] = set()
        self._sweep_due = True
        self._wake = asyncio.Event()

    # -- what the follower and the responder tell it ----------------------------------------

    def changed(self, kind: str, what: object) -> None:
        """The follower's callback: a certificate or an issuer changed, or all was reloaded."""
        if not self.leading:
            return  # whoever leads next starts with a full sweep
        if kind == "certificate":
            self._dirty.add(what)  # type: ignore[arg-type]
        elif kind == "issuer":
            self._dirty_issuers.add(what)  # type: ignore[arg-type]
        else:
            self._sweep_due = True
        self._wake.set()

    def signer_switched(self, _identity: ResponderIdentity) -> None:
        """The responder's own signer changed (a rotation): every answer it signed is re-signed."""
        self._sweep_due = True
        self._wake.set()

    # -- the election --------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: win the lock, then lead; a lost connection starts over."""
        while not stopping.is_set():
            conn = await self._connect()
            try:
                while not await queries.try_presigner_lock(conn):
                    if await wait_stopping(stopping, self.election_interval):
                        return
                self.leading = True
                LEADING.inc()
                log.info("ocsp_presigner_elected")
                self._sweep_due = True
                await self._lead(conn, stopping)
            finally:
                if self.leading:
                    self.leading = False
                    LEADING.dec()
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    async def _lead(self, conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        if not self.store.loaded.is_set():
            # The follower still reads the stored answers: a sweep now would find them
            # missing and sign them all again. Changes wait too (the sweep covers them).
            waits = [asyncio.ensure_future(event.wait()) for event in (self.store.loaded, stopping)]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            self._sweep_due = True
        next_sweep = loop.time()
        while not stopping.is_set():
            if self._sweep_due or loop.time() >= next_sweep:
                self._sweep_due = False
                self._dirty.clear()
                self._dirty_issuers.clear()
                next_sweep = loop.time() + self.sweep_interval
                await self._sign(conn, self._sweep(), "sweep")
                continue
            if self._dirty or self._dirty_issuers:
                keys, issuers = self._dirty, self._dirty_issuers
                self._dirty, self._dirty_issuers = set(), set()
                await self._sign(conn, self._changes(keys, issuers), "change")
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(event.wait()) for event in (self._wake, stopping)]
            try:
                await asyncio.wait(waits, timeout=min(HEALTH_INTERVAL, max(0.0, next_sweep - loop.time())),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if not (self._wake.is_set() or stopping.is_set()):
                await asyncio.wait_for(conn.fetchval("select 1"), 5.0)  # raises when the session is gone

    # -- what is due -------------------------------------------------------------------------------

    async def _sweep(self):
        """Every registered certificate's due answers, a slice at a time."""
        records = self.registry.certificates()
        for start in range(0, len(records), SWEEP_SLICE):
            for item in self._due(records[start:start + SWEEP_SLICE]):
                yield item
            await asyncio.sleep(0)

    async def _changes(self, keys: set[tuple[str, int]], issuers: set[str]):
        records = [r for r in (self.registry.certificate(*key) for key in keys) if r is not None]
        if issuers:
            records += [r for r in self.registry.certificates() if r.issuer_id in issuers and
                        (r.issuer_id, r.serial) not in keys]
        for item in self._due(records):
            yield item

    def _due(self, records: Iterable[CertificateRecord]):
        responder = self._responder()
        if responder is None:
            return
        responder.switch_if_due()
        now = self.clock()
        hashes_of: dict[str, dict] = {}
        for record in records:
            issuer = self.registry.issuer(record.issuer_id)
            if issuer is None:
                continue
            signer = issuer.signer or responder.identity
            if not signer.valid_at(now):
                continue  # nothing signed outside the signer's validity: answered unauthorized
            hashes = hashes_of.get(record.issuer_id)
            if hashes is None:
                hashes = hashes_of[record.issuer_id] = self.registry.hashes_of(record.issuer_id)
            state = state_of(record)
            for algorithm in self.algorithms:
                if algorithm not in hashes:
                    continue
                entry = self.store.get(record.issuer_id, record.serial, algorithm)
                # Serials are random (RFC 5280 asks for 64 bits of entropy): their low bits spread
                # the refreshes evenly.
                if due(entry, state, signer.key_hash, now, (record.serial & 1023) / 1024):
                    yield record, algorithm, hashes, signer

    # -- signing and writing -----------------------------------------------------------------------

    async def _sign(self, conn: asyncpg.Connection, items, why: str) -> None:
        batch: list[tuple[tuple[str, int, str], PresignedAnswer]] = []
        signed = 0
        async for record, algorithm, hashes, signer in items:
            cert_id = canonical_cert_id(algorithm, hashes, record.serial)
            if signer.executor is None:
                entry = sign_answer(signer, record, cert_id, self.clock(), self.validity)
            else:  # an HSM blocks: its own thread
                entry = await asyncio.get_running_loop().run_in_executor(
                    signer.executor, sign_answer, signer, record, cert_id, self.clock(), self.validity)
            batch.append(((record.issuer_id, record.serial, algorithm), entry))
            signed += 1
            if signed % SIGN_SLICE == 0:
                await asyncio.sleep(0)
                if why == "sweep" and (self._dirty or self._dirty_issuers):
                    # A change does not wait for a long sweep (a national start, a rotation):
                    # its answer goes out first, requests may be waiting for it.
                    if batch:
                        await self._write(conn, batch, why)
                        batch = []
                    keys, issuers = self._dirty, self._dirty_issuers
                    self._dirty, self._dirty_issuers = set(), set()
                    await self._sign(conn, self._changes(keys, issuers), "change")
            if len(batch) >= WRITE_BATCH:
                await self._write(conn, batch, why)
                batch = []
        if batch:
            await self._write(conn, batch, why)

    async def _write(self, conn: asyncpg.Connection, batch, why: str) -> None:
        # The answer's first five fields are the row's last five (ETag and CertID are derived).
        rows = [(issuer_id, serial, algorithm, *e[:5]) for (issuer_id, serial, algorithm), e in batch]
        async with conn.transaction():
            await queries.upsert_presigned(conn, rows)
            for part in message_parts(batch):
                await add_event(conn, AnswersPresigned(answers=presigned_event_answers(part)), NATIONAL)
        for key, entry in batch:  # this process at once; the others when the event arrives
            self.store.put(*key, entry)
        PRESIGNED.labels(why).inc(len(batch))


def message_parts(batch: list, limit: int = PRESIGNED_MESSAGE_BYTES) -> list[list]:
    """``batch`` cut in order into parts of at most ``limit`` signed octets (one answer alone
    may pass it: never split)."""
    parts, part, size = [], [], 0
    for item in batch:
        length = len(item[1][0])
        if part and size + length > limit:
            parts.append(part)
            part, size = [], 0
        part.append(item)
        size += length
    if part:
        parts.append(part)
    return parts
