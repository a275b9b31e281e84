"""What the certs service does, one function per use case: each runs in the caller's
transaction, applies the rules (``certificates``, ``pki``), writes the change and its
event through the outbox, and raises ``shared.errors`` when a rule says no. No HTTP.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared import errors
from shared.auth import NATIONAL, Principal, ensure_house
from shared.events import (CertificateRegistered, CertificateReinstated, CertificateRevoked,
                           CertificateSuspended, IssuerRegistered, IssuerUpdated, iso)
from shared.outbox import add_event

from . import certificates as rules
from . import queries
from .pki import CertificateFacts, IssuerFacts, serial_hex, signed_by, to_pem

_STATE_EVENTS = {"suspended": CertificateSuspended, "reinstated": CertificateReinstated,
                 "revoked": CertificateRevoked}


# -- issuing authorities -------------------------------------------------------------

async def register_issuer(conn, facts: IssuerFacts, actor: str, at: datetime) -> asyncpg.Record:
    """Register a CA (409 if one with the same DN, however written, is registered)."""
    existing = await queries.find_issuer_by_key(conn, facts.dn_key)
    if existing is not None:
        raise _issuer_exists(existing["id"], facts.subject_dn)
    try:
        row = await queries.insert_issuer(conn, uuid.uuid4(), facts, actor, at)
    except asyncpg.UniqueViolationError:  # registered at the same moment by someone else
        raise _issuer_exists(None, facts.subject_dn) from None
    await add_event(conn, IssuerRegistered(issuer_id=str(row["id"]), subject_dn=row["subject_dn"],
                                           certificate_pem=to_pem(row["certificate_der"])), NATIONAL)
    return row


async def replace_issuer_certificate(conn, issuer_id: uuid.UUID, facts: IssuerFacts, actor: str,
                                     at: datetime) -> asyncpg.Record:
    """A renewed CA certificate for the same DN (a new validity, perhaps a new key)."""
    current = await queries.lock_issuer(conn, issuer_id)
    if current is None:
        raise errors.NotFound("no such issuing authority")
    if current["dn_key"] != facts.dn_key:
        message = (f"its subject {facts.subject_dn!r} is not this authority's "
                   f"{current['subject_dn']!r}; register a new authority instead")
        raise errors.Invalid(f"certificate_pem: {message}", errors={"certificate_pem": message})
    row = await queries.replace_issuer_certificate(conn, issuer_id, facts, actor, at)
    await add_event(conn, IssuerUpdated(issuer_id=str(row["id"]), subject_dn=row["subject_dn"],
                                        certificate_pem=to_pem(row["certificate_der"])), NATIONAL)
    return row


def _issuer_exists(issuer_id, dn: str) -> errors.Conflict:
    return errors.Conflict(f"an issuing authority with the DN {dn!r} is already registered",
                           **({"issuer_id": str(issuer_id)} if issuer_id else {}))


# -- user certificates ----------------------------------------------------------------

@dataclass(frozen=True)
class Registration:
    """A certificate to register: the seed's form (serial + issuer) or an upload."""

    username: str
    provider: str | None = None
    serial: int | None = None
    issuer_id: uuid.UUID | None = None
    issuer_key: str | None = None  # a typed issuer DN, normalised
    uploaded: CertificateFacts | None = None


async def register_certificate(conn, principal: Principal, reg: Registration, at: datetime) -> uuid.UUID:
    """Register a certificate to an external user of the caller's house; returns its id."""
    problems: dict[str, str] = {}
    user = await queries.get_external_user(conn, reg.username)
    visible = (user is not None and user["deleted_at"] is None
               and (principal.is_national or user["cas"] == principal.cas))
    if not visible:
        problems["username"] = rules.external_user_problem(reg.username, principal.is_national)
    elif reg.provider and reg.provider not in (user["provider_code"], user["provider_cui"]):
        problems["provider"] = f"user {reg.username} belongs to provider {user['provider_code']}"

    upload = reg.uploaded
    if upload is not None:
        issuer = await queries.find_issuer_by_key(conn, upload.issuer_key)
        if issuer is None:
            problems["certificate_pem"] = (f"its issuer {upload.issuer_dn!r} is not a registered "
                                           "issuing authority")
    elif reg.issuer_id is not None:
        issuer = await queries.get_issuer(conn, reg.issuer_id)
        if issuer is None:
            problems["issuer_id"] = "no issuing authority has this id"
    else:
        issuer = await queries.find_issuer_by_key(conn, reg.issuer_key)
        if issuer is None:
            problems["issuer"] = "no issuing authority is registered with this DN"
    if problems:
        raise _rejected(problems)
    if upload is not None:
        _check_upload(upload, issuer, at)

    certificate_id = uuid.uuid4()
    serial = upload.serial if upload is not None else reg.serial
    await _check_shared_serial(conn, issuer, serial, user)
    try:
        await queries.insert_certificate(
            conn, certificate_id=certificate_id, username=user["username"], cas=user["cas"],
            provider_cui=user["provider_cui"], issuer_id=issuer["id"], serial=serial,
            subject=upload.subject if upload else None, not_before=upload.not_before if upload else None,
            not_after=upload.not_after if upload else None, certificate_der=upload.der if upload else None,
            crl_urls=list(upload.crl_urls) if upload else [], actor=principal.username, at=at)
    except asyncpg.UniqueViolationError:
        raise errors.Conflict(f"serial {serial} (0x{serial_hex(serial)}) of {issuer['subject_dn']!r} "
                              "is already registered") from None
    await queries.insert_history(conn, certificate_id, at=at, actor=principal.username, action="registered")
    row = await queries.get_certificate(conn, certificate_id)
    await add_event(conn, CertificateRegistered(**state_fields(row, at, principal.username)), row["cas"])
    return certificate_id


async def _check_shared_serial(conn, issuer: asyncpg.Record, serial: int, user: asyncpg.Record) -> None:
    """One certificate, several houses (issue 15): the same (issuer, serial) may be
    registered once per user, and only for users of one provider (its external user in
    each house). Another provider's certificate stays a 409, as before; the lock makes
    two houses registering it at once for two providers end the same way."""
    await queries.lock_serial(conn, issuer["id"], serial)
    for other in await queries.holders_of_serial(conn, issuer["id"], serial):
        if other["username"] == user["username"] or other["provider_cui"] != user["provider_cui"]:
            # Which user holds it is not said: it may be another house's, or another provider's.
            raise errors.Conflict(f"serial {serial} (0x{serial_hex(serial)}) of {issuer['subject_dn']!r} "
                                  "is already registered")


def _check_upload(upload: CertificateFacts, issuer: asyncpg.Record, at: datetime) -> None:
    if upload.is_ca:
        raise _rejected({"certificate_pem": "this is a CA certificate; register it as an issuing authority"})
    if not signed_by(upload.certificate, issuer["certificate_der"]):
        raise _rejected({"certificate_pem": "its signature does not verify with the key of the "
                                            f"registered issuing authority {issuer['subject_dn']!r}"})
    if upload.not_after < at:
        raise _rejected({"certificate_pem": f"it expired on {upload.not_after.isoformat()}"})


def _rejected(problems: dict[str, str]) -> errors.Invalid:
    detail = "; ".join(f"{name}: {message}" for name, message in problems.items())
    return errors.Invalid(f"the certificate cannot be registered: {detail}", errors=problems)


async def set_suspended(conn, principal: Principal, certificate_id: uuid.UUID, suspend: bool,
                        reason: str | None, at: datetime) -> bool:
    """The seed's *Suspendat* box; True if the state changed (False: it already was so)."""
    current = await _locked(conn, principal, certificate_id)
    change = rules.suspension_change(current["status"], suspend, at, reason,
                                     issuer_revoked=current["issuer_revoked_at"] is not None)
    if change is None:
        return False
    await _apply(conn, principal, certificate_id, change)
    return True


async def revoke(conn, principal: Principal, certificate_id: uuid.UUID, reason_code: str,
                 comment: str | None, at: datetime) -> None:
    """Revoke for good (409 if already revoked)."""
    current = await _locked(conn, principal, certificate_id)
    await _apply(conn, principal, certificate_id, rules.revocation_change(current["status"], reason_code, at, comment))


async def _locked(conn, principal: Principal, certificate_id: uuid.UUID) -> asyncpg.Record:
    # Row lock: two operators toggling at once apply one after the other, each with its event.
    current = await queries.lock_certificate(conn, certificate_id)
    if current is None:
        raise errors.NotFound("no such certificate")
    ensure_house(principal, current["cas"], what="certificate")
    return current


async def _apply(conn, principal: Principal, certificate_id: uuid.UUID, change: rules.Change) -> None:
    await queries.set_certificate_state(conn, certificate_id, status=change.status, at=change.at,
                                        revocation_reason=change.reason if change.action == "revoked" else None)
    await queries.insert_history(conn, certificate_id, at=change.at, actor=principal.username,
                                 action=change.action, reason=change.reason, comment=change.comment)
    row = await queries.get_certificate(conn, certificate_id)
    event = _STATE_EVENTS[change.action](**state_fields(row, change.at, principal.username, change.reason))
    await add_event(conn, event, row["cas"])


def state_fields(row: asyncpg.Record, at: datetime, actor: str, reason: str | None = None) -> dict:
    """The CertificateState fields: the whole state, so that a consumer needs nothing else."""
    der = row["certificate_der"]
    return {"certificate_id": str(row["id"]), "issuer_id": str(row["issuer_id"]),
            "serial": str(int(row["serial"])), "username": row["username"],
            "provider_cui": row["provider_cui"], "status": row["status"], "changed_at": iso(at),
            "not_before": iso(row["not_before"]), "not_after": iso(row["not_after"]),
            "certificate_pem": to_pem(der) if der is not None else None, "reason": reason,
            "changed_by": actor, "issuer_revoked_at": iso(row["issuer_revoked_at"]),
            "issuer_revocation_reason": row["issuer_revocation_reason"]}
