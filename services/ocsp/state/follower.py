"""Keeping each process's in-memory registry equal to the ocsp tables.

Whoever changes the tables (the consumers, the signer routes) sends a note on
``queries.NOTIFY_CHANNEL`` in the same transaction, so the note goes out if and only if
the change committed. Every process follows the channel through the shared LISTEN
connection (``shared.listen``) and applies each note to its own ``Registry``
(``apply``); at start, and again after that connection was lost, it reloads everything
(``RESYNC``), so a missed note can never leave it wrong for longer than a reconnect.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from services.ocsp.responder.registry import Registry
from services.ocsp.state import queries
from services.ocsp.state.apply import apply_certificate, apply_issuer, forget_certificate
from shared.listen import Follower, Subscription
from shared.logging import get_logger

log = get_logger(__name__)


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


async def apply_note(pool: asyncpg.Pool, registry: Registry, data_key: bytes, note: dict[str, Any]) -> None:
    """Apply one NOTIFY payload to ``registry``."""
    kind = note.get("kind")
    if kind == "certificate":
        apply_certificate(registry, note)
        return
    if kind not in ("issuer", "signer"):
        log.warning("ocsp_note_unknown", kind=kind)
        return
    issuer_id = uuid.UUID(note["issuer_id"])
    async with pool.acquire() as conn:
        row = await queries.get_issuer(conn, issuer_id)
        signer = await queries.get_signer(conn, issuer_id)
    if row is None:
        registry.remove_issuer(str(issuer_id))
    else:
        apply_issuer(registry, str(issuer_id), row["certificate_der"], signer, data_key)


class StateFollower(Follower):
    """Applies the notes of one subscription to the registry in order; reloads it on
    every ``RESYNC``. Nothing may be served before ``loaded``: an empty registry would
    answer ``unauthorized`` for every issuer."""

    def __init__(self, pool: asyncpg.Pool, registry: Registry, data_key: bytes, notes: Subscription):
        super().__init__(notes)
        self.pool = pool
        self.registry = registry
        self.data_key = data_key

    async def reload(self) -> int:
        await reload(self.pool, self.registry, self.data_key)
        return len(self.registry)

    async def apply(self, payload: str) -> None:
        await apply_note(self.pool, self.registry, self.data_key, json.loads(payload))
