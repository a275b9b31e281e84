"""The renewal hand-over's use cases (issue 15), each in the caller's transaction:
record what the online channel saw presented, approve (register the new certificate),
reject (with the reason the provider reads). The rules are ``renewals`` and
``shared.holders``; the registration itself is ``operations.register_certificate``, so
an approved renewal passes every check a registration by hand passes. No HTTP.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from cryptography import x509

from shared import errors
from shared.auth import Principal, ensure_house
from shared.audit import add_system_entry
from shared.events import RenewalPresented, RenewalRejected, iso, parse_time
from shared.holders import holder_of
from shared.logging import get_logger
from shared.outbox import add_event

from . import operations, queries
from . import renewals as rules
from .pki import certificate_facts, signed_by, to_pem

log = get_logger(__name__)


def _registered(row: asyncpg.Record) -> rules.Registered:
    der = row["certificate_der"]
    holder = holder_of(x509.load_der_x509_certificate(der).subject) if der is not None else None
    return rules.Registered(str(row["id"]), holder, row["status"], row["not_after"],
                            row["issuer_revoked_at"] is not None)


async def record_presented(conn, event: RenewalPresented, at: datetime) -> asyncpg.Record | None:
    """A presentation the online channel reported: a pending renewal (new, or presented
    again), approved at once where the house says so. None when certs' own look finds it
    is not a renewal (the channel's view was older than ours): nothing is recorded."""
    presented_at = parse_time(event.presented_at, "presented_at")
    user = await queries.get_external_user(conn, event.username)
    try:
        issuer = await queries.get_issuer(conn, uuid.UUID(event.issuer_id))
        facts = certificate_facts(event.certificate_pem)
    except (ValueError, errors.Invalid):
        log.warning("renewal_presented_unreadable", username=event.username)
        return None
    why = None
    if user is None or user["deleted_at"] is not None:
        why = "no such user"
    elif issuer is None or facts.issuer_key != issuer["dn_key"] or not signed_by(facts.certificate,
                                                                               issuer["certificate_der"]):
        why = "not issued by a registered issuing authority"
    elif facts.is_ca or not facts.not_before <= presented_at < facts.not_after:
        why = "not a valid user certificate"
    elif await queries.is_registered(conn, user["username"], issuer["id"], facts.serial):
        why = "already registered"
    if why is not None:
        log.info("renewal_presented_ignored", username=event.username, why=why)
        return None
    registered = [_registered(r) for r in await queries.user_certificates(conn, user["username"])]
    replaced = rules.followed(holder_of(facts.certificate.subject), registered)
    if replaced is None:
        log.info("renewal_presented_ignored", username=event.username, why="no registered certificate of the holder")
        return None
    row = await queries.record_renewal(
        conn, renewal_id=uuid.uuid4(), username=user["username"], cas=user["cas"],
        provider_cui=user["provider_cui"], issuer_id=issuer["id"], serial=facts.serial, subject=facts.subject,
        not_before=facts.not_before, not_after=facts.not_after, certificate_der=facts.der,
        replaces=uuid.UUID(replaced.certificate_id), presented_at=presented_at,
        presented_from=(event.presented_from or None) and event.presented_from[:64])
    if not row["created"]:
        return row
    await add_system_entry(conn, "certs", actor="ocsp:online", cas=user["cas"],
                           action="renewal_presented",
                           target_kind="renewal", target_id=row["id"],
                           details={"username": user["username"], "serial": str(facts.serial),
                                    "replaces": replaced.certificate_id, "from": event.presented_from})
    if rules.auto_approvable(await queries.auto_approve_of(conn, user["cas"]), replaced, presented_at):
        robot = Principal(username=rules.AUTO_ACTOR, cas=user["cas"], rights=frozenset())
        try:
            async with conn.transaction():  # a savepoint: a refusal leaves the renewal pending
                await approve(conn, robot, row["id"], at)
        except errors.DomainError as exc:
            # A registration rule says no (another provider holds the serial, say): a person
            # decides instead; raising would only retry the event into the dead-letter queue.
            log.info("renewal_auto_approval_refused", renewal_id=str(row["id"]), why=exc.detail)
            return row
        await add_system_entry(conn, "certs", actor=rules.AUTO_ACTOR, cas=user["cas"],
                               action="renewal_approved",
                               target_kind="renewal", target_id=row["id"],
                               details={"replaces": replaced.certificate_id})
    return row


async def approve(conn, principal: Principal, renewal_id: uuid.UUID, at: datetime) -> uuid.UUID:
    """Register the renewal's certificate for its user (the old one stays as it is);
    returns the new certificate's id. 409 when already decided."""
    current = await _locked(conn, principal, renewal_id)
    rules.check_pending(current["status"])
    registration = operations.Registration(current["username"],
                                           uploaded=certificate_facts(to_pem(current["certificate_der"])))
    certificate_id = await operations.register_certificate(conn, principal, registration, at)
    await queries.insert_history(conn, current["replaces"], at=at, actor=principal.username, action="renewed",
                                 comment=f"renewal {renewal_id} registered as certificate {certificate_id}")
    await queries.decide_renewal(conn, renewal_id, status=rules.APPROVED, at=at, actor=principal.username,
                                 reason=None, certificate_id=certificate_id)
    return certificate_id


async def reject(conn, principal: Principal, renewal_id: uuid.UUID, reason: str, at: datetime) -> None:
    """Refuse the renewal; the online channel shows the provider ``reason``."""
    current = await _locked(conn, principal, renewal_id)
    rules.check_pending(current["status"])
    await queries.decide_renewal(conn, renewal_id, status=rules.REJECTED, at=at, actor=principal.username,
                                 reason=reason, certificate_id=None)
    await add_event(conn, RenewalRejected(renewal_id=str(renewal_id), username=current["username"],
                                          issuer_id=str(current["issuer_id"]), serial=str(int(current["serial"])),
                                          reason=reason, rejected_at=iso(at), rejected_by=principal.username),
                    current["cas"])


async def _locked(conn, principal: Principal, renewal_id: uuid.UUID) -> asyncpg.Record:
    current = await queries.lock_renewal(conn, renewal_id)
    if current is None:
        raise errors.NotFound("no such renewal")
    ensure_house(principal, current["cas"], what="renewal")
    return current
