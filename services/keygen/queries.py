"""SQL of the keygen service: one function per statement; the caller owns the transaction.

Tables are named unqualified: the pool's search_path starts with the ``keygen`` schema.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

# Columns a provider is written with, in this order ($1 = id, then these).
PROVIDER_DATA = ("cas", "cui", "name", "description", "code", "cui_date", "org_type",
                 "fiscal_attribute", "fiscal_attribute_date", "trade_register_no",
                 "registered_on", "country", "locality", "currency", "print_order",
                 "valid_from", "valid_to", "work_point", "location_type",
                 "legal_representative_name", "legal_representative_cnp", "search_text")
PROVIDER_COLUMNS = ", ".join(("id", *PROVIDER_DATA, "created_at", "created_by", "updated_at",
                              "updated_by"))
LIST_COLUMNS = """p.id, p.cas, p.cui, p.code, p.name, p.org_type, p.locality, p.valid_from,
                  p.valid_to, k.id as key_id, k.issued_at as key_issued_at"""
KEY_COLUMNS = "id, provider_id, reset, issued_at, issued_by, replaced_at, replaced_by"
_LIST_FILTER = """where ($1::text is null or p.cas = $1)
                    and ($2::text is null or p.search_text like $2 escape '\\')"""


# --- providers ------------------------------------------------------------------------

async def insert_provider(conn: asyncpg.Connection, provider_id: str, data: dict[str, Any],
                          now: datetime, by: str) -> bool:
    """Insert a provider; False if its CUI is already registered at its house."""
    values = [data[c] for c in PROVIDER_DATA]
    n = len(PROVIDER_DATA)
    placeholders = ", ".join(f"${i}" for i in range(2, n + 2))
    return bool(await conn.fetchval(
        f"""insert into providers (id, {", ".join(PROVIDER_DATA)}, created_at, created_by,
                                   updated_at, updated_by)
            values ($1, {placeholders}, ${n + 2}, ${n + 3}, ${n + 2}, ${n + 3})
            on conflict (cas, cui) do nothing returning true""",
        provider_id, *values, now, by))


async def update_provider(conn: asyncpg.Connection, provider_id: str, data: dict[str, Any],
                          now: datetime, by: str) -> None:
    """Overwrite a provider's fields (raises UniqueViolationError for a taken CUI)."""
    n = len(PROVIDER_DATA)
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(PROVIDER_DATA, start=2))
    await conn.execute(
        f"update providers set {sets}, updated_at = ${n + 2}, updated_by = ${n + 3} where id = $1",
        provider_id, *(data[c] for c in PROVIDER_DATA), now, by)


async def fetch_provider(conn: asyncpg.Connection, provider_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {PROVIDER_COLUMNS} from providers where id = $1",
                               provider_id)


async def lock_provider(conn: asyncpg.Connection, provider_id: str) -> asyncpg.Record | None:
    """The provider row, locked until the transaction ends: serialises its key issuing
    and its edits, so two simultaneous "Generare parola" cannot both succeed."""
    return await conn.fetchrow(
        f"select {PROVIDER_COLUMNS} from providers where id = $1 for update", provider_id)


async def find_provider_id(conn: asyncpg.Connection, cas: str, cui: str) -> str | None:
    value = await conn.fetchval("select id from providers where cas = $1 and cui = $2", cas, cui)
    return str(value) if value is not None else None


async def count_providers(conn: asyncpg.Connection, *, cas: str | None,
                          pattern: str | None) -> int:
    return await conn.fetchval(f"select count(*) from providers p {_LIST_FILTER}", cas, pattern)


async def list_providers(conn: asyncpg.Connection, *, cas: str | None, pattern: str | None,
                         limit: int, offset: int) -> list[asyncpg.Record]:
    """One page of providers by name, each with its current key's id and date, if any."""
    return await conn.fetch(
        f"""select {LIST_COLUMNS}
            from providers p
            left join activation_keys k on k.provider_id = p.id and k.replaced_at is null
            {_LIST_FILTER}
            order by p.name, p.id limit $3 offset $4""",
        cas, pattern, limit, offset)


# --- history --------------------------------------------------------------------------

async def insert_history(conn: asyncpg.Connection, provider_id: str, at: datetime, by: str,
                         action: str, changes: dict[str, Any]) -> None:
    await conn.execute(
        """insert into provider_history (provider_id, at, by, action, changes)
           values ($1, $2, $3, $4, $5)""",
        provider_id, at, by, action, changes)


async def fetch_history(conn: asyncpg.Connection, provider_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """select id, at, by, action, changes from provider_history
           where provider_id = $1 order by id""", provider_id)


# --- activation keys ------------------------------------------------------------------

async def fetch_keys(conn: asyncpg.Connection, provider_id: str) -> list[asyncpg.Record]:
    """The provider's key history, oldest first (never the digests)."""
    return await conn.fetch(
        f"select {KEY_COLUMNS} from activation_keys where provider_id = $1 order by issued_at, id",
        provider_id)


async def fetch_current_key(conn: asyncpg.Connection, provider_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"select {KEY_COLUMNS} from activation_keys where provider_id = $1 and replaced_at is null",
        provider_id)


async def replace_key(conn: asyncpg.Connection, key_id: str, at: datetime, by: str) -> None:
    await conn.execute(
        "update activation_keys set replaced_at = $2, replaced_by = $3 where id = $1",
        key_id, at, by)


async def insert_key(conn: asyncpg.Connection, *, key_id: str, provider_id: str, digest: bytes,
                     reset: bool, issued_at: datetime, issued_by: str) -> None:
    await conn.execute(
        """insert into activation_keys (id, provider_id, digest, reset, issued_at, issued_by)
           values ($1, $2, $3, $4, $5, $6)""",
        key_id, provider_id, digest, reset, issued_at, issued_by)


async def find_key(conn: asyncpg.Connection, digest: bytes) -> asyncpg.Record | None:
    """The key with this digest (through its unique index) and its provider."""
    return await conn.fetchrow(
        """select k.id as key_id, k.replaced_at, p.id as provider_id, p.cas, p.cui, p.name
           from activation_keys k join providers p on p.id = k.provider_id
           where k.digest = $1""", digest)


# --- activation attempts --------------------------------------------------------------

async def lock_throttle(conn: asyncpg.Connection, subject: str) -> None:
    """Serialise refusals counted under one subject until the transaction ends, so that
    simultaneous guesses cannot all slip under the limit."""
    await conn.execute("select pg_advisory_xact_lock(hashtext($1))", f"keygen-activation:{subject}")


async def counted_refusal(conn: asyncpg.Connection, network: str, since: datetime,
                          rank: int) -> datetime | None:
    """The time of the ``rank``-th newest refusal counted under ``network`` after
    ``since`` (None when there are fewer): one row read from the index's end."""
    return await conn.fetchval(
        """select at from activation_attempts where failed and network = $1 and at > $2
           order by at desc offset $3 limit 1""", network, since, rank - 1)


async def insert_attempt(conn: asyncpg.Connection, *, at: datetime, address: str, network: str,
                         cas: str | None, provider_id: str | None, outcome: str,
                         failed: bool) -> None:
    await conn.execute(
        """insert into activation_attempts (at, address, network, cas, provider_id, outcome, failed)
           values ($1, $2, $3, $4, $5, $6, $7)""",
        at, address, network, cas, provider_id, outcome, failed)


async def purge_attempts(conn: asyncpg.Connection, before: datetime) -> int:
    """Delete the attempts older than ``before``; how many were deleted."""
    status = await conn.execute("delete from activation_attempts where at < $1", before)
    return int(status.rsplit(" ", 1)[-1])
