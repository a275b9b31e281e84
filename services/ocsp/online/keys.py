"""External users' activation keys as the online channel needs them: per user, the
digest of the current key and of the keys a reset replaced. Pure rules, no I/O.

keygen publishes ``KeyIssued`` with the key's keyed hash (never the key); the ``ocsp.keys``
consumer (``consumers``) applies the rules here and keeps one row per user in
``external_user_keys``; every process keeps the rows in memory (``keystore``), so a
connect checks the key without a database round trip and without calling keygen.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from shared.license import MalformedSerial, digest

PREVIOUS_KEPT = 20  # replaced keys remembered per user, enough to say "key_replaced"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One external user (``<CUI>_CAS-<cas>``) and their key digests (lower-case hex)."""

    username: str
    cas: str
    provider_cui: str | None = None
    provider_name: str | None = None
    key_digest: str | None = None
    issued_at: datetime | None = None
    previous_digests: tuple[str, ...] = ()
    deleted_at: datetime | None = None
    version: int = 0
    # When each of ``previous_digests`` stopped being current (same order; None when not
    # known: rows kept before the channel recorded it), for "replaced on ..." messages.
    previous_replaced_at: tuple[datetime | None, ...] = ()

    @classmethod
    def from_row(cls, row) -> "KeyRecord":
        previous = tuple(row["previous_digests"] or ())
        return cls(row["username"], row["cas"], row["provider_cui"], row["provider_name"],
                   row["key_digest"], row["issued_at"], previous, row["deleted_at"], row["version"],
                   _aligned(previous, row["previous_replaced_at"]))

    @property
    def active(self) -> bool:
        return self.deleted_at is None


def _aligned(previous: tuple[str, ...], times) -> tuple[datetime | None, ...]:
    """The replacement times as long as the digests (padded with "not known")."""
    times = tuple(times or ())[:len(previous)]
    return times + (None,) * (len(previous) - len(times))


def _remember(current: KeyRecord, digest_hex: str | None,
              replaced_at: datetime | None) -> tuple[tuple[str, ...], tuple[datetime | None, ...]]:
    """The replaced keys and their replacement times with ``digest_hex`` added."""
    previous = current.previous_digests
    times = _aligned(previous, current.previous_replaced_at)
    if not digest_hex or digest_hex in previous:
        return previous, times
    return (previous + (digest_hex,))[-PREVIOUS_KEPT:], (times + (replaced_at,))[-PREVIOUS_KEPT:]


def _next_issue_after(current: KeyRecord, issued_at: datetime) -> datetime | None:
    """When a key issued at ``issued_at`` but learnt late (its event came after newer
    ones) was replaced: by the first known key issued after it. Every known key but the
    first was issued exactly when the one before it was replaced, so those issue times
    are the replacement times kept plus the current key's."""
    later = [t for t in (*current.previous_replaced_at, current.issued_at) if t is not None and t > issued_at]
    return min(later) if later else None


def apply_key_issued(current: KeyRecord | None, *, username: str, cas: str, provider_cui: str,
                     provider_name: str, key_digest: str, issued_at: datetime) -> KeyRecord:
    """The record after a ``KeyIssued``. The newest ``issued_at`` wins: a reset replaces
    the key at once, and a late, older event only joins the replaced keys."""
    key_digest = key_digest.lower()
    if current is None:
        return KeyRecord(username, cas, provider_cui, provider_name, key_digest, issued_at)
    if current.key_digest == key_digest:
        return current
    if current.issued_at is not None and issued_at <= current.issued_at:
        previous, times = _remember(current, key_digest, _next_issue_after(current, issued_at))
        return replace(current, previous_digests=previous, previous_replaced_at=times)
    revived = current.deleted_at is not None and issued_at > current.deleted_at
    # The current key (if any) stops being current at the moment the new one is issued.
    previous, times = _remember(current, current.key_digest, issued_at)
    return replace(current, cas=cas, provider_cui=provider_cui, provider_name=provider_name,
                   key_digest=key_digest, issued_at=issued_at,
                   previous_digests=previous, previous_replaced_at=times,
                   deleted_at=None if revived else current.deleted_at)


def apply_user_created(current: KeyRecord | None, *, username: str, cas: str, provider_cui: str,
                       provider_name: str, at: datetime) -> KeyRecord:
    """The record after ``ExternalUserCreated`` (usually after the key is known)."""
    if current is None:
        return KeyRecord(username, cas, provider_cui, provider_name)
    revived = current.deleted_at is not None and at > current.deleted_at
    return replace(current, provider_cui=current.provider_cui or provider_cui,
                   provider_name=current.provider_name or provider_name,
                   deleted_at=None if revived else current.deleted_at)


def apply_user_deleted(current: KeyRecord | None, *, username: str, cas: str, at: datetime) -> KeyRecord:
    """The record after ``ExternalUserDeleted``: kept as a tombstone, so that a late
    ``KeyIssued`` older than the deletion cannot bring the user back."""
    if current is None:
        return KeyRecord(username, cas, deleted_at=at)
    if current.deleted_at is not None and current.deleted_at >= at:
        return current
    if current.issued_at is not None and current.issued_at > at:
        return current  # a key issued after the deletion: the user exists again
    return replace(current, deleted_at=at)


KeyVerdict = Literal["ok", "unknown_user", "wrong_key", "key_malformed", "key_replaced"]


def check_key(record: KeyRecord | None, serial: str, pepper: bytes) -> KeyVerdict:
    """Whether ``serial`` is the current key of ``record``'s user (constant-time compare)."""
    if record is None or not record.active:
        return "unknown_user"
    try:
        presented = digest(serial, pepper).hex()
    except MalformedSerial:
        return "key_malformed"
    if record.key_digest and hmac.compare_digest(presented, record.key_digest):
        return "ok"
    if any(hmac.compare_digest(presented, old) for old in record.previous_digests):
        return "key_replaced"
    return "wrong_key"


def replaced_at(record: KeyRecord | None, digest_hex: str | None) -> datetime | None:
    """When the replaced key with digest ``digest_hex`` stopped being current, if known."""
    if record is None or not digest_hex:
        return None
    times = _aligned(record.previous_digests, record.previous_replaced_at)
    for old, at in zip(record.previous_digests, times):
        if hmac.compare_digest(old, digest_hex):
            return at
    return None


def replaced_at_of_serial(record: KeyRecord | None, serial: str, pepper: bytes) -> datetime | None:
    """``replaced_at`` for a serial as the desktop sent it (a refusal's detail only)."""
    try:
        return replaced_at(record, digest(serial, pepper).hex())
    except MalformedSerial:
        return None
