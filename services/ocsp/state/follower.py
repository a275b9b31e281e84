"""Keeping each process's in-memory registry equal to the ocsp tables.

Whoever changes the tables (the consumers, the signer routes) sends a note on
``queries.NOTIFY_CHANNEL`` in the same transaction, so the note goes out if and only if
the change committed. Every process follows the channel through the shared LISTEN
connection (``shared.listen``) and applies each note to its own ``Registry``
(``apply``); at start, and again after that connection was lost, it reloads everything
(``RESYNC``), so a missed note can never leave it wrong for longer than a reconnect.

The pre-signed answers follow the same way: the presigner's note carries only the
highest ``seq`` it wrote, and each process reads the rows after the last it holds.
Whoever wants to know what changed (the presigner) registers on ``changed``.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from services.ocsp.responder.presigned import PresignedStore
from services.ocsp.responder.registry import Registry
from services.ocsp.state import queries
from services.ocsp.state.apply import apply_certificate, apply_issuer, forget_certificate, presigned_entries
from shared.listen import Follower, Subscription
from shared.logging import get_logger

log = get_logger(__name__)


#: Rows read per query when following (or loading) the pre-signed answers, and rows
#: turned into answers between two turns of the event loop (~2 ms): a worker that fell
#: behind catches up without holding the answers it serves meanwhile.
PRESIGNED_PAGE = 5_000
PRESIGNED_SLICE = 500

#: What changed, for ``StateFollower.changed``: ("certificate", (issuer_id, serial)),
#: ("issuer", issuer_id) or ("reload", None).
Change = Callable[[str, object], None]


async def reload(pool: asyncpg.Pool, registry: Registry, data_key: bytes) -> None:
    """Make ``registry`` equal to the tables: add and change what differs, drop what is gone."""
    async with pool.acquire() as conn:
        issuers = await queries.all_issuers(conn)
        signers = {str(row["issuer_id"]): row for row in await queries.all_signers(conn)}
        certificates = await queries.all_certificates(conn)
    issuer_ids = {str(row["id"]) for row in issuers}
    for row in issuers:
        apply_issuer(registry, str(row["id"]), row["certificate_der"], signers.get(str(row["id"])), data_key)
    for issuer in registry.issuers():
        if issuer.issuer_id not in issuer_ids:
            registry.remove_issuer(issuer.issuer_id)
    keys = set()
    for row in certificates:
        keys.add((str(row["issuer_id"]), int(row["serial"]), row["username"]))
        apply_certificate(registry, row, only_if_newer=False)
    for record in registry.certificates():
        for house in registry.house_records(record.issuer_id, record.serial):
            if (house.issuer_id, house.serial, house.username) not in keys:
                forget_certificate(registry, house.issuer_id, house.serial, house.username)
    log.info("ocsp_registry_loaded", issuers=len(issuer_ids), certificates=len(keys))


async def follow_presigned(pool: asyncpg.Pool, registry: Registry, store: PresignedStore, *,
                           everything: bool = False) -> int:
    """Put the answers written after ``store.seq`` into ``store`` (``everything``: make the
    store equal to the table); how many were read."""
    after, read, loaded = (0 if everything else store.seq), 0, []
    async with pool.acquire() as conn:
        while True:
            rows = await queries.presigned_after(conn, after, PRESIGNED_PAGE)
            for start in range(0, len(rows), PRESIGNED_SLICE):
                if start:
                    await asyncio.sleep(0)
                entries = presigned_entries(registry, rows[start:start + PRESIGNED_SLICE])
                if everything:
                    loaded.extend(entries)
                else:
                    for key, entry in entries:
                        store.put(*key, entry)
            read += len(rows)
            if rows:
                after = rows[-1]["seq"]
                if not everything:
                    store.seq = max(store.seq, after)
            if len(rows) < PRESIGNED_PAGE:
                break
    if everything:
        store.replace_all(loaded, after)
    return read


async def apply_note(pool: asyncpg.Pool, registry: Registry, data_key: bytes, note: dict[str, Any],
                     store: PresignedStore | None = None) -> tuple[str, object] | None:
    """Apply one NOTIFY payload to ``registry`` (and ``store``); what changed, if anything."""
    kind = note.get("kind")
    if kind == "certificate":
        if apply_certificate(registry, note):
            return "certificate", (str(note["issuer_id"]), int(note["serial"]))
        return None
    if kind == "presigned":
        if store is not None and int(note["seq"]) > store.seq:
            await follow_presigned(pool, registry, store)
        return None
    if kind not in ("issuer", "signer"):
        log.warning("ocsp_note_unknown", kind=kind)
        return None
    issuer_id = uuid.UUID(note["issuer_id"])
    async with pool.acquire() as conn:
        row = await queries.get_issuer(conn, issuer_id)
        signer = await queries.get_signer(conn, issuer_id)
    if row is None:
        registry.remove_issuer(str(issuer_id))
    else:
        apply_issuer(registry, str(issuer_id), row["certificate_der"], signer, data_key)
    return "issuer", str(issuer_id)


class StateFollower(Follower):
    """Applies the notes of one subscription to the registry in order; reloads it on
    every ``RESYNC``. Nothing may be served before ``loaded``: an empty registry would
    answer ``unauthorized`` for every issuer."""

    def __init__(self, pool: asyncpg.Pool, registry: Registry, data_key: bytes, notes: Subscription,
                 presigned: PresignedStore | None = None):
        super().__init__(notes)
        self.pool = pool
        self.registry = registry
        self.data_key = data_key
        self.presigned = presigned
        #: Called after each change has been applied (the presigner's trigger).
        self.changed: list[Change] = []

    async def reload(self) -> int:
        await reload(self.pool, self.registry, self.data_key)
        if self.presigned is not None:
            count = await follow_presigned(self.pool, self.registry, self.presigned, everything=True)
            log.info("ocsp_presigned_loaded", answers=count, bytes=self.presigned.size_bytes)
        self._tell("reload", None)
        return len(self.registry)

    async def apply(self, payload: str) -> None:
        change = await apply_note(self.pool, self.registry, self.data_key, json.loads(payload), self.presigned)
        if change is not None:
            self._tell(*change)

    def _tell(self, kind: str, what: object) -> None:
        for callback in self.changed:
            callback(kind, what)
