"""Keeping each process's in-memory registry equal to the ocsp tables.

Whoever changes the tables (the event consumer, the signer endpoints) sends
``NOTIFY ocsp_state`` in the same transaction, so the note goes out if and only if the
change committed. Every process LISTENs on a dedicated connection and applies each note
to its own ``Registry``; at start, and again after that connection is lost, it reloads
everything, so a missed note can never leave it wrong for longer than a reconnect.

Certificate notes carry the full state; issuer and signer notes only the id (a signer's
key is never put on the wire, even encrypted), and the process reads the row.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from shared.db import POOL
from shared.logging import get_logger

from . import queries
from .registry import Registry
from .responses import REVOCATION_REASONS
from .signers import decrypt_identity, load_data_key

log = get_logger(__name__)

#: The live registry of this process: what the responder and the online channel read.
REGISTRY = web.AppKey("ocsp_registry", Registry)
#: The AES-256 key that encrypts delegated signers' keys at rest.
DATA_KEY = web.AppKey("ocsp_data_key", bytes)

HEALTH_INTERVAL = 5.0  # how often the listener connection is checked
RECONNECT_MAX_DELAY = 5.0


# -- rows and notes ----------------------------------------------------------------------

def certificate_note(row: asyncpg.Record | dict) -> dict[str, Any]:
    """The NOTIFY payload for a certificate row: its full state, as JSON-ready values."""
    note: dict[str, Any] = {"kind": "certificate"}
    for name in ("issuer_id", "certificate_id", "username", "cas", "provider_cui", "status",
                 "revocation_reason"):
        note[name] = str(row[name]) if row[name] is not None else None
    note["serial"] = str(int(row["serial"]))
    for name in ("suspended_at", "revoked_at", "not_before", "not_after", "changed_at"):
        note[name] = row[name].isoformat() if row[name] is not None else None
    return note


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def apply_certificate(registry: Registry, state: dict[str, Any], *, only_if_newer: bool = True) -> bool:
    """Put one certificate's state (a row or a note) into ``registry``; True if it changed.

    A state older than the one held is ignored (notes and reloads may cross), and an
    identical one too, so that its cached answers stay valid.
    """
    issuer_id, serial = str(state["issuer_id"]), int(state["serial"])
    changed_at = _time(state["changed_at"])
    current = registry.certificate(issuer_id, serial)
    if current is not None and only_if_newer and current.changed_at and changed_at < current.changed_at:
        return False
    status = state["status"]
    reason = state.get("revocation_reason")
    values = dict(
        certificate_id=str(state["certificate_id"]), username=state["username"], cas=state["cas"],
        status="revoked" if status == "revoked" else "good",
        suspended=status == "suspended", suspended_at=_time(state.get("suspended_at")),
        revoked_at=_time(state.get("revoked_at")),
        # A reason this code cannot sign (a newer CRLReason) is left out rather than refused.
        revocation_reason=reason if status == "revoked" and reason in REVOCATION_REASONS else None,
        changed_at=changed_at, not_before=_time(state.get("not_before")),
        not_after=_time(state.get("not_after")), provider_cui=state.get("provider_cui"),
    )
    if current is not None and all(getattr(current, name) == value for name, value in values.items()):
        return False
    registry.upsert_certificate(issuer_id, serial, **values)
    return True


def apply_issuer(registry: Registry, issuer_id: str, certificate_der: bytes, signer_row, data_key: bytes) -> None:
    """Register (or re-register) an issuer with its delegated signer, if it has one."""
    signer = None
    if signer_row is not None:
        try:
            signer = decrypt_identity(data_key, uuid.UUID(issuer_id), signer_row["certificate_der"],
                                      signer_row["key_nonce"], signer_row["key_ciphertext"])
        except Exception as exc:  # a wrong data key must not take the issuer down with it
            log.error("ocsp_signer_unusable", issuer_id=issuer_id, error=repr(exc))
    current = registry.issuer(issuer_id)
    if current is not None and current.certificate_der == certificate_der:
        if current.signer is None and signer is None:
            return
        registry.set_signer(issuer_id, signer)
        return
    try:
        registry.add_issuer(issuer_id, certificate_der, signer=signer)
    except ValueError as exc:  # the same CA key and name under two ids: keep the first
        log.error("ocsp_issuer_conflict", issuer_id=issuer_id, error=str(exc))


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
        keys.add((str(row["issuer_id"]), int(row["serial"])))
        apply_certificate(registry, row, only_if_newer=False)
    for record in registry.certificates():
        if (record.issuer_id, record.serial) not in keys:
            registry.remove_certificate(record.issuer_id, record.serial)
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


# -- following the notes -------------------------------------------------------------------

class StateFollower:
    """LISTENs for ``ocsp_state`` and applies each note in order; reloads after a reconnect."""

    def __init__(self, pool: asyncpg.Pool, database_url: str, registry: Registry, data_key: bytes):
        self.pool = pool
        self.database_url = database_url
        self.registry = registry
        self.data_key = data_key
        self.loaded = asyncio.Event()
        self._notes: asyncio.Queue[str | None] = asyncio.Queue()

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        self._notes.put_nowait(payload)

    def _on_lost(self, _conn) -> None:
        self._notes.put_nowait(None)  # wakes the loop, which reconnects and reloads

    async def run(self) -> None:
        """Forever: connect, LISTEN, reload, apply notes until the connection is lost."""
        delay = 0.2
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
                conn.add_termination_listener(self._on_lost)
                # LISTEN before loading: a change committed during the load is then in the
                # queue too, and applying it after the load is harmless (newer wins).
                await conn.add_listener(queries.NOTIFY_CHANNEL, self._on_notify)
                await reload(self.pool, self.registry, self.data_key)
                self.loaded.set()
                delay = 0.2
                await self._follow(conn)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # database away: keep serving what we know, retry
                log.warning("ocsp_state_listener_lost", error=repr(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def _follow(self, conn: asyncpg.Connection) -> None:
        while True:
            try:
                payload = await asyncio.wait_for(self._notes.get(), HEALTH_INTERVAL)
            except asyncio.TimeoutError:
                await asyncio.wait_for(conn.fetchval("select 1"), 2.0)  # raises when it is dead
                continue
            if payload is None:  # the connection said it closed (maybe an earlier one)
                if conn.is_closed():
                    raise ConnectionError("listener connection closed")
                continue
            try:
                await apply_note(self.pool, self.registry, self.data_key, json.loads(payload))
            except (asyncpg.PostgresConnectionError, OSError):
                raise
            except Exception:
                log.exception("ocsp_note_failed", payload=payload[:200])


def state_ctx(database_url: str, data_key_path: Path, *, load_timeout: float = 60.0):
    """cleanup_ctx: read the data key, load ``app[REGISTRY]`` from the tables, then follow
    their changes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DATA_KEY] = load_data_key(data_key_path)
        follower = StateFollower(app[POOL], database_url, app[REGISTRY], app[DATA_KEY])
        task = asyncio.create_task(follower.run(), name="ocsp-state")
        try:
            # Serve nothing before the first load: an empty registry would answer
            # "unauthorized" for every issuer.
            await asyncio.wait_for(asyncio.shield(follower.loaded.wait()), load_timeout)
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx
