"""Every external user's key record in memory (``KeyStore``), kept equal to the
``external_user_keys`` table by ``KeySync`` through ``pg_notify('ocsp_keys', username)``."""
from __future__ import annotations

import asyncio

import asyncpg

from services.ocsp.online import queries
from services.ocsp.online.keys import KeyRecord
from shared.listen import RESYNC, Subscription
from shared.logging import get_logger

log = get_logger(__name__)


class KeyStore:
    """Every external user's ``KeyRecord`` in memory, by username."""

    def __init__(self) -> None:
        self._by_user: dict[str, KeyRecord] = {}

    def get(self, username: str) -> KeyRecord | None:
        return self._by_user.get(username)

    def put(self, record: KeyRecord) -> None:
        """Keep ``record`` unless a newer version is already held."""
        held = self._by_user.get(record.username)
        if held is None or record.version >= held.version:
            self._by_user[record.username] = record

    def __len__(self) -> int:
        return len(self._by_user)


class KeySync:
    """Keeps a ``KeyStore`` equal to the table: a full load on every ``RESYNC`` of the
    process's LISTEN connection (at start, and after it was lost), one user re-read per
    note. ``run`` is a ``shared.tasks`` target."""

    def __init__(self, pool: asyncpg.Pool, store: KeyStore, notes: Subscription) -> None:
        self.pool = pool
        self.store = store
        self.notes = notes
        self.loaded = asyncio.Event()
        self._reload_due = False  # the first load waits for the first RESYNC

    async def load_all(self) -> int:
        async with self.pool.acquire() as conn:
            rows = await queries.all_keys(conn)
        for row in rows:
            self.store.put(KeyRecord.from_row(row))
        return len(rows)

    async def refresh(self, username: str) -> None:
        async with self.pool.acquire() as conn:
            row = await queries.key_of(conn, username)
        if row is not None:
            self.store.put(KeyRecord.from_row(row))

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self._reload_due:
                users = await self.load_all()  # raises while the database is away: restarted
                self._reload_due = False
                if self.loaded.is_set():
                    log.info("ocsp_keys_resynced", users=users)
                self.loaded.set()
            item = await self.notes.get()
            if item is RESYNC:
                self._reload_due = True
                continue
            try:
                await self.refresh(item)
            except Exception:
                self._reload_due = True  # that user's change was not read: read them all
                raise
