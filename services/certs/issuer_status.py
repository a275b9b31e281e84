"""The issuing authorities' own status of their certificates, fetched and merged: one round
of the fetcher (claim the issuers that are due, download each one's CRL, verify it, record
it) and what a verified CRL changes. Runs in the background (``status_fetcher``), never
inside a request; a failure is written to the issuer's ``status_error``, never raised.

Policy when the sources disagree or one is stale (README, "Two sources of truth"):
a revocation by the issuer wins over SIUI's "active" (OCSP answers revoked, the online
channel refuses); SIUI's own suspension or revocation stands whatever the issuer says;
a CRL past its nextUpdate, or a source that fails, leaves the registry answering as
before, and is flagged (status_error, issuer_status unknown, the metric and its alert).
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp

from shared.audit import add_system_entry
from shared.clock import Clock
from shared.events import CertificateRevokedByIssuer, iso
from shared.logging import get_logger
from shared.outbox import add_event

from . import queries
from .crl import MAX_URLS, CrlError, CrlRead, next_check, read_crl
from .crl_fetch import FetchError, FetchLimits, fetch_crl
from .operations import state_fields

log = get_logger(__name__)

#: Who the history and the audit say made the change.
ACTOR = "siui-crl-fetcher"
MAX_ERROR = 1000


@dataclass(frozen=True)
class Schedule:
    """When to fetch: ``crl.next_check``'s bounds, the retry after a failure, and how
    long a claimed issuer is held (longer than a whole round of downloads can take)."""

    min_interval: timedelta
    max_interval: timedelta
    retry: timedelta
    lease: timedelta


@dataclass(frozen=True)
class Outcome:
    """What one issuer's fetch came to."""

    issuer_id: uuid.UUID
    ok: bool
    error: str | None = None
    revoked: list[uuid.UUID] = field(default_factory=list)


async def refresh_due(pool, session: aiohttp.ClientSession, limits: FetchLimits, schedule: Schedule,
                      clock: Clock, *, batch: int = 5) -> list[Outcome]:
    """Fetch the status of up to ``batch`` issuers that are due; what each came to."""
    now = clock()
    async with pool.acquire() as conn, conn.transaction():
        rows = await queries.claim_due_issuers(conn, now, now + schedule.lease, batch)
    return [await refresh_issuer(pool, session, limits, schedule, clock, row) for row in rows]


async def refresh_issuer(pool, session: aiohttp.ClientSession, limits: FetchLimits, schedule: Schedule,
                         clock: Clock, issuer) -> Outcome:
    """Try the issuer's CRL sources in order; the first CRL that verifies is used."""
    async with pool.acquire() as conn:
        urls = await queries.issuer_sources(conn, issuer["id"], MAX_URLS)
        serials = [int(s) for s in await queries.live_serials(conn, issuer["id"])]
    problems = []
    for url in urls:
        try:
            body = await fetch_crl(session, url, limits)
            # Parsing and verifying a large CRL is CPU work: off the event loop.
            read = await asyncio.to_thread(read_crl, body, issuer["certificate_der"], serials, clock())
        except (FetchError, CrlError) as exc:
            problems.append(f"{url}: {exc}" if isinstance(exc, CrlError) else str(exc))
            continue
        return await _record(pool, issuer, url, read, schedule, clock)
    error = ("; ".join(problems) or "no CRL source")[:MAX_ERROR]
    now = clock()
    async with pool.acquire() as conn:
        await queries.record_status_failure(conn, issuer["id"], error=error, checked_at=now,
                                            due_at=now + schedule.retry)
    log.warning("issuer_status_failed", issuer_id=str(issuer["id"]), error=error)
    return Outcome(issuer["id"], False, error)


async def _record(pool, issuer, url: str, read: CrlRead, schedule: Schedule, clock: Clock) -> Outcome:
    now = clock()
    due = next_check(now, read.next_update, min_interval=schedule.min_interval, max_interval=schedule.max_interval)
    async with pool.acquire() as conn, conn.transaction():
        kept = await queries.record_crl_read(conn, issuer["id"], url=url, this_update=read.this_update,
                                             next_update=read.next_update, checked_at=now, due_at=due)
        if not kept:  # a lagging mirror: what the newer CRL said stands
            error = (f"{url}: its thisUpdate {read.this_update.isoformat()} is older than the CRL "
                     "already held")
            await queries.record_status_failure(conn, issuer["id"], error=error, checked_at=now, due_at=due)
            return Outcome(issuer["id"], False, error)
        revoked = [certificate_id for serial, (revoked_at, reason) in sorted(read.revoked.items())
                   for certificate_id in await revoke_by_issuer(conn, issuer, serial, revoked_at, reason, url,
                                                                read, now)]
    if revoked:
        log.info("certificates_revoked_by_issuer", issuer_id=str(issuer["id"]), count=len(revoked))
    return Outcome(issuer["id"], True, None, revoked)


async def revoke_by_issuer(conn, issuer, serial: int, revoked_at: datetime, reason: str | None, url: str,
                           read: CrlRead, now: datetime) -> list[uuid.UUID]:
    """Mark one registered certificate revoked by its issuer (every house's row of it,
    issue 15), each with its history line, its event and its audit entry, in the caller's
    transaction; the ids marked now (none if all already were)."""
    marked = await queries.mark_revoked_by_issuer(conn, issuer["id"], serial, revoked_at=revoked_at,
                                                  reason=reason, seen_at=now)
    comment = f"CRL {url[:300]} (thisUpdate {read.this_update.isoformat()}), revoked at {revoked_at.isoformat()}"
    for certificate_id in marked:
        await queries.insert_history(conn, certificate_id, at=now, actor=ACTOR, action="revoked_by_issuer",
                                     reason=reason, comment=comment)
        row = await queries.get_certificate(conn, certificate_id)
        await add_event(conn, CertificateRevokedByIssuer(**state_fields(row, now, ACTOR, row["revocation_reason"])),
                        row["cas"])
        await add_system_entry(conn, "certs", actor=ACTOR, cas=row["cas"], action="revoked_by_issuer",
                               target_kind="certificate", target_id=certificate_id,
                               details={"issuer_id": str(issuer["id"]), "serial": str(serial), "crl_url": url,
                                        "issuer_revoked_at": iso(revoked_at), "reason": reason})
    return marked
