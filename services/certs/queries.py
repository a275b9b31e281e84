"""SQL of the certs service: one function per statement, explicit columns, ``$n``
parameters. The caller owns the transaction. Serials travel as ``Decimal`` (numeric),
which holds all 20 octets exactly."""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg

from .pki import IssuerFacts

Record = asyncpg.Record

_ISSUER_COLUMNS = """id, subject_dn, subject_der, dn_key, certificate_der, serial, not_before, not_after,
    name_sha1, key_sha1, name_sha256, key_sha256, created_at, created_by, updated_at, updated_by,
    crl_urls, status_checked_at, crl_this_update, crl_next_update, crl_url, crl_read_at, status_error,
    status_due_at, tl_tsp_name, tl_service_name, tl_status, tl_imported_at, tl_withdrawn_at"""

_USER_COLUMNS = """username, cas, provider_cui, provider_code, provider_name, schema, org_unit,
    event_at, deleted_at"""

# A certificate as the API shows it: with its user's provider and its issuer's DN.
_CERTIFICATE_VIEW = """c.id, c.username, c.cas, c.provider_cui, c.issuer_id, c.serial, c.subject,
    c.not_before, c.not_after, c.status, c.suspended_at, c.revoked_at, c.revocation_reason,
    c.last_used_at, c.created_at, c.created_by, c.updated_at, u.provider_code, u.provider_name,
    u.schema, u.org_unit, i.subject_dn as issuer_dn, c.issuer_revoked_at, c.issuer_revocation_reason,
    i.crl_read_at as issuer_checked_at,
    case when c.issuer_revoked_at is not null then 'revoked'
         when i.crl_read_at >= c.created_at and (i.crl_next_update is null or i.crl_next_update >= now())
         then 'good' else 'unknown' end as issuer_status"""
_CERTIFICATE_FROM = """certificates c
    join external_users u on u.username = c.username
    join issuers i on i.id = c.issuer_id"""

# The listing's filters; every one optional (a null parameter matches everything).
_CERTIFICATE_FILTER = """($1::text is null or c.cas = $1)
    and ($2::text is null or c.username = $2)
    and ($3::text is null or c.provider_cui = $3 or u.provider_code = $3)
    and ($4::boolean is null or (c.status = 'suspended') = $4)
    and ($5::text is null or c.status = $5)
    and ($6::uuid is null or c.issuer_id = $6)
    and ($7::timestamptz is null
         or (c.status <> 'revoked' and c.not_after >= $8 and c.not_after <= $7))"""


# -- issuers ------------------------------------------------------------------------

async def insert_issuer(conn, issuer_id: uuid.UUID, f: IssuerFacts, actor: str, at: datetime) -> Record:
    """A new issuing authority, returned as stored."""
    return await conn.fetchrow(
        f"""insert into issuers (id, subject_dn, subject_der, dn_key, certificate_der, serial, not_before,
                not_after, name_sha1, key_sha1, name_sha256, key_sha256, created_at, created_by)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            returning {_ISSUER_COLUMNS}""",
        issuer_id, f.subject_dn, f.subject_der, f.dn_key, f.certificate_der, Decimal(f.serial),
        f.not_before, f.not_after, f.name_sha1, f.key_sha1, f.name_sha256, f.key_sha256, at, actor)


async def replace_issuer_certificate(conn, issuer_id: uuid.UUID, f: IssuerFacts, actor: str,
                                     at: datetime) -> Record | None:
    """Put a renewed CA certificate in place; None if there is no such issuer."""
    return await conn.fetchrow(
        f"""update issuers set subject_dn = $2, subject_der = $3, certificate_der = $4, serial = $5,
                not_before = $6, not_after = $7, name_sha1 = $8, key_sha1 = $9, name_sha256 = $10,
                key_sha256 = $11, updated_at = $12, updated_by = $13
            where id = $1
            returning {_ISSUER_COLUMNS}""",
        issuer_id, f.subject_dn, f.subject_der, f.certificate_der, Decimal(f.serial), f.not_before,
        f.not_after, f.name_sha1, f.key_sha1, f.name_sha256, f.key_sha256, at, actor)


async def get_issuer(conn, issuer_id: uuid.UUID) -> Record | None:
    """One issuer by id."""
    return await conn.fetchrow(f"select {_ISSUER_COLUMNS} from issuers where id = $1", issuer_id)


async def lock_issuer(conn, issuer_id: uuid.UUID) -> Record | None:
    """One issuer by id, its row locked until the caller's transaction ends."""
    return await conn.fetchrow(f"select {_ISSUER_COLUMNS} from issuers where id = $1 for update", issuer_id)


async def find_issuer_by_key(conn, dn_key: str) -> Record | None:
    """The issuer whose normalised DN is ``dn_key``, if any."""
    return await conn.fetchrow(f"select {_ISSUER_COLUMNS} from issuers where dn_key = $1", dn_key)


async def list_issuers(conn, dn_key: str | None) -> list[Record]:
    """Every issuer, or only the one with ``dn_key``."""
    return await conn.fetch(
        f"""select {_ISSUER_COLUMNS} from issuers
            where ($1::text is null or dn_key = $1) order by subject_dn, id""", dn_key)


# -- external users (fed by events) -----------------------------------------------------

async def upsert_external_user(conn, *, username: str, cas: str, provider_cui: str, provider_code: str,
                               provider_name: str, schema: str, org_unit: str, event_at: datetime) -> None:
    """Create or refresh an external user, unless a newer event already did."""
    await conn.execute(
        """insert into external_users (username, cas, provider_cui, provider_code, provider_name,
                                       schema, org_unit, event_at, deleted_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, null)
           on conflict (username) do update set cas = excluded.cas, provider_cui = excluded.provider_cui,
               provider_code = excluded.provider_code, provider_name = excluded.provider_name,
               schema = excluded.schema, org_unit = excluded.org_unit, event_at = excluded.event_at,
               deleted_at = null
           where external_users.event_at <= excluded.event_at""",
        username, cas, provider_cui, provider_code, provider_name, schema, org_unit, event_at)


async def mark_external_user_deleted(conn, username: str, event_at: datetime) -> None:
    """Mark a user deleted (rows stay: its certificates keep their history)."""
    await conn.execute(
        """update external_users set deleted_at = $2, event_at = $2
           where username = $1 and event_at <= $2""", username, event_at)


async def get_external_user(conn, username: str) -> Record | None:
    """One external user by name, deleted or not."""
    return await conn.fetchrow(f"select {_USER_COLUMNS} from external_users where username = $1", username)


# -- certificates ----------------------------------------------------------------------

async def insert_certificate(conn, *, certificate_id: uuid.UUID, username: str, cas: str, provider_cui: str,
                             issuer_id: uuid.UUID, serial: int, subject: str | None,
                             not_before: datetime | None, not_after: datetime | None,
                             certificate_der: bytes | None, crl_urls: list[str], actor: str, at: datetime) -> None:
    """A new certificate, active."""
    await conn.execute(
        """insert into certificates (id, username, cas, provider_cui, issuer_id, serial, subject,
                                     not_before, not_after, certificate_der, crl_urls, status, created_at,
                                     created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $13)""",
        certificate_id, username, cas, provider_cui, issuer_id, Decimal(serial), subject, not_before,
        not_after, certificate_der, crl_urls, at, actor)


async def get_certificate(conn, certificate_id: uuid.UUID) -> Record | None:
    """One certificate as the API shows it, with its DER."""
    return await conn.fetchrow(
        f"select {_CERTIFICATE_VIEW}, c.certificate_der from {_CERTIFICATE_FROM} where c.id = $1",
        certificate_id)


async def lock_certificate(conn, certificate_id: uuid.UUID) -> Record | None:
    """Lock one certificate's row for a state change; its id, house and status."""
    return await conn.fetchrow(
        "select id, cas, status, issuer_revoked_at from certificates where id = $1 for update", certificate_id)


async def set_certificate_state(conn, certificate_id: uuid.UUID, *, status: str, at: datetime,
                                revocation_reason: str | None = None) -> None:
    """Move a certificate to ``status`` at ``at``."""
    # suspended_at is the start of the current suspension (cleared on reinstatement);
    # revoked_at and the reason are set once, by the revocation.
    await conn.execute(
        """update certificates set status = $2, updated_at = $3,
               suspended_at = case when $2 = 'suspended' then $3
                                   when $2 = 'active' then null else suspended_at end,
               revoked_at = case when $2 = 'revoked' then $3 else revoked_at end,
               revocation_reason = case when $2 = 'revoked' then $4 else revocation_reason end
           where id = $1""",
        certificate_id, status, at, revocation_reason)


async def insert_history(conn, certificate_id: uuid.UUID, *, at: datetime, actor: str, action: str,
                         reason: str | None = None, comment: str | None = None) -> None:
    """Record one change in the certificate's history."""
    await conn.execute(
        """insert into certificate_history (certificate_id, at, actor, action, reason, comment)
           values ($1, $2, $3, $4, $5, $6)""", certificate_id, at, actor, action, reason, comment)


async def list_history(conn, certificate_id: uuid.UUID) -> list[Record]:
    """A certificate's history, oldest first."""
    return await conn.fetch(
        """select at, actor, action, reason, comment from certificate_history
           where certificate_id = $1 order by id""", certificate_id)


async def list_certificates(conn, filters: tuple, *, limit: int, offset: int) -> list[Record]:
    """``filters``: (cas, username, provider, suspended, status, issuer_id, expires_by, now)."""
    return await conn.fetch(
        f"""select {_CERTIFICATE_VIEW} from {_CERTIFICATE_FROM}
            where {_CERTIFICATE_FILTER}
            order by case when $7::timestamptz is not null then c.not_after end, c.created_at desc, c.id
            limit $9 offset $10""", *filters, limit, offset)


async def count_certificates(conn, filters: tuple) -> int:
    """How many certificates the listing's filters match."""
    return await conn.fetchval(
        f"select count(*) from {_CERTIFICATE_FROM} where {_CERTIFICATE_FILTER}", *filters)


async def record_usage(conn, certificate_ids: list[uuid.UUID], used_at: list[datetime]) -> int:
    """A whole CertificateUsed batch in one statement; last_used_at only moves forward."""
    result = await conn.execute(
        """update certificates c set last_used_at = greatest(c.last_used_at, u.used_at)
           from (select id, max(used_at) as used_at
                 from unnest($1::uuid[], $2::timestamptz[]) as t(id, used_at) group by id) u
           where c.id = u.id""", certificate_ids, used_at)
    return int(result.split()[-1])


# -- the issuers' own status (CRLs) -----------------------------------------------------

async def set_issuer_crl_urls(conn, issuer_id: uuid.UUID, urls: list[str], actor: str,
                              at: datetime) -> Record | None:
    """CNAS's CRL URLs for an issuer; due for a fetch at once. None if no such issuer."""
    return await conn.fetchrow(
        f"""update issuers set crl_urls = $2, status_due_at = $3, updated_at = $3, updated_by = $4
            where id = $1 returning {_ISSUER_COLUMNS}""", issuer_id, urls, at, actor)


async def request_status_refresh(conn, issuer_id: uuid.UUID, at: datetime) -> bool:
    """Make an issuer due for a fetch now; False if there is no such issuer."""
    return await conn.fetchval(
        "update issuers set status_due_at = $2 where id = $1 returning true", issuer_id, at) is not None


async def issuer_sources(conn, issuer_id: uuid.UUID, limit: int) -> list[str]:
    """An issuer's CRL URLs: its record's first, then its certificates' distribution
    points (most common first), at most ``limit``."""
    rows = await conn.fetch(
        """select url from (
               select url, 0 as origin, ord as weight
                 from issuers, unnest(crl_urls) with ordinality as t(url, ord) where id = $1
               union all
               select url, 1, -count(*) from certificates, unnest(crl_urls) as t(url)
                where issuer_id = $1 group by url) s
           order by origin, weight limit $2""", issuer_id, limit * 2)
    return list(dict.fromkeys(r["url"] for r in rows))[:limit]


async def claim_due_issuers(conn, now: datetime, lease_until: datetime, limit: int) -> list[Record]:
    """Issuers due for a status fetch (with a source), moved ``lease_until`` ahead so that
    another fetcher does not take them meanwhile; skips rows another holds."""
    return await conn.fetch(
        f"""update issuers set status_due_at = $2
            where id in (
                select id from issuers i
                 where (status_due_at is null or status_due_at <= $1)
                   and (cardinality(crl_urls) > 0
                        or exists (select 1 from certificates c
                                    where c.issuer_id = i.id and cardinality(c.crl_urls) > 0))
                 order by status_due_at nulls first limit $3 for update skip locked)
            returning {_ISSUER_COLUMNS}""", now, lease_until, limit)


async def next_status_due(conn) -> datetime | None:
    """The earliest time any issuer is due for a fetch."""
    return await conn.fetchval("select min(status_due_at) from issuers")


async def live_serials(conn, issuer_id: uuid.UUID) -> list[Decimal]:
    """Serials of the issuer's registered certificates its CRLs have not listed yet."""
    rows = await conn.fetch(
        "select serial from certificates where issuer_id = $1 and issuer_revoked_at is null", issuer_id)
    return [r["serial"] for r in rows]


async def record_crl_read(conn, issuer_id: uuid.UUID, *, url: str, this_update: datetime,
                          next_update: datetime | None, checked_at: datetime, due_at: datetime) -> bool:
    """A verified CRL for the issuer, unless a newer one is already held; True if kept."""
    return await conn.fetchval(
        """update issuers set crl_url = $2, crl_this_update = $3, crl_next_update = $4,
               status_checked_at = $5, crl_read_at = $5, status_error = null, status_due_at = $6
           where id = $1 and (crl_this_update is null or crl_this_update <= $3)
           returning true""", issuer_id, url, this_update, next_update, checked_at, due_at) is not None


async def record_status_failure(conn, issuer_id: uuid.UUID, *, error: str, checked_at: datetime,
                                due_at: datetime) -> None:
    """A fetch that produced no usable CRL: the previous CRL's facts stay, flagged."""
    await conn.execute(
        """update issuers set status_checked_at = $2, status_error = $3, status_due_at = $4
           where id = $1""", issuer_id, checked_at, error, due_at)


async def mark_revoked_by_issuer(conn, issuer_id: uuid.UUID, serial: int, *, revoked_at: datetime,
                                 reason: str | None, seen_at: datetime) -> list[uuid.UUID]:
    """The issuer's revocation of one registered certificate, set once: the ids of its
    rows (one per house it is registered in) not marked before."""
    rows = await conn.fetch(
        """update certificates set issuer_revoked_at = $3, issuer_revocation_reason = $4,
               issuer_revocation_seen_at = $5, updated_at = $5
           where issuer_id = $1 and serial = $2 and issuer_revoked_at is null
           returning id""", issuer_id, Decimal(serial), revoked_at, reason, seen_at)
    return [r["id"] for r in rows]


async def crl_next_updates(conn) -> list[Record]:
    """Each issuer's newest CRL's nextUpdate (the freshness gauge)."""
    return await conn.fetch(
        """select id, subject_dn, certificate_der, crl_next_update from issuers
           where crl_next_update is not null""")


# -- the Trusted List --------------------------------------------------------------------

_IMPORT_COLUMNS = """id, sequence_number, territory, issued_at, next_update, digest, services, uploaded_at,
    uploaded_by, applied_at, applied_by, result"""


async def insert_trusted_list_import(conn, import_id: uuid.UUID, *, sequence_number: int, territory: str,
                                     issued_at: datetime | None, next_update: datetime | None, digest: bytes,
                                     services: list[dict], actor: str, at: datetime) -> Record:
    """A verified list, kept until CNAS applies it."""
    return await conn.fetchrow(
        f"""insert into trusted_list_imports (id, sequence_number, territory, issued_at, next_update, digest,
                                              services, uploaded_at, uploaded_by)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {_IMPORT_COLUMNS}""",
        import_id, sequence_number, territory, issued_at, next_update, digest, services, at, actor)


async def lock_trusted_list_import(conn, import_id: uuid.UUID | None) -> Record | None:
    """The import to apply (the newest upload when no id is given), locked."""
    return await conn.fetchrow(
        f"""select {_IMPORT_COLUMNS} from trusted_list_imports
            where ($1::uuid is null or id = $1) order by uploaded_at desc limit 1 for update""", import_id)


async def latest_applied_trusted_list(conn) -> Record | None:
    """The list applied last (what the issuers follow now), or None."""
    return await conn.fetchrow(
        f"""select {_IMPORT_COLUMNS} from trusted_list_imports where applied_at is not null
            order by applied_at desc limit 1""")


async def mark_trusted_list_applied(conn, import_id: uuid.UUID, result: dict, actor: str, at: datetime) -> None:
    await conn.execute(
        """update trusted_list_imports set applied_at = $2, applied_by = $3, result = $4 where id = $1""",
        import_id, at, actor, result)


async def set_issuer_listing(conn, issuer_id: uuid.UUID, *, tsp_name: str, service_name: str, status: str,
                             at: datetime) -> None:
    """What the Trusted List says of an issuer; it is listed (again), not withdrawn."""
    await conn.execute(
        """update issuers set tl_tsp_name = $2, tl_service_name = $3, tl_status = $4, tl_imported_at = $5,
               tl_withdrawn_at = null
           where id = $1""", issuer_id, tsp_name, service_name, status, at)


async def flag_issuer_withdrawn(conn, issuer_id: uuid.UUID, *, status: str | None, at: datetime) -> None:
    """The list no longer grants this issuer: flagged, kept."""
    await conn.execute(
        """update issuers set tl_withdrawn_at = $2, tl_status = coalesce($3, tl_status) where id = $1""",
        issuer_id, at, status)


# -- one certificate, several houses (issue 15) -------------------------------------------

async def lock_serial(conn, issuer_id: uuid.UUID, serial: int) -> None:
    """Serialise registrations of one (issuer, serial) until the transaction ends: two
    providers' users registering it at once must not both succeed."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"certs-serial:{issuer_id}:{serial}")


async def holders_of_serial(conn, issuer_id: uuid.UUID, serial: int) -> list[Record]:
    """Who already has (issuer, serial) registered: user, house, provider."""
    return await conn.fetch(
        "select id, username, cas, provider_cui from certificates where issuer_id = $1 and serial = $2",
        issuer_id, Decimal(serial))


# -- renewals (issue 15) ---------------------------------------------------------------------

_RENEWAL_VIEW = """r.id, r.username, r.cas, r.provider_cui, r.issuer_id, r.serial, r.subject, r.not_before,
    r.not_after, r.replaces, r.presented_at, r.presented_from, r.last_presented_at, r.status, r.decided_at,
    r.decided_by, r.reason, r.certificate_id, i.subject_dn as issuer_dn,
    o.serial as old_serial, o.subject as old_subject, o.not_before as old_not_before,
    o.not_after as old_not_after, o.status as old_status, oi.subject_dn as old_issuer_dn"""
_RENEWAL_FROM = """renewals r
    join issuers i on i.id = r.issuer_id
    join certificates o on o.id = r.replaces
    join issuers oi on oi.id = o.issuer_id"""


async def user_certificates(conn, username: str) -> list[Record]:
    """The user's certificates with their DER: what a renewal may follow."""
    return await conn.fetch(
        """select id, status, not_after, certificate_der, issuer_revoked_at from certificates
           where username = $1 order by created_at""", username)


async def is_registered(conn, username: str, issuer_id: uuid.UUID, serial: int) -> bool:
    """Whether the user already has (issuer, serial) registered."""
    return await conn.fetchval(
        "select exists (select 1 from certificates where username = $1 and issuer_id = $2 and serial = $3)",
        username, issuer_id, Decimal(serial))


async def record_renewal(conn, *, renewal_id: uuid.UUID, username: str, cas: str, provider_cui: str,
                         issuer_id: uuid.UUID, serial: int, subject: str, not_before: datetime,
                         not_after: datetime, certificate_der: bytes, replaces: uuid.UUID,
                         presented_at: datetime, presented_from: str | None) -> Record:
    """A presented renewal, or a later presentation of one already recorded (its id,
    status, and whether this call created it)."""
    return await conn.fetchrow(
        """insert into renewals as r (id, username, cas, provider_cui, issuer_id, serial, subject, not_before,
                                      not_after, certificate_der, replaces, presented_at, presented_from,
                                      last_presented_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12)
           on conflict (username, issuer_id, serial) do update
              -- Reports may be handled out of order: the earliest presentation is the request.
              set presented_from = case when excluded.presented_at < r.presented_at then excluded.presented_from
                                        else r.presented_from end,
                  presented_at = least(r.presented_at, excluded.presented_at),
                  last_presented_at = greatest(r.last_presented_at, excluded.last_presented_at)
           returning id, status, (xmax = 0) as created""",
        renewal_id, username, cas, provider_cui, issuer_id, Decimal(serial), subject, not_before, not_after,
        certificate_der, replaces, presented_at, presented_from)


async def get_renewal(conn, renewal_id: uuid.UUID) -> Record | None:
    """One renewal as the API shows it, with the certificate it follows."""
    return await conn.fetchrow(f"select {_RENEWAL_VIEW}, r.certificate_der from {_RENEWAL_FROM} where r.id = $1",
                               renewal_id)


async def lock_renewal(conn, renewal_id: uuid.UUID) -> Record | None:
    """One renewal's row, locked for its decision."""
    return await conn.fetchrow(
        """select id, username, cas, issuer_id, serial, replaces, status, certificate_der, presented_at
           from renewals where id = $1 for update""", renewal_id)


async def decide_renewal(conn, renewal_id: uuid.UUID, *, status: str, at: datetime, actor: str,
                         reason: str | None, certificate_id: uuid.UUID | None) -> None:
    """Record the house's decision."""
    await conn.execute(
        """update renewals set status = $2, decided_at = $3, decided_by = $4, reason = $5, certificate_id = $6
           where id = $1""", renewal_id, status, at, actor, reason, certificate_id)


async def list_renewals(conn, cas: str | None, status: str | None, *, limit: int, offset: int) -> list[Record]:
    """A house's renewals (every house's for null), newest presented first."""
    return await conn.fetch(
        f"""select {_RENEWAL_VIEW} from {_RENEWAL_FROM}
            where ($1::text is null or r.cas = $1) and ($2::text is null or r.status = $2)
            order by r.presented_at desc, r.id limit $3 offset $4""", cas, status, limit, offset)


async def count_renewals(conn, cas: str | None, status: str | None) -> int:
    """How many renewals the listing's filters match."""
    return await conn.fetchval(
        """select count(*) from renewals r where ($1::text is null or r.cas = $1)
           and ($2::text is null or r.status = $2)""", cas, status)


async def auto_approve_of(conn, cas: str) -> bool:
    """Whether the house approves renewals automatically (no row: the national default, off)."""
    return bool(await conn.fetchval("select auto_approve from house_renewal_settings where cas = $1", cas))


async def set_auto_approve(conn, cas: str, auto_approve: bool, actor: str, at: datetime) -> None:
    """Switch a house's automatic approval on or off."""
    await conn.execute(
        """insert into house_renewal_settings (cas, auto_approve, updated_at, updated_by) values ($1, $2, $3, $4)
           on conflict (cas) do update set auto_approve = excluded.auto_approve, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by""", cas, auto_approve, at, actor)


async def count_expiring(conn, cas: str | None, now: datetime, horizon: datetime,
                         windows: list[int]) -> list[Record]:
    """(cas, days, count) for each house and window: certificates not revoked whose
    validity ends within ``days`` days of ``now`` (the listing's expiring_within_days).
    ``horizon`` (the widest window's end) bounds the scan to a range of the
    certificates_expiring index; only the few rows in it are counted per window."""
    return await conn.fetch(
        """select c.cas, w.days, count(*)::int as count
             from (select cas, not_after from certificates
                    where ($1::text is null or cas = $1) and status <> 'revoked'
                      and not_after >= $2 and not_after <= $3) c
             cross join unnest($4::int[]) as w(days)
            where c.not_after <= $2 + make_interval(days => w.days)
            group by c.cas, w.days""", cas, now, horizon, windows)
