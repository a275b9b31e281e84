"""The rules that put the responders' state into a process's ``Registry``: pure
functions, no I/O. A row (at load) and an event (``certificate_state``: a certs event
merged with the record held, as the tables merge it) carry the same fields; events may
come twice and out of order: the newest state wins, an older or repeated one is ignored."""
from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from services.ocsp.responder import publish_delegated
from services.ocsp.responder.presigned import (DER, GOOD, PRODUCED_AT, PresignedAnswer, PresignedStore,
                                               canonical_cert_id, presigned_answer)
from services.ocsp.responder.registry import CertificateRecord, Registry
from services.ocsp.responder.responses import REVOCATION_REASONS, ResponderIdentity
from services.ocsp.state.houses import combined
from services.ocsp.state.signers import decrypt_identity
from shared.events import CertificateState, Envelope, EventDecodeError, iso, parse_optional_time, parse_time
from shared.holders import Holder, holder_key, holder_of
from shared.logging import get_logger

log = get_logger(__name__)


STATUSES = ("active", "suspended", "revoked")


def _time(value: Any) -> datetime | None:
    # Rows and events (``certificate_state``) carry datetimes.
    return parse_optional_time(value, "certificate state time")


def certificate_der(pem: str | None) -> bytes | None:
    """The DER of an event's ``certificate_pem`` (None when it carries none)."""
    if not pem:
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise EventDecodeError(f"certificate_pem: {exc}") from None


def issuer_key(issuer_id: str) -> str:
    """An issuer id as the registry holds it (``str`` of the UUID, as rows give it)."""
    try:
        return str(uuid.UUID(str(issuer_id)))
    except ValueError:
        raise EventDecodeError(f"issuer_id {str(issuer_id)[:50]!r} is not a UUID") from None


def certificate_state(envelope: Envelope, current: CertificateRecord | None) -> dict[str, Any] | None:
    """The state a certs certificate event gives that house's record, merged with the
    record held (``current``) exactly as ``queries.upsert_certificate`` merges a row, so
    that a responder following events holds what the tables hold; None when the held
    record stands: it is newer, or SIUI revoked it (final). EventDecodeError when the
    event cannot be applied."""
    event: CertificateState = envelope.payload()
    if event.status not in STATUSES:
        raise EventDecodeError(f"unknown certificate status {event.status!r}")
    try:
        serial = int(event.serial)
    except (TypeError, ValueError):
        raise EventDecodeError(f"serial {str(event.serial)[:50]!r} is not a decimal number") from None
    changed_at = parse_time(event.changed_at, "changed_at")
    if current is not None:
        if current.changed_at is not None and changed_at < current.changed_at:
            return None
        if current.status == "revoked" and not current.revoked_by_issuer:
            return None
    der = certificate_der(event.certificate_pem)
    holder = holder_key(holder_of(x509.load_der_x509_certificate(der).subject)) if der else None
    suspended_at = None
    if event.status == "suspended":
        # A repeated suspension keeps the first one's time: that is the hold's start.
        suspended_at = current.suspended_at if current is not None and current.suspended else changed_at
    issuer_revoked_at = parse_optional_time(event.issuer_revoked_at, "issuer_revoked_at")
    issuer_reason = event.issuer_revocation_reason if issuer_revoked_at else None
    if current is not None and current.revoked_by_issuer:
        # The issuer's revocation, once known, stays (a publisher may not carry it yet).
        issuer_revoked_at, issuer_reason = current.revoked_at, current.revocation_reason
    return {
        "issuer_id": issuer_key(event.issuer_id), "serial": serial, "certificate_id": event.certificate_id,
        "username": event.username, "cas": envelope.house_of(event.username), "provider_cui": event.provider_cui,
        "status": event.status, "changed_at": changed_at, "suspended_at": suspended_at,
        "revoked_at": changed_at if event.status == "revoked" else None,
        "revocation_reason": event.reason if event.status == "revoked" else None,
        "not_before": parse_optional_time(event.not_before, "not_before") or (current and current.not_before),
        "not_after": parse_optional_time(event.not_after, "not_after") or (current and current.not_after),
        "holder_key": holder or (current.holder_key if current is not None else None),
        "issuer_revoked_at": issuer_revoked_at, "issuer_revocation_reason": issuer_reason,
    }


def apply_certificate(registry: Registry, state: dict[str, Any], *, only_if_newer: bool = True) -> bool:
    """Put one house's state of a certificate (a row or a note) into ``registry``, then
    the answer OCSP gives across its houses (``houses.combined``); True if that changed.

    A state older than the one held for that user is ignored (notes and reloads may
    cross), and an identical one too, so that its cached answers stay valid.
    """
    issuer_id, serial, username = str(state["issuer_id"]), int(state["serial"]), state["username"]
    changed_at = _time(state["changed_at"])
    current = registry.house_record(issuer_id, serial, username)
    if current is not None and only_if_newer and current.changed_at and changed_at < current.changed_at:
        return False
    status = state["status"]
    reason = state.get("revocation_reason")
    revoked_at = _time(state.get("revoked_at"))
    # The issuer's revocation is answered as a revocation, with the issuer's time and
    # reason, unless SIUI revoked the certificate itself (its own revocation stands).
    by_issuer = status != "revoked" and state.get("issuer_revoked_at") is not None
    if by_issuer:
        revoked_at, reason = _time(state["issuer_revoked_at"]), state.get("issuer_revocation_reason")
    revoked = status == "revoked" or by_issuer
    values = dict(
        certificate_id=str(state["certificate_id"]), username=username, cas=state["cas"],
        status="revoked" if revoked else "good",
        suspended=status == "suspended", suspended_at=_time(state.get("suspended_at")),
        revoked_at=revoked_at if revoked else _time(state.get("revoked_at")),
        # A reason this code cannot sign (a newer CRLReason) is left out rather than refused.
        revocation_reason=reason if revoked and reason in REVOCATION_REASONS else None,
        revoked_by_issuer=by_issuer,
        changed_at=changed_at, not_before=_time(state.get("not_before")),
        not_after=_time(state.get("not_after")), provider_cui=state.get("provider_cui"),
        holder_key=_holder_key(state),
    )
    if current is not None and all(getattr(current, name) == value for name, value in values.items()):
        return False
    registry.put_house_record(CertificateRecord(issuer_id, serial, **values))
    return answer_across_houses(registry, issuer_id, serial)


def load_certificates(registry: Registry, rows) -> int:
    """``apply_certificate`` for each row of a load, without its cost where it can: a
    certificate no house holds yet gets the row's record as its house's and as its answer
    (what ``apply_certificate`` then ``answer_across_houses`` make of it, one object
    instead of two, no dict per row); the rest (a second house, a state held already) go
    through ``apply_certificate``. How many rows were applied."""
    time_of, reasons, make, load = _time, REVOCATION_REASONS, CertificateRecord, registry.load_certificate
    for row in rows:
        status = row["status"]
        reason = row["revocation_reason"]
        revoked_at = time_of(row["revoked_at"])
        by_issuer = status != "revoked" and row["issuer_revoked_at"] is not None
        if by_issuer:
            revoked_at, reason = time_of(row["issuer_revoked_at"]), row["issuer_revocation_reason"]
        revoked = status == "revoked" or by_issuer
        suspended = status == "suspended"
        suspended_at = time_of(row["suspended_at"])
        if (revoked and revoked_at is None) or (suspended and suspended_at is None):
            apply_certificate(registry, row)  # refused there, as it always was
            continue
        record = make(str(row["issuer_id"]), int(row["serial"]), row["certificate_id"], row["username"], row["cas"],
                      "revoked" if revoked else "good", suspended, suspended_at, revoked_at,
                      reason if revoked and reason in reasons else None, registry.next_version(),
                      time_of(row["changed_at"]), time_of(row["not_before"]), time_of(row["not_after"]),
                      row["provider_cui"], by_issuer, _holder_key(row))
        if not load(record):
            apply_certificate(registry, row)
    return len(rows)


def answer_across_houses(registry: Registry, issuer_id: str, serial: int) -> bool:
    """Set the record OCSP answers from to the houses' records combined; True if it changed."""
    chosen = combined(registry.house_records(issuer_id, serial))
    if chosen is None:
        return registry.remove_certificate(issuer_id, serial)
    values = {name: value for name, value in chosen.fields().items()
              if name not in ("issuer_id", "serial", "version")}
    current = registry.certificate(issuer_id, serial)
    if current is not None and all(getattr(current, name) == value for name, value in values.items()):
        return False
    registry.upsert_certificate(issuer_id, serial, **values)
    return True


def forget_certificate(registry: Registry, issuer_id: str, serial: int, username: str) -> None:
    """One house's record is gone from the tables: the answer is its houses' again."""
    if registry.drop_house_record(issuer_id, serial, username):
        answer_across_houses(registry, issuer_id, serial)


def _holder_key(state: dict[str, Any]) -> bytes | None:
    # An event's state (``certificate_state``) and a row carry the key (the consumer stores
    # it, migration 010); a row stored before that, the holder as JSON or, stored before
    # issue 15, only its DER.
    key = state.get("holder_key")
    if key is not None:
        return key
    holder = Holder.from_json(state.get("holder"))
    der = state.get("der_for_holder")
    if holder is None and der:
        try:
            holder = holder_of(x509.load_der_x509_certificate(bytes(der)).subject)
        except ValueError:
            return None
    return holder_key(holder) if holder is not None else None


def apply_issuer(registry: Registry, issuer_id: str, certificate_der: bytes, signer_row, data_key: bytes) -> None:
    """Register (or re-register) an issuer with its delegated signer, if it has one."""
    signer = None
    if signer_row is not None:
        try:
            signer = decrypt_identity(data_key, uuid.UUID(issuer_id), signer_row["certificate_der"],
                                      signer_row["key_nonce"], signer_row["key_ciphertext"])
        except Exception as exc:  # a wrong data key must not take the issuer down with it
            log.error("ocsp_signer_unusable", issuer_id=issuer_id, error=repr(exc))
    register_issuer(registry, issuer_id, certificate_der, signer)


def apply_issuer_event(registry: Registry, issuer_id: str, certificate_der: bytes) -> bool:
    """IssuerRegistered / IssuerUpdated: the CA certificate, the delegated signer held
    kept (it changes by its own event); True if anything changed."""
    current = registry.issuer(issuer_id)
    if current is not None and current.certificate_der == certificate_der:
        return False
    register_issuer(registry, issuer_id, certificate_der, current.signer if current is not None else None)
    return True


def register_issuer(registry: Registry, issuer_id: str, certificate_der: bytes,
                    signer: ResponderIdentity | None) -> None:
    """Put the issuer with ``signer`` (None: the responder's own) into ``registry``."""
    current = registry.issuer(issuer_id)
    if signer is not None or (current is not None and current.signer is not None):
        publish_delegated(_issuer_name(certificate_der), signer)
    if current is not None and current.certificate_der == certificate_der:
        if current.signer is None and signer is None:
            return
        registry.set_signer(issuer_id, signer)
        return
    try:
        registry.add_issuer(issuer_id, certificate_der, signer=signer)
    except ValueError as exc:  # the same CA key and name under two ids: keep the first
        log.error("ocsp_issuer_conflict", issuer_id=issuer_id, error=str(exc))


def _issuer_name(certificate_der: bytes) -> str:
    """The authority's common name (the metric's ``issuer`` label: what an operator reads)."""
    subject = x509.load_der_x509_certificate(certificate_der).subject
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else subject.rfc4514_string()


def presigned_entries(registry: Registry, rows) -> list[tuple[tuple[str, int, str], PresignedAnswer]]:
    """Stored pre-signed answers as the store holds them; rows of an issuer not (or no
    longer) registered are left out: nothing could be answered with them.

    Values every answer shares (the state 'good', the signer's key hash, the times of one
    batch) are held once, not once per answer: a million answers per worker add up."""
    shared: dict[object, object] = {GOOD: GOOD}
    hashes_by_issuer: dict[str, dict] = {}
    entries = []
    for row in rows:
        issuer_id = str(row["issuer_id"])
        hashes = hashes_by_issuer.get(issuer_id)
        if hashes is None:
            hashes = hashes_by_issuer[issuer_id] = registry.hashes_of(issuer_id)
        algorithm = row["hash_algorithm"]
        if algorithm not in hashes:
            continue
        serial = int(row["serial"])
        values = [shared.setdefault(row[name], row[name])
                  for name in ("state", "signer_key_hash", "produced_at", "next_update")]
        entries.append(((issuer_id, serial, shared.setdefault(algorithm, algorithm)), presigned_answer(
            bytes(row["der"]), *values, canonical_cert_id(algorithm, hashes, serial).der)))
    return entries


#: Bounds of an AnswersPresigned event's content (the presigner writes at most
#: WRITE_BATCH answers of a few hundred octets each, split by ``PRESIGNED_MESSAGE_BYTES``).
PRESIGNED_EVENT_ANSWERS = 2_000
PRESIGNED_DER_MAX = 16 * 1024


def presigned_event_answers(batch) -> list[dict[str, str]]:
    """Answers ((issuer_id, serial, algorithm), PresignedAnswer) as AnswersPresigned carries them."""
    return [{"issuer_id": issuer_id, "serial": str(serial), "hash_algorithm": algorithm,
             "der": base64.b64encode(entry[0]).decode(), "state": entry[1], "signer_key_hash": entry[2].hex(),
             "produced_at": iso(entry[3]), "next_update": iso(entry[4])}
            for (issuer_id, serial, algorithm), entry in batch]


def presigned_rows(answers: Any) -> list[dict[str, Any]]:
    """An AnswersPresigned event's answers as rows of ``presigned_answers`` (what
    ``presigned_entries`` reads); EventDecodeError when they are not well formed."""
    if not isinstance(answers, list) or len(answers) > PRESIGNED_EVENT_ANSWERS:
        raise EventDecodeError(f"answers: a list of at most {PRESIGNED_EVENT_ANSWERS}")
    rows = []
    try:
        for answer in answers:
            der = base64.b64decode(answer["der"], validate=True)
            if not 0 < len(der) <= PRESIGNED_DER_MAX:
                raise ValueError(f"der: 1 to {PRESIGNED_DER_MAX} octets")
            rows.append({"issuer_id": str(uuid.UUID(answer["issuer_id"])), "serial": int(answer["serial"]),
                         "hash_algorithm": str(answer["hash_algorithm"]), "der": der, "state": str(answer["state"]),
                         "signer_key_hash": bytes.fromhex(answer["signer_key_hash"]),
                         "produced_at": parse_time(answer["produced_at"], "produced_at"),
                         "next_update": parse_time(answer["next_update"], "next_update")})
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise EventDecodeError(f"AnswersPresigned: {exc}") from None
    return rows


def put_newer(store: PresignedStore, entries) -> int:
    """Put each answer into ``store`` unless the one held was produced later (batches may
    arrive twice or out of order: the outbox relays in parallel lanes) or is the same
    bytes; how many were put."""
    put = 0
    for key, entry in entries:
        current = store.get(*key)
        if current is not None and (current[PRODUCED_AT] > entry[PRODUCED_AT] or current[DER] == entry[DER]):
            continue
        store.put(*key, entry)
        put += 1
    return put
