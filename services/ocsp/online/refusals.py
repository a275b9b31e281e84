"""Renewals a house rejected (issue 15), in memory: the online channel answers such a
certificate ``renewal_rejected`` with the house's reason. ``RefusalStore`` is kept equal
to the ``renewal_refusals`` table (filled by ``consumers`` from certs' RenewalRejected)
by ``RefusalSync`` through ``pg_notify('ocsp_renewal_refusals', <the refusal as JSON>)``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ocsp.online import queries
from shared.listen import Follower, Subscription

#: What the desktop is shown of a reason at most (certs bounds it to 500 characters too).
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Refusal:
    username: str
    issuer_id: str
    serial: int
    reason: str

    @classmethod
    def from_row(cls, row: asyncpg.Record | dict[str, Any]) -> "Refusal":
        reason = "".join(c for c in str(row["reason"])[:MAX_REASON] if c.isprintable() or c == " ")
        return cls(row["username"], str(row["issuer_id"]), int(row["serial"]), reason)

    def to_note(self) -> str:
        return json.dumps({"username": self.username, "issuer_id": self.issuer_id, "serial": str(self.serial),
                           "reason": self.reason}, ensure_ascii=False, separators=(",", ":"))


class RefusalStore:
    """Rejected renewals by (user, issuer, serial)."""

    def __init__(self) -> None:
        self._refused: dict[tuple[str, str, int], Refusal] = {}

    def get(self, username: str, issuer_id: str, serial: int) -> Refusal | None:
        return self._refused.get((username, issuer_id, serial))

    def put(self, refusal: Refusal) -> None:
        self._refused[(refusal.username, refusal.issuer_id, refusal.serial)] = refusal

    def __len__(self) -> int:
        return len(self._refused)


class RefusalSync(Follower):
    """A full load on every ``RESYNC``; one refusal per note (its payload)."""

    def __init__(self, pool: asyncpg.Pool, store: RefusalStore, notes: Subscription) -> None:
        super().__init__(notes)
        self.pool = pool
        self.store = store

    async def reload(self) -> int:
        async with self.pool.acquire() as conn:
            rows = await queries.all_refusals(conn)
        for row in rows:
            self.store.put(Refusal.from_row(row))
        return len(rows)

    async def apply(self, payload: str) -> None:
        self.store.put(Refusal.from_row(json.loads(payload)))
