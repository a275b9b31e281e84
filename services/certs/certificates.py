"""The rules of a user certificate's life: who it may belong to, how its state changes,
and the reasons a revocation may give. Plain functions, no I/O.

States: ``active`` ⇄ ``suspended`` (the seed's *Suspendat* box), and either → ``revoked``,
which is final: a revoked certificate is never reinstated nor suspended again.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import errors
from shared.usernames import parse_external_username

ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
STATUSES = (ACTIVE, SUSPENDED, REVOKED)
REASON_MAX = 500

# RFC 5280 CRLReason values a revocation may give, by their ASN.1 names (as openssl
# prints them); stored and published as asn1crypto spells them, which the OCSP service
# signs with. certificateHold is what a suspension is; removeFromCRL is not a reason.
REVOCATION_REASONS = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "privilegeWithdrawn": "privilege_withdrawn",
    "aACompromise": "aa_compromise",
}
_REASON_LOOKUP = {k.lower(): v for k, v in REVOCATION_REASONS.items()} | {
    v: v for v in REVOCATION_REASONS.values()}


@dataclass(frozen=True)
class Change:
    """A state change to apply: the new status and what the history records."""

    action: str  # 'suspended' | 'reinstated' | 'revoked'
    status: str
    at: datetime
    reason: str | None = None
    comment: str | None = None


def looks_external(username: str) -> bool:
    """Whether a name has the form of an external user (``12433636_CAS-B``) of a real house."""
    return parse_external_username(username) is not None


def external_user_problem(username: str, national: bool) -> str:
    """Why a certificate cannot be registered to this user name (one it cannot see).

    A user nobody knows and, for a county operator, one of another house read the same:
    a county operator must not learn that another house's user exists.
    """
    if not looks_external(username):
        return ("not an external user: certificates belong to a provider's external user "
                "named <CUI>_CAS-<house>")
    where = "" if national else " in your house"
    return f"no external user {username!r}{where}; it appears once the provider has an activation key"


def suspension_change(status: str, suspend: bool, at: datetime, reason: str | None, *,
                      issuer_revoked: bool = False) -> Change | None:
    """The change a *Suspendat* toggle makes, or None when it is already so (idempotent).

    A certificate its issuing authority revoked may still be suspended (it changes
    nothing the issuer said), but not reinstated: the house would be vouching for a
    certificate its own issuer has withdrawn."""
    if status == REVOKED:
        raise errors.Conflict("the certificate is revoked; a revocation cannot be undone or suspended",
                              errors={"suspended": "the certificate is revoked"})
    if suspend == (status == SUSPENDED):
        return None
    if suspend:
        return Change("suspended", SUSPENDED, at, reason)
    if issuer_revoked:
        raise errors.Conflict("the issuing authority has revoked this certificate; it cannot be reinstated",
                              errors={"suspended": "revoked by its issuing authority"})
    return Change("reinstated", ACTIVE, at, reason)


def revocation_change(status: str, reason_code: str, at: datetime, comment: str | None) -> Change:
    """Revoke for good; 409 if it already is."""
    if status == REVOKED:
        raise errors.Conflict("the certificate is already revoked")
    return Change("revoked", REVOKED, at, revocation_reason(reason_code), comment)


def revocation_reason(raw: str) -> str:
    """The stored spelling of a CRLReason given as ``keyCompromise`` or ``key_compromise``."""
    reason = _REASON_LOOKUP.get(raw.strip().lower()) if isinstance(raw, str) else None
    if reason is None:
        allowed = ", ".join(REVOCATION_REASONS)
        raise errors.Invalid(f"reason: use one of {allowed}", errors={"reason": f"must be one of {allowed}"})
    return reason


def free_text(value: str | None, field: str) -> str | None:
    """An operator's optional note, trimmed; 422 if too long."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > REASON_MAX:
        raise errors.Invalid(f"{field} is too long", errors={field: f"at most {REASON_MAX} characters"})
    return text or None


def usage_batch(usages: list[dict[str, Any]]) -> tuple[list[uuid.UUID], list[datetime]]:
    """The well-formed (certificate id, time) pairs of a CertificateUsed batch.

    A malformed entry is skipped, not fatal: one bad item must not park the whole
    batch, and so every other certificate's last use, in the dead-letter queue.
    """
    ids: list[uuid.UUID] = []
    times: list[datetime] = []
    for usage in usages if isinstance(usages, list) else ():
        try:
            certificate_id = uuid.UUID(str(usage["certificate_id"]))
            used_at = datetime.fromisoformat(str(usage["last_used_at"]))
        except (KeyError, TypeError, ValueError):
            continue
        if used_at.tzinfo is None:
            continue  # a time without its zone cannot be placed
        ids.append(certificate_id)
        times.append(used_at)
    return ids, times
