"""The events services exchange, and their JSON envelope.

Names are in the past tense: each says what happened. The wire form is
``{"id", "type", "version", "occurred_at", "cas", "data"}``; fields are only ever added,
and a consumer ignores the ones it does not know, so producers can move first.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from shared.clock import Clock, utc_now
from shared.usernames import house_of


class EventDecodeError(ValueError):
    """A message body that is not an event envelope this code can read, or an event that
    reads but can never be applied (it names no real house). A consumer dead-letters it
    at once: retrying cannot change it."""


@dataclass(frozen=True)
class EventData:
    """Base of every event's payload; subclasses set TYPE and ROUTING_KEY."""

    TYPE: ClassVar[str]
    ROUTING_KEY: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def to_data(self) -> dict[str, Any]:
        # Payload fields are JSON values already (text, numbers, lists of flat dicts), so a
        # shallow dict serves; dataclasses.asdict would deep-copy every one, which for the
        # presigner's batches of answers (thousands of dicts) cost more than signing them.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_data(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise EventDecodeError(f"{cls.TYPE}: {exc}") from None


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    version: int
    occurred_at: str
    cas: str
    data: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return EVENT_TYPES[self.type].ROUTING_KEY if self.type in EVENT_TYPES else self.type

    def house_of(self, username: str) -> str:
        """The house of external user ``username``, which must be this event's house
        (``shared.usernames.house_of``); EventDecodeError when it is not, or names none."""
        try:
            return house_of(username, self.cas)
        except ValueError as exc:
            raise EventDecodeError(f"{self.type} {self.id}: {exc}") from None

    def payload(self):
        """The typed payload (``EventData`` subclass) of this envelope."""
        try:
            cls = EVENT_TYPES[self.type]
        except KeyError:
            raise EventDecodeError(f"unknown event type {self.type!r}") from None
        return cls.from_data(self.data)

    def to_json(self) -> bytes:
        return json.dumps({"id": self.id, "type": self.type, "version": self.version, "occurred_at": self.occurred_at,
                           "cas": self.cas, "data": self.data}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> "Envelope":
        try:
            raw = json.loads(body)
            return cls(id=str(uuid.UUID(raw["id"])), type=str(raw["type"]),
                       version=int(raw["version"]), occurred_at=str(raw["occurred_at"]),
                       cas=str(raw.get("cas") or ""), data=dict(raw["data"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise EventDecodeError(f"not an event envelope: {exc}") from None


def new_envelope(event: EventData, cas: str, *, clock: Clock = utc_now) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), type=event.TYPE, version=event.VERSION,
                    occurred_at=clock().isoformat(), cas=cas, data=event.to_data())


# --- keygen -------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyIssued(EventData):
    """An activation key was generated or reset. Carries the key's keyed hash, never the key."""

    TYPE: ClassVar[str] = "KeyIssued"
    ROUTING_KEY: ClassVar[str] = "keygen.key_issued"
    provider_id: str
    cui: str
    provider_code: str
    provider_name: str
    key_id: str
    key_digest: str  # hex HMAC-SHA256 of the serial under the house-wide pepper
    reset: bool
    issued_at: str
    issued_by: str
    external_user: str


# --- users --------------------------------------------------------------------------

@dataclass(frozen=True)
class ExternalUserCreated(EventData):
    TYPE: ClassVar[str] = "ExternalUserCreated"
    ROUTING_KEY: ClassVar[str] = "users.external_user_created"
    username: str
    cui: str
    provider_code: str
    provider_name: str
    schema: str
    org_unit: str


@dataclass(frozen=True)
class ExternalUserDeleted(EventData):
    TYPE: ClassVar[str] = "ExternalUserDeleted"
    ROUTING_KEY: ClassVar[str] = "users.external_user_deleted"
    username: str


@dataclass(frozen=True)
class SessionRevoked(EventData):
    """A console/API session was ended (logout, user disabled): its token id is dead."""

    TYPE: ClassVar[str] = "SessionRevoked"
    ROUTING_KEY: ClassVar[str] = "users.session_revoked"
    jti: str
    username: str
    expires_at: str


# --- certs --------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuerRegistered(EventData):
    TYPE: ClassVar[str] = "IssuerRegistered"
    ROUTING_KEY: ClassVar[str] = "certs.issuer_registered"
    issuer_id: str
    subject_dn: str
    certificate_pem: str


@dataclass(frozen=True)
class IssuerUpdated(EventData):
    TYPE: ClassVar[str] = "IssuerUpdated"
    ROUTING_KEY: ClassVar[str] = "certs.issuer_updated"
    issuer_id: str
    subject_dn: str
    certificate_pem: str


@dataclass(frozen=True)
class CertificateState(EventData):
    """Everything the OCSP service needs to answer for one certificate, without asking."""

    certificate_id: str
    issuer_id: str
    serial: str  # decimal string: serials reach 20 octets, beyond JSON's safe integers
    username: str
    provider_cui: str
    status: str  # 'active' | 'suspended' | 'revoked'
    changed_at: str
    not_before: str | None = None
    not_after: str | None = None
    certificate_pem: str | None = None
    reason: str | None = None
    changed_by: str | None = None
    # The issuing authority's own word (its CRL), kept apart from SIUI's ``status``: set
    # once a verified CRL of the issuer lists the serial, and carried by every later state
    # event too, so that no consumer loses it when a house changes its own state.
    issuer_revoked_at: str | None = None
    issuer_revocation_reason: str | None = None  # asn1crypto's CRLReason spelling


@dataclass(frozen=True)
class CertificateRegistered(CertificateState):
    TYPE: ClassVar[str] = "CertificateRegistered"
    ROUTING_KEY: ClassVar[str] = "certs.certificate_registered"


@dataclass(frozen=True)
class CertificateSuspended(CertificateState):
    TYPE: ClassVar[str] = "CertificateSuspended"
    ROUTING_KEY: ClassVar[str] = "certs.certificate_suspended"


@dataclass(frozen=True)
class CertificateReinstated(CertificateState):
    TYPE: ClassVar[str] = "CertificateReinstated"
    ROUTING_KEY: ClassVar[str] = "certs.certificate_reinstated"


@dataclass(frozen=True)
class CertificateRevoked(CertificateState):
    TYPE: ClassVar[str] = "CertificateRevoked"
    ROUTING_KEY: ClassVar[str] = "certs.certificate_revoked"


@dataclass(frozen=True)
class CertificateRevokedByIssuer(CertificateState):
    """A verified CRL of the issuing authority lists this registered certificate; its
    ``status`` is still SIUI's own, ``issuer_revoked_at``/``_reason`` say the issuer's."""

    TYPE: ClassVar[str] = "CertificateRevokedByIssuer"
    ROUTING_KEY: ClassVar[str] = "certs.certificate_revoked_by_issuer"


@dataclass(frozen=True)
class RenewalRejected(EventData):
    """A house refused a pending renewal (issue 15): the online channel tells the
    provider why when that certificate is presented again."""

    TYPE: ClassVar[str] = "RenewalRejected"
    ROUTING_KEY: ClassVar[str] = "certs.renewal_rejected"
    renewal_id: str
    username: str
    issuer_id: str
    serial: str  # decimal string
    reason: str
    rejected_at: str
    rejected_by: str | None = None


# --- ocsp ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CertificateUsed(EventData):
    """Last use of certificates, summarised: one event per batch, not per connect."""

    TYPE: ClassVar[str] = "CertificateUsed"
    ROUTING_KEY: ClassVar[str] = "ocsp.certificate_used"
    usages: list[dict[str, str]] = field(default_factory=list)  # [{"certificate_id","last_used_at"}]


@dataclass(frozen=True)
class RenewalPresented(EventData):
    """A desktop with the right credentials presented on :8443 a certificate that is not
    registered, from a registered issuer, naming the holder of one registered to that
    user (``shared.holders``): certs records it as a pending renewal (issue 15)."""

    TYPE: ClassVar[str] = "RenewalPresented"
    ROUTING_KEY: ClassVar[str] = "ocsp.renewal_presented"
    username: str
    issuer_id: str
    serial: str  # decimal string
    certificate_pem: str
    presented_at: str
    presented_from: str | None = None
    #: The registered certificate the online channel matched it to (certs decides anew).
    replaces: str | None = None


@dataclass(frozen=True)
class SignerChanged(EventData):
    """An issuer's delegated OCSP signer was set (``certificate_sha256`` of its
    certificate) or removed (None). Never the key, not even encrypted: each responder
    reads the row (the standby's may lag: it reads until the row is this one)."""

    TYPE: ClassVar[str] = "SignerChanged"
    ROUTING_KEY: ClassVar[str] = "ocsp.signer_changed"
    issuer_id: str
    certificate_sha256: str | None
    changed_at: str


@dataclass(frozen=True)
class AnswersPresigned(EventData):
    """Pre-signed OCSP answers the presigner wrote (issue 14), their bytes carried, so
    every responder serves the same bytes without reading them: a list of
    ``{"issuer_id", "serial" (decimal), "hash_algorithm", "der" (base64), "state",
    "signer_key_hash" (hex), "produced_at", "next_update"}``."""

    TYPE: ClassVar[str] = "AnswersPresigned"
    ROUTING_KEY: ClassVar[str] = "ocsp.answers_presigned"
    answers: list[dict[str, str]] = field(default_factory=list)


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (KeyIssued, ExternalUserCreated, ExternalUserDeleted, SessionRevoked,
                IssuerRegistered, IssuerUpdated, CertificateRegistered, CertificateSuspended,
                CertificateReinstated, CertificateRevoked, CertificateRevokedByIssuer, CertificateUsed,
                RenewalRejected, RenewalPresented, SignerChanged, AnswersPresigned)
}


def iso(moment: datetime | None) -> str | None:
    """How events write a moment: ISO 8601 with its offset (``parse_time`` reads it back)."""
    if moment is not None and moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.isoformat() if moment is not None else None


def parse_time(value: object, what: str = "time") -> datetime:
    """A moment written by ``iso``: ISO 8601 with an offset (``Z`` accepted). A moment
    without one is refused (EventDecodeError), never guessed: the publisher's clock zone
    is unknown here, and an hour's error would reorder suspensions."""
    if isinstance(value, datetime):
        moment = value
    else:
        if not isinstance(value, str) or len(value) > 64:
            raise EventDecodeError(f"{what} is not an ISO 8601 moment: {value!r:.80}")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EventDecodeError(f"{what} is not an ISO 8601 moment: {value!r:.80}") from None
    if moment.tzinfo is None:
        raise EventDecodeError(f"{what} has no time zone: {value!r:.80}")
    return moment


def parse_optional_time(value: object, what: str = "time") -> datetime | None:
    """``parse_time`` for a moment that may be absent (None)."""
    return None if value is None else parse_time(value, what)
