"""Queue ``ocsp.certs``: certs' events into the ocsp tables, and a note to every process.

Each handler runs inside the inbox transaction (shared.inbox), so a redelivered event
changes nothing twice, and the NOTIFY it sends goes out only if the change commits.
Events carry the full state and may arrive out of order: the tables keep the newest
(by certs' ``changed_at`` / the event's ``occurred_at``) and ignore older ones.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.events import CertificateState, Envelope, EventDecodeError, IssuerRegistered

from . import queries
from .state import certificate_note

STATUSES = ("active", "suspended", "revoked")


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise EventDecodeError(f"{what} has no time zone: {value!r}")
    return moment


def _der(pem: str | None) -> bytes | None:
    if not pem:
        return None
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


async def on_issuer(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """IssuerRegistered / IssuerUpdated: store the CA certificate every CertID is matched by."""
    event: IssuerRegistered = envelope.payload()
    issuer_id = uuid.UUID(event.issuer_id)
    written = await queries.upsert_issuer(conn, issuer_id, event.subject_dn, _der(event.certificate_pem),
                                          _time(envelope.occurred_at, "occurred_at"))
    if written:
        await queries.notify_state(conn, {"kind": "issuer", "issuer_id": str(issuer_id)})


async def on_certificate(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """CertificateRegistered / Suspended / Reinstated / Revoked: the full state, newest wins."""
    event: CertificateState = envelope.payload()
    if event.status not in STATUSES:
        raise EventDecodeError(f"unknown certificate status {event.status!r}")
    row = await queries.upsert_certificate(
        conn, issuer_id=uuid.UUID(event.issuer_id), serial=int(event.serial),
        certificate_id=uuid.UUID(event.certificate_id), username=event.username, cas=envelope.cas,
        provider_cui=event.provider_cui, status=event.status,
        changed_at=_time(event.changed_at, "changed_at"),
        revocation_reason=event.reason if event.status == "revoked" else None,
        not_before=_time(event.not_before, "not_before"), not_after=_time(event.not_after, "not_after"),
        certificate_der=_der(event.certificate_pem))
    if row is not None:
        await queries.notify_state(conn, certificate_note(row))


HANDLERS = {
    "IssuerRegistered": on_issuer,
    "IssuerUpdated": on_issuer,
    "CertificateRegistered": on_certificate,
    "CertificateSuspended": on_certificate,
    "CertificateReinstated": on_certificate,
    "CertificateRevoked": on_certificate,
}
