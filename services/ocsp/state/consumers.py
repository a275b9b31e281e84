"""Queue ``ocsp.certs``: certs' events into the ocsp tables, from which a responder
loads its start state (and reloads after its own queue missed events). The responders
themselves follow the same events on their own queues (``follower``), not the tables.

Each handler runs inside the inbox transaction (shared.inbox), so a redelivered event
changes nothing twice. Events carry the full state and may arrive out of order: the
tables keep the newest (by certs' ``changed_at`` / the event's ``occurred_at``) and
ignore older ones, as ``apply.certificate_state`` does in memory.
"""
from __future__ import annotations

import uuid

import asyncpg
from cryptography import x509

from services.ocsp.state import queries
from services.ocsp.state.apply import STATUSES, certificate_der
from shared.events import (CertificateReinstated, CertificateRegistered, CertificateRevoked,
                           CertificateRevokedByIssuer, CertificateState,
                           CertificateSuspended, Envelope, EventDecodeError, IssuerRegistered, IssuerUpdated,
                           parse_optional_time, parse_time)
from shared.holders import holder_key, holder_of
from shared.inbox import Handler


async def on_issuer(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """IssuerRegistered / IssuerUpdated: store the CA certificate every CertID is matched by."""
    event: IssuerRegistered = envelope.payload()
    issuer_id = uuid.UUID(event.issuer_id)
    await queries.upsert_issuer(conn, issuer_id, event.subject_dn, certificate_der(event.certificate_pem),
                                parse_time(envelope.occurred_at, "occurred_at"))


async def on_certificate(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """CertificateRegistered / Suspended / Reinstated / Revoked / RevokedByIssuer: the full
    state, newest wins."""
    event: CertificateState = envelope.payload()
    if event.status not in STATUSES:
        raise EventDecodeError(f"unknown certificate status {event.status!r}")
    der = certificate_der(event.certificate_pem)
    holder = holder_of(x509.load_der_x509_certificate(der).subject) if der else None
    await queries.upsert_certificate(
        conn, issuer_id=uuid.UUID(event.issuer_id), serial=int(event.serial),
        certificate_id=uuid.UUID(event.certificate_id), username=event.username, cas=envelope.house_of(event.username),
        provider_cui=event.provider_cui, status=event.status,
        changed_at=parse_time(event.changed_at, "changed_at"),
        revocation_reason=event.reason if event.status == "revoked" else None,
        not_before=parse_optional_time(event.not_before, "not_before"),
        not_after=parse_optional_time(event.not_after, "not_after"),
        certificate_der=der,
        holder=holder.to_json() if holder is not None else None,
        holder_key=holder_key(holder) if holder is not None else None,
        issuer_revoked_at=parse_optional_time(event.issuer_revoked_at, "issuer_revoked_at"),
        issuer_revocation_reason=event.issuer_revocation_reason if event.issuer_revoked_at else None)


HANDLERS: dict[str, Handler] = {
    IssuerRegistered.TYPE: on_issuer,
    IssuerUpdated.TYPE: on_issuer,
    CertificateRegistered.TYPE: on_certificate,
    CertificateSuspended.TYPE: on_certificate,
    CertificateReinstated.TYPE: on_certificate,
    CertificateRevoked.TYPE: on_certificate,
    CertificateRevokedByIssuer.TYPE: on_certificate,
}
