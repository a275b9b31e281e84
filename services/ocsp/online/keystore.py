"""Every external user's key record in memory (``KeyStore``), kept equal to the
``external_user_keys`` table by ``KeySync`` through ``pg_notify('ocsp_keys', username)``."""
from __future__ import annotations

import asyncpg

from services.ocsp.online import queries
from services.ocsp.online.keys import KeyRecord
from shared.listen import Follower, Subscription
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


class KeySync(Follower):
    """Keeps a ``KeyStore`` equal to the table: a full load on every ``RESYNC`` of the
    process's LISTEN connection (at start, and after it was lost), one user re-read per
    note (its payload is the username)."""

    def __init__(self, pool: asyncpg.Pool, store: KeyStore, notes: Subscription) -> None:
        super().__init__(notes)
        self.pool = pool
        self.store = store

    async def reload(self) -> int:
        async with self.pool.acquire() as conn:
            rows = await queries.all_keys(conn)
        for row in rows:
            self.store.put(KeyRecord.from_row(row))
        return len(rows)

    async def apply(self, username: str) -> None:
        async with self.pool.acquire() as conn:
            row = await queries.key_of(conn, username)
        if row is not None:
            self.store.put(KeyRecord.from_row(row))
