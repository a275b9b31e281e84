"""SQL of the state the responder answers from: one function per statement; the caller
owns the transaction.

Tables are unqualified: the pool's search_path is the ``ocsp`` schema. Serials travel as
``Decimal`` (numeric(50,0)): up to 20 octets, beyond bigint.
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import asyncpg

ISSUER_COLUMNS = "id, subject_dn, certificate_der, event_at"
CERTIFICATE_COLUMNS = ("issuer_id, serial, certificate_id, username, cas, provider_cui, status, suspended_at, "
                       "revoked_at, revocation_reason, not_before, not_after, changed_at, issuer_revoked_at, "
                       "issuer_revocation_reason, holder, holder_key")
SIGNER_COLUMNS = "issuer_id, certificate_der, key_nonce, key_ciphertext, created_at, created_by"
PRESIGNED_COLUMNS = "issuer_id, serial, hash_algorithm, der, state, signer_key_hash, produced_at, next_update, seq"
#: The presigner's election: one session advisory lock per database (any 64-bit key of
#: our own; hashtext of a name so that it reads in pg_locks' objid as that name's hash).
PRESIGNER_LOCK = "siui-ocsp-presigner"


# -- issuers -----------------------------------------------------------------------------

async def upsert_issuer(conn: asyncpg.Connection, issuer_id: uuid.UUID, subject_dn: str,
                        certificate_der: bytes, event_at: datetime) -> bool:
    """Insert or replace an issuer unless a newer event already did; True if written."""
    written = await conn.fetchval(
        f"""insert into issuers as i ({ISSUER_COLUMNS}) values ($1, $2, $3, $4)
            on conflict (id) do update
               set subject_dn = excluded.subject_dn, certificate_der = excluded.certificate_der,
                   event_at = excluded.event_at, updated_at = now()
             where i.event_at <= excluded.event_at
            returning true""",
        issuer_id, subject_dn, certificate_der, event_at)
    return bool(written)


async def get_issuer(conn: asyncpg.Connection, issuer_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {ISSUER_COLUMNS} from issuers where id = $1", issuer_id)


async def all_issuers(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"select {ISSUER_COLUMNS} from issuers order by id")


# -- certificates ------------------------------------------------------------------------

async def upsert_certificate(conn: asyncpg.Connection, *, issuer_id: uuid.UUID, serial: int,
                             certificate_id: uuid.UUID, username: str, cas: str, provider_cui: str,
                             status: str, changed_at: datetime, revocation_reason: str | None,
                             not_before: datetime | None, not_after: datetime | None,
                             certificate_der: bytes | None, issuer_revoked_at: datetime | None = None,
                             issuer_revocation_reason: str | None = None,
                             holder: dict | None = None, holder_key: bytes | None = None) -> asyncpg.Record | None:
    """Store a certificate's full state unless it is older than the one held; the row
    as now stored, or None when the event was stale (or the certificate is revoked,
    which is final).

    A repeated suspension keeps the first suspension time: that is the hold's start.
    The issuer's revocation, once known, stays: an event from a publisher that does not
    carry it yet must not erase it.
    """
    return await conn.fetchrow(
        f"""insert into certificates as c (issuer_id, serial, certificate_id, username, cas, provider_cui,
                   status, suspended_at, revoked_at, revocation_reason, not_before, not_after,
                   certificate_der, changed_at, issuer_revoked_at, issuer_revocation_reason, holder,
                   holder_key)
            values ($1, $2, $3, $4, $5, $6, $7,
                    case when $7 = 'suspended' then $8::timestamptz end,
                    case when $7 = 'revoked' then $8::timestamptz end,
                    $9, $10, $11, $12, $8, $13, $14, $15, $16)
            on conflict (issuer_id, serial, username) do update
               set certificate_id = excluded.certificate_id, username = excluded.username,
                   cas = excluded.cas, provider_cui = excluded.provider_cui, status = excluded.status,
                   suspended_at = case when excluded.status = 'suspended' and c.status = 'suspended'
                                       then c.suspended_at else excluded.suspended_at end,
                   revoked_at = excluded.revoked_at, revocation_reason = excluded.revocation_reason,
                   not_before = coalesce(excluded.not_before, c.not_before),
                   not_after = coalesce(excluded.not_after, c.not_after),
                   certificate_der = coalesce(excluded.certificate_der, c.certificate_der),
                   holder = coalesce(excluded.holder, c.holder),
                   holder_key = case when excluded.holder is null then c.holder_key else excluded.holder_key end,
                   changed_at = excluded.changed_at, updated_at = now(),
                   issuer_revocation_reason = case when c.issuer_revoked_at is null
                                                   then excluded.issuer_revocation_reason
                                                   else c.issuer_revocation_reason end,
                   issuer_revoked_at = coalesce(c.issuer_revoked_at, excluded.issuer_revoked_at)
             where c.changed_at <= excluded.changed_at and c.status <> 'revoked'
            returning {CERTIFICATE_COLUMNS}""",
        issuer_id, Decimal(serial), certificate_id, username, cas, provider_cui, status, changed_at,
        revocation_reason, not_before, not_after, certificate_der, issuer_revoked_at, issuer_revocation_reason,
        holder, holder_key)


#: The load's columns: the issuer id and serial as text (no UUID nor Decimal object per
#: row: the registry holds them as text and int); the holder as its stored key, and only
#: when that is missing (a row stored before it) the holder's JSON, or the DER when that
#: is missing too; else as CERTIFICATE_COLUMNS.
LOAD_COLUMNS = ("issuer_id::text as issuer_id, serial::text as serial, certificate_id, "
                "username, cas, provider_cui, status, suspended_at, revoked_at, revocation_reason, not_before, "
                "not_after, changed_at, issuer_revoked_at, issuer_revocation_reason, holder_key, "
                "case when holder_key is null then holder end as holder, "
                "case when holder_key is null and holder is null then certificate_der end as der_for_holder")


async def certificate_pages(conn: asyncpg.Connection, page: int) -> AsyncIterator[list[asyncpg.Record]]:
    """Every certificate row (the DER only of those stored before their holder was), ``page``
    rows at a time from a server-side cursor in one read-only transaction (one snapshot):
    a national registry is never all in memory as rows at once."""
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(f"select {LOAD_COLUMNS} from certificates")
        while True:
            rows = await cursor.fetch(page)
            if rows:
                yield rows
            if len(rows) < page:
                return


# -- delegated signers -----------------------------------------------------------------------

async def upsert_signer(conn: asyncpg.Connection, issuer_id: uuid.UUID, certificate_der: bytes,
                        key_nonce: bytes, key_ciphertext: bytes, actor: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""insert into signers ({SIGNER_COLUMNS}) values ($1, $2, $3, $4, now(), $5)
            on conflict (issuer_id) do update
               set certificate_der = excluded.certificate_der, key_nonce = excluded.key_nonce,
                   key_ciphertext = excluded.key_ciphertext, created_at = now(),
                   created_by = excluded.created_by
            returning {SIGNER_COLUMNS}""",
        issuer_id, certificate_der, key_nonce, key_ciphertext, actor)


async def get_signer(conn: asyncpg.Connection, issuer_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {SIGNER_COLUMNS} from signers where issuer_id = $1", issuer_id)


async def all_signers(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"select {SIGNER_COLUMNS} from signers")


async def delete_signer(conn: asyncpg.Connection, issuer_id: uuid.UUID) -> bool:
    return await conn.fetchval("delete from signers where issuer_id = $1 returning true", issuer_id) is not None


# -- pre-signed answers -----------------------------------------------------------------------

async def try_presigner_lock(conn: asyncpg.Connection) -> bool:
    """Take the presigner's lock for this session, if nobody holds it; True if held now."""
    return bool(await conn.fetchval("select pg_try_advisory_lock(hashtext($1))", PRESIGNER_LOCK))


async def upsert_presigned(conn: asyncpg.Connection, rows: list[tuple]) -> int:
    """Store answers (issuer_id, serial, hash_algorithm, der, state, signer_key_hash,
    produced_at, next_update), each with a new seq; the highest seq written."""
    columns = list(zip(*rows))
    return await conn.fetchval(
        """with written as (
               insert into presigned_answers as p (issuer_id, serial, hash_algorithm, der, state, signer_key_hash,
                                                   produced_at, next_update)
               select * from unnest($1::uuid[], $2::numeric[], $3::text[], $4::bytea[], $5::text[], $6::bytea[],
                                    $7::timestamptz[], $8::timestamptz[])
               on conflict (issuer_id, serial, hash_algorithm) do update
                  set der = excluded.der, state = excluded.state, signer_key_hash = excluded.signer_key_hash,
                      produced_at = excluded.produced_at, next_update = excluded.next_update,
                      seq = nextval('presigned_answers_seq')
               returning seq)
           select max(seq) from written""",
        [uuid.UUID(i) for i in columns[0]], [Decimal(n) for n in columns[1]], list(columns[2]), list(columns[3]),
        list(columns[4]), list(columns[5]), list(columns[6]), list(columns[7]))


async def presigned_after(conn: asyncpg.Connection, seq: int, limit: int) -> list[asyncpg.Record]:
    """Answers written after ``seq``, oldest first, at most ``limit``."""
    return await conn.fetch(f"select {PRESIGNED_COLUMNS} from presigned_answers where seq > $1 order by seq limit $2",
                            seq, limit)
