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

    @classmethod
    def from_row(cls, row) -> "KeyRecord":
        return cls(row["username"], row["cas"], row["provider_cui"], row["provider_name"],
                   row["key_digest"], row["issued_at"], tuple(row["previous_digests"] or ()),
                   row["deleted_at"], row["version"])

    @property
    def active(self) -> bool:
        return self.deleted_at is None


def _remember(previous: tuple[str, ...], digest_hex: str | None) -> tuple[str, ...]:
    if not digest_hex or digest_hex in previous:
        return previous
    return (previous + (digest_hex,))[-PREVIOUS_KEPT:]


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
        return replace(current, previous_digests=_remember(current.previous_digests, key_digest))
    revived = current.deleted_at is not None and issued_at > current.deleted_at
    return replace(current, cas=cas, provider_cui=provider_cui, provider_name=provider_name,
                   key_digest=key_digest, issued_at=issued_at,
                   previous_digests=_remember(current.previous_digests, current.key_digest),
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
