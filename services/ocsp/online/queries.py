"""SQL of the online channel: the external users' key digests. One function per
statement, each taking a connection; the caller owns the transaction."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg

KEYS_CHANNEL = "ocsp_keys"
KEY_COLUMNS = ("username, cas, provider_cui, provider_name, key_digest, issued_at, "
               "previous_digests, deleted_at, version, previous_replaced_at")


async def all_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every external user's key row (loaded into memory at start)."""
    return await conn.fetch(f"select {KEY_COLUMNS} from external_user_keys")


async def key_of(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    """One external user's key row."""
    return await conn.fetchrow(f"select {KEY_COLUMNS} from external_user_keys where username = $1",
                               username)


async def lock_user(conn: asyncpg.Connection, username: str) -> None:
    """Serialise the events of one user until the transaction ends. A row lock is not
    enough: for a new user there is no row yet, and KeyIssued and ExternalUserCreated
    handled at the same moment would each write over the other's fields."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", "ocsp-key:" + username)


async def key_for_update(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    """One external user's key row, locked until the transaction ends."""
    return await conn.fetchrow(
        f"select {KEY_COLUMNS} from external_user_keys where username = $1 for update", username)


async def save_key(conn: asyncpg.Connection, *, username: str, cas: str, provider_cui: str | None,
                   provider_name: str | None, key_digest: str | None, issued_at: datetime | None,
                   previous_digests: Sequence[str], deleted_at: datetime | None,
                   previous_replaced_at: Sequence[datetime | None] = ()) -> int:
    """Insert or replace a user's key row; returns its new version."""
    return await conn.fetchval(
        """insert into external_user_keys (username, cas, provider_cui, provider_name, key_digest,
                                           issued_at, previous_digests, deleted_at, previous_replaced_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           on conflict (username) do update set
               cas = excluded.cas, provider_cui = excluded.provider_cui,
               provider_name = excluded.provider_name, key_digest = excluded.key_digest,
               issued_at = excluded.issued_at, previous_digests = excluded.previous_digests,
               deleted_at = excluded.deleted_at, previous_replaced_at = excluded.previous_replaced_at,
               version = external_user_keys.version + 1
           returning version""",
        username, cas, provider_cui, provider_name, key_digest, issued_at, list(previous_digests),
        deleted_at, list(previous_replaced_at))


async def notify_key_changed(conn: asyncpg.Connection, username: str) -> None:
    """Tell every process (at commit) to refresh this user's key from the table."""
    await conn.execute("select pg_notify($1, $2)", KEYS_CHANNEL, username)


# -- renewals a house rejected (issue 15) ------------------------------------------------

REFUSALS_CHANNEL = "ocsp_renewal_refusals"
REFUSAL_COLUMNS = "username, issuer_id, serial, renewal_id, reason, rejected_at"


async def all_refusals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every rejected renewal (loaded into memory at start)."""
    return await conn.fetch(f"select {REFUSAL_COLUMNS} from renewal_refusals")


async def save_refusal(conn: asyncpg.Connection, *, username: str, issuer_id, serial: int, renewal_id,
                       reason: str, rejected_at: datetime) -> asyncpg.Record | None:
    """Keep a rejection (the first one stands: a decision is final); the row if new."""
    return await conn.fetchrow(
        f"""insert into renewal_refusals ({REFUSAL_COLUMNS}) values ($1, $2, $3, $4, $5, $6)
            on conflict (username, issuer_id, serial) do nothing returning {REFUSAL_COLUMNS}""",
        username, issuer_id, Decimal(serial), renewal_id, reason, rejected_at)


async def notify_refusal(conn: asyncpg.Connection, payload: str) -> None:
    """Tell every process (at commit) of a rejection; the payload is the refusal itself."""
    await conn.execute("select pg_notify($1, $2)", REFUSALS_CHANNEL, payload)
