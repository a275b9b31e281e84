"""Keeping each process's in-memory registry current from the broker, not the database.

Every ocsp process declares its own queue (``shared.broker.PROCESS_QUEUES``' ``follow``:
exclusive, gone with its connection) bound to certs' issuer and certificate events and
to ocsp's own SignerChanged and AnswersPresigned, and applies each event straight to its
``Registry`` (``apply``: events carry the full state, the newest wins, so a repeat or an
older event changes nothing). Nothing here needs PostgreSQL's NOTIFY, which a standby
does not replay: a responder may follow a standby, or run at another site.

The database is read only to start and after a lost broker connection:

* start: the queue is declared and bound FIRST, then the registry and the pre-signed
  answers are loaded from the read pool (the standby when configured, else the
  primary), then the events queued meanwhile are applied. An event committed during the
  load is in the queue; one the load already holds is ignored as not newer;
* the broker connection lost and back: the queue is declared anew, and what was
  published in between reached no queue of ours. Those events reach the tables through
  ``ocsp.certs`` (some instance's consumer), so the registry is read again, at once and
  once more ``SETTLE_SECONDS`` later (the first read may come before that consumer, or
  the standby, has caught up). Until the database answers, reads are retried and the
  events keep being applied: memory is never emptied, only completed;
* the database lost alone costs nothing: nothing is read from it meanwhile.

A signer's key never travels on the broker, not even encrypted: SignerChanged names the
certificate, and the row is read (again, while a lagging standby has the previous one).
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Histogram

from services.ocsp.responder.presigned import PresignedStore
from services.ocsp.responder.registry import Registry
from services.ocsp.state import queries
from services.ocsp.state.apply import (apply_certificate, apply_issuer, apply_issuer_event, certificate_der,
                                       certificate_state, forget_certificate, issuer_key, load_certificates,
                                       presigned_entries,
                                       presigned_rows, put_newer)
from shared.broker import FOLLOW_WORD, Broker, declare_process_queue
from shared.clock import Clock, utc_now
from shared.events import (AnswersPresigned, CertificateState, Envelope, EventDecodeError, IssuerRegistered,
                           IssuerUpdated, SignerChanged, parse_time)
from shared.inbox import forgery, refuse_forged
from shared.logging import get_logger
from shared.tasks import wait_stopping

log = get_logger(__name__)

#: Certificate rows fetched at a time from the load's cursor (a few MB of rows in memory).
CERTIFICATE_PAGE = 10_000
#: Rows read per query when loading the pre-signed answers, and rows turned into answers
#: between two turns of the event loop (~2 ms): a worker loading them keeps answering.
PRESIGNED_PAGE = 5_000
PRESIGNED_SLICE = 500
#: Events a process holds unacknowledged: the broker keeps the rest (a long load).
PREFETCH = 256
#: After a broker reconnect, the second read of the tables: longer than the durable
#: consumer's retry of one event and than the standby lag the read pool accepts.
SETTLE_SECONDS = 12.0
RETRY_SECONDS = 1.0       # between reads while the database is away
IDLE_SECONDS = 5.0        # the loop's longest wait (nothing depends on it)
SIGNER_READ_SECONDS = 10.0  # how long a lagging standby may show the previous signer

#: What changed, for ``StateFollower.changed``: ("certificate", (issuer_id, serial)),
#: ("issuer", issuer_id) or ("reload", None).
Change = Callable[[str, object], None]
#: A connection of the read pool: ``shared.db.reading(app)``.
Reading = Callable[[], contextlib.AbstractAsyncContextManager[asyncpg.Connection]]

PROPAGATION = Histogram(
    "siui_ocsp_state_propagation_seconds",
    "From a change (certs' changed_at, or the event's occurred_at) to applied in this process's registry",
    ["action"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))

_ACTIONS = {"certs.certificate_registered": "registered", "certs.certificate_suspended": "suspended",
            "certs.certificate_reinstated": "reinstated", "certs.certificate_revoked": "revoked",
            "certs.certificate_revoked_by_issuer": "revoked_by_issuer", "certs.issuer_registered": "issuer",
            "certs.issuer_updated": "issuer", "ocsp.signer_changed": "signer",
            "ocsp.answers_presigned": "presigned"}


async def reload(read: Reading, registry: Registry, data_key: bytes,
                 issuer_times: dict[str, datetime] | None = None) -> None:
    """Bring ``registry`` up to the tables (the read pool's): add what is missing, take
    what is newer; what the tables lack is dropped only when it is not newer than
    anything they hold (a lagging standby may not have an event applied from the broker
    yet). Never an older state over a newer one: events may have run ahead of the tables."""
    began = time.perf_counter()
    async with read() as conn:
        issuers = await queries.all_issuers(conn)
        signers = {str(row["issuer_id"]): row for row in await queries.all_signers(conn)}
        _apply_issuers(registry, issuers, signers, data_key, issuer_times)
        # The first load (nothing held: no house record to forget) keeps no set of keys.
        fresh = registry.empty()
        keys, newest, count = set(), None, 0
        async for rows in queries.certificate_pages(conn, CERTIFICATE_PAGE):
            if fresh:
                count += load_certificates(registry, rows)
            else:
                for row in rows:
                    keys.add((str(row["issuer_id"]), int(row["serial"]), row["username"]))
                    apply_certificate(registry, row)
                changed = max(row["changed_at"] for row in rows)
                newest = changed if newest is None else max(newest, changed)
            await asyncio.sleep(0)
    if not fresh:
        count = len(keys)
        for record in registry.certificates():
            for house in registry.house_records(record.issuer_id, record.serial):
                if (house.issuer_id, house.serial, house.username) not in keys and \
                        (newest is None or house.changed_at is None or house.changed_at <= newest):
                    forget_certificate(registry, house.issuer_id, house.serial, house.username)
    log.info("ocsp_registry_loaded", issuers=len(issuers), certificates=count,
             seconds=round(time.perf_counter() - began, 2))


def _apply_issuers(registry: Registry, issuers, signers, data_key: bytes, issuer_times: dict | None) -> None:
    issuer_times = {} if issuer_times is None else issuer_times
    issuer_ids = {str(row["id"]) for row in issuers}
    for row in issuers:
        issuer_id = str(row["id"])
        known = issuer_times.get(issuer_id)
        if known is not None and row["event_at"] < known and registry.issuer(issuer_id) is not None:
            continue  # the broker told of a newer one
        issuer_times[issuer_id] = row["event_at"]
        apply_issuer(registry, issuer_id, row["certificate_der"], signers.get(issuer_id), data_key)
    horizon = max((row["event_at"] for row in issuers), default=None)
    for issuer in registry.issuers():
        known = issuer_times.get(issuer.issuer_id)
        if issuer.issuer_id not in issuer_ids and (horizon is None or known is None or known <= horizon):
            registry.remove_issuer(issuer.issuer_id)


async def _presigned_slices(read: Reading, registry: Registry):
    """The table's pre-signed answers as entries, a slice at a time with the event loop
    turning between slices, each with its row count and the last ``seq`` read so far."""
    after = 0
    async with read() as conn:
        while True:
            rows = await queries.presigned_after(conn, after, PRESIGNED_PAGE)
            if rows:
                after = rows[-1]["seq"]
            for start in range(0, len(rows), PRESIGNED_SLICE):
                if start:
                    await asyncio.sleep(0)
                part = rows[start:start + PRESIGNED_SLICE]
                yield presigned_entries(registry, part), len(part), after
            if len(rows) < PRESIGNED_PAGE:
                break
            await asyncio.sleep(0)


async def load_presigned(read: Reading, registry: Registry, store: PresignedStore) -> int:
    """Make ``store`` equal to the table (the read pool's); how many answers were read."""
    after, read_count, loaded = 0, 0, []
    async for entries, count, after in _presigned_slices(read, registry):
        loaded.extend(entries)
        read_count += count
    # Answers published during the load are queued: applied after it, the newer winning.
    store.replace_all(loaded, after)
    return read_count


async def load_presigned_serving(read: Reading, registry: Registry, store: PresignedStore) -> int:
    """The first load of the pre-signed answers, while the process serves and follows
    events: each page is servable as soon as it is read, an answer held already (an
    AnswersPresigned applied meanwhile) replaced only by a newer one (``put_newer``).
    Until it ends, a request whose answer is not there yet is signed live, as before
    pre-signing; the presigner waits for it (``store.loaded``) before its first sweep,
    or it would find every answer missing. How many answers were read."""
    after, read_count = 0, 0
    async for entries, count, after in _presigned_slices(read, registry):
        put_newer(store, entries)
        read_count += count
    store.seq = max(store.seq, after)
    return read_count


class StateFollower:
    """See the module docstring. ``start`` declares the queue; ``run`` (a
    ``shared.tasks`` target) loads, then applies; ``loaded`` is set after the first load
    (nothing may be served before: an empty registry answers ``unauthorized``)."""

    def __init__(self, broker: Broker, read: Reading, registry: Registry, data_key: bytes,
                 presigned: PresignedStore | None = None, *, settle_seconds: float = SETTLE_SECONDS,
                 clock: Clock = utc_now):
        self.broker = broker
        self.read = read
        self.registry = registry
        self.data_key = data_key
        self.presigned = presigned
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.loaded = asyncio.Event()
        #: Called after each change has been applied (the presigner's trigger).
        self.changed: list[Change] = []
        self.queue_name: str | None = None
        self.reloads = 0          # completed reads of the tables
        self.applied = 0          # events taken from the queue
        self._events: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._reloads_due: list[float] = [0.0]   # loop times; the first: now
        self._wake = asyncio.Event()
        self._issuer_times: dict[str, datetime] = {}
        self._channel = None
        self._presigned_task: asyncio.Task | None = None
        self._stop_following: Callable[[], None] | None = None

    async def start(self) -> None:
        """Declare, bind and consume this process's queue: before anything is read."""
        self._channel, queue = await declare_process_queue(self.broker, "ocsp", FOLLOW_WORD, self._received,
                                                           prefetch=PREFETCH)
        self.queue_name = queue.name
        self._stop_following = self.broker.on_reconnect(self._reconnected)

    async def close(self) -> None:
        if self._presigned_task is not None and not self._presigned_task.done():
            self._presigned_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._presigned_task
        if self._stop_following is not None:
            self._stop_following()
        if self._channel is not None:
            with contextlib.suppress(Exception):  # the broker may be gone: the queue goes with us
                await asyncio.wait_for(self._channel.close(), 2.0)

    async def _received(self, message: AbstractIncomingMessage) -> None:
        self._events.put_nowait(message)
        self._wake.set()

    def _reconnected(self) -> None:
        # The queue is declared again, empty: what was published meanwhile is only in the
        # tables (some time later: see SETTLE_SECONDS).
        log.info("ocsp_state_broker_back", detail="reading the tables again for the events missed")
        now = asyncio.get_running_loop().time()
        self._reloads_due = [now, now + self.settle_seconds]
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            if self._reloads_due and self._reloads_due[0] <= loop.time():
                try:
                    await self.reload()
                    self._reloads_due.pop(0)
                except Exception as exc:  # noqa: BLE001 - the database away: events still applied
                    log.warning("ocsp_state_reload_failed", error=repr(exc)[:300], retry_in=RETRY_SECONDS)
                    self._reloads_due[0] = loop.time() + RETRY_SECONDS
            if not self.loaded.is_set():
                if await wait_stopping(stopping, RETRY_SECONDS):
                    return
                continue
            if self._events.empty():
                timeout = IDLE_SECONDS
                if self._reloads_due:
                    timeout = max(0.0, min(timeout, self._reloads_due[0] - loop.time()))
                self._wake.clear()
                waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, stopping)]
                try:
                    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()
                continue
            await self._take(self._events.get_nowait())

    async def reload(self) -> int:
        await reload(self.read, self.registry, self.data_key, self._issuer_times)
        if self.presigned is not None and not self.loaded.is_set() and self._presigned_task is None:
            # The start: served as soon as the registry is loaded; the pre-signed answers
            # follow in the background (issue 14: a national store takes a minute to read).
            self.presigned.loaded.clear()
            self._presigned_task = asyncio.get_running_loop().create_task(self._load_presigned_serving())
        elif self.presigned is not None:
            if self._presigned_task is not None and not self._presigned_task.done():
                self._presigned_task.cancel()  # the read below makes the store the table's
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._presigned_task
            began = time.perf_counter()
            count = await load_presigned(self.read, self.registry, self.presigned)
            log.info("ocsp_presigned_loaded", answers=count, bytes=self.presigned.size_bytes,
                     seconds=round(time.perf_counter() - began, 2))
            self.presigned.loaded.set()
        self.reloads += 1
        if self.loaded.is_set():
            log.info("follower_resynced", follower=type(self).__name__, loaded=len(self.registry))
        self.loaded.set()
        self._tell("reload", None)
        return len(self.registry)

    async def _load_presigned_serving(self) -> None:
        began = time.perf_counter()
        try:
            count = await load_presigned_serving(self.read, self.registry, self.presigned)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database away: read it all again, as a reload
            log.warning("ocsp_presigned_load_failed", error=repr(exc)[:300])
            self._reloads_due.insert(0, 0.0)
            self._wake.set()
            return
        log.info("ocsp_presigned_loaded", answers=count, bytes=self.presigned.size_bytes,
                 seconds=round(time.perf_counter() - began, 2), while_serving=True)
        self.presigned.loaded.set()

    async def _take(self, message: AbstractIncomingMessage) -> None:
        """Check who sent ``message``, apply it, acknowledge it; a message that cannot be
        applied is logged and dropped (retrying cannot change it)."""
        label = f"{self.broker.exchange_name}.ocsp.{FOLLOW_WORD}"
        envelope = None
        reason = forgery(message, self.broker.user_prefix)
        if reason is None:
            try:
                envelope = Envelope.from_json(message.body)
            except EventDecodeError as exc:
                log.error("ocsp_state_event_undecodable", error=str(exc)[:300])
            reason = forgery(message, self.broker.user_prefix, envelope)
        if reason is not None:
            with contextlib.suppress(Exception):
                await refuse_forged(message, label, reason)
            return
        self.applied += 1
        if envelope is not None:
            try:
                origin = await self.apply(envelope)
            except EventDecodeError as exc:
                log.error("ocsp_state_event_unusable", type=envelope.type, id=envelope.id, error=str(exc)[:300])
            except Exception:  # noqa: BLE001 - memory must not be left wrong: read the tables
                log.exception("ocsp_state_event_failed", type=envelope.type, id=envelope.id)
                self._reloads_due.insert(0, 0.0)
            else:
                if origin is not None:
                    PROPAGATION.labels(_ACTIONS.get(envelope.routing_key, "other")).observe(
                        max(0.0, (self.clock() - origin).total_seconds()))
        with contextlib.suppress(Exception):  # a channel gone with its connection: redelivery is moot
            await message.ack()

    async def apply(self, envelope: Envelope) -> datetime | None:
        """Apply one event; the time its change was made (for the propagation histogram)."""
        payload = envelope.payload()
        occurred_at = parse_time(envelope.occurred_at, "occurred_at")
        if isinstance(payload, CertificateState):
            issuer_id = issuer_key(payload.issuer_id)
            if not str(payload.serial).isdigit() or len(str(payload.serial)) > 50:
                raise EventDecodeError("serial: a decimal number (at most 20 octets)")
            serial = int(payload.serial)
            state = certificate_state(envelope, self.registry.house_record(issuer_id, serial, payload.username))
            if state is not None and apply_certificate(self.registry, state):
                self._tell("certificate", (issuer_id, serial))
            return parse_time(payload.changed_at, "changed_at")
        if isinstance(payload, (IssuerRegistered, IssuerUpdated)):
            issuer_id = issuer_key(payload.issuer_id)
            known = self._issuer_times.get(issuer_id)
            if known is None or known <= occurred_at:
                self._issuer_times[issuer_id] = occurred_at
                der = certificate_der(payload.certificate_pem)
                if der is None:
                    raise EventDecodeError("an issuer event without its certificate")
                if apply_issuer_event(self.registry, issuer_id, der):
                    self._tell("issuer", issuer_id)
            return occurred_at
        if isinstance(payload, SignerChanged):
            await self._signer_changed(payload)
            return occurred_at
        if isinstance(payload, AnswersPresigned):
            if self.presigned is not None:
                put_newer(self.presigned, presigned_entries(self.registry, presigned_rows(payload.answers)))
            return occurred_at
        log.warning("ocsp_state_event_unknown", type=envelope.type)
        return None

    async def _signer_changed(self, event: SignerChanged) -> None:
        """Read the issuer's signer row until it is the one announced (a standby may lag),
        at most ``SIGNER_READ_SECONDS``; then take what the table holds."""
        issuer_id = uuid.UUID(event.issuer_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SIGNER_READ_SECONDS
        while True:
            async with self.read() as conn:
                row = await queries.get_issuer(conn, issuer_id)
                signer = await queries.get_signer(conn, issuer_id)
            read = hashlib.sha256(signer["certificate_der"]).hexdigest() if signer is not None else None
            if read == event.certificate_sha256 or loop.time() >= deadline:
                break
            await asyncio.sleep(0.2)
        if read != event.certificate_sha256:
            log.warning("ocsp_signer_not_as_announced", issuer_id=str(issuer_id),
                        detail="the table holds another signer: a later change, or a standby far behind")
        if row is None:
            return  # an issuer this process does not know yet: its signer comes with the load
        apply_issuer(self.registry, str(issuer_id), row["certificate_der"], signer, self.data_key)
        self._tell("issuer", str(issuer_id))

    def _tell(self, kind: str, what: object) -> None:
        for callback in self.changed:
            callback(kind, what)
