"""The in-memory status source the OCSP hot path reads, and its cache of signed answers.

Nothing here touches the database: the service loads the registry at start and keeps
it current from events, so that answering a request is a few dict look-ups. All
methods are synchronous and O(1); the service uses the registry from one event loop.

Invalidation works by versions rather than by deleting cache entries: every change
(an issuer added or re-signed, a certificate upserted or removed) takes the next value
of one registry-wide counter, and a lookup reports the newest version among its issuer
and its certificate. A cached answer is keyed by that version, so the first lookup after
a change misses at once, and the stale entry simply ages out of the LRU.
"""
from __future__ import annotations

import dataclasses
import hashlib
import struct
import sys
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Literal

from asn1crypto import x509 as asn1_x509

from services.ocsp.responder.codec import HASH_SIZES, CertId, ParsedRequest
from services.ocsp.responder.responses import REVOCATION_REASONS, ResponderIdentity, SingleAnswer

__all__ = [
    "CachedResponse",
    "CertificateRecord",
    "Issuer",
    "Lookup",
    "Registry",
    "ResponseCache",
    "issuer_hashes",
]

IssuerHashes = Mapping[str, tuple[bytes, bytes]]


def issuer_hashes(issuer_cert_der: bytes) -> dict[str, tuple[bytes, bytes]]:
    """(issuerNameHash, issuerKeyHash) of a CA certificate for SHA-1/256/384/512.

    The name hash covers the CA's subject exactly as encoded in its certificate; the
    key hash covers the subjectPublicKey BIT STRING value without its unused-bits
    octet (RFC 6960 §4.1.1).
    """
    tbs = asn1_x509.Certificate.load(issuer_cert_der, strict=True)["tbs_certificate"]
    name_der = tbs["subject"].dump()
    key_bits = tbs["subject_public_key_info"]["public_key"].contents[1:]
    return {
        alg: (hashlib.new(alg, name_der).digest(), hashlib.new(alg, key_bits).digest())
        for alg in HASH_SIZES
    }


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA we answer for; ``signer`` is its delegated responder, or None for ours."""

    issuer_id: str
    signer: ResponderIdentity | None
    version: int
    #: The CA certificate (DER) when registered from it: what a TLS trust store needs.
    certificate_der: bytes | None = None


#: A record's five times, packed (microseconds since the epoch; ``_NO_TIME`` for None):
#: changed_at, not_before, not_after, suspended_at, revoked_at.
_TIMES = struct.Struct("<5q")
_NO_TIME = -(1 << 63)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
#: A record's flags: revoked, suspended, revoked by its issuer, and its reason's index
#: (0: none) above them; a small int, so shared by every record (CPython keeps one of each).
_REVOKED, _SUSPENDED, _BY_ISSUER, _REASON_SHIFT = 1, 2, 4, 3
_REASONS = (None, *sorted(REVOCATION_REASONS))
_REASON_INDEX = {reason: index for index, reason in enumerate(_REASONS)}
#: ``_cui`` when the provider's CUI is the user name's own (``<CUI>_CAS-<house>``).
_CUI_OF_USERNAME = True


def _micros(moment: datetime | None) -> int:
    if moment is None:
        return _NO_TIME
    if moment.tzinfo is None:
        raise ValueError("a certificate record's times must carry their time zone")
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime | None:
    return None if micros == _NO_TIME else _EPOCH + timedelta(microseconds=micros)


class CertificateRecord:
    """What we know of one certificate (mirrors the certs service's record); immutable.

    A responder holds one for each of the country's certificates (issue 14: a million, in
    every worker), so the record keeps its fields packed (the times in one ``bytes``, the
    status, suspension and reason in one small int, a UUID id in its 16 octets, the CUI
    only when the user name does not carry it, the holder as its ``holder_key``), and
    gives them back as the attributes below: ~450 bytes less a certificate than a
    dataclass of the same fields."""

    __slots__ = ("issuer_id", "serial", "_id", "username", "cas", "_flags", "_times", "version", "_cui",
                 "holder_key")

    #: The fields, in the constructor's order (``replace`` and comparisons by field use them).
    FIELDS = ("issuer_id", "serial", "certificate_id", "username", "cas", "status", "suspended",
              "suspended_at", "revoked_at", "revocation_reason", "version", "changed_at", "not_before",
              "not_after", "provider_cui", "revoked_by_issuer", "holder_key")

    issuer_id: str
    serial: int
    username: str
    cas: str
    version: int
    #: Who the certificate names (issue 15: how the online channel knows a renewal), as
    #: ``shared.holders.holder_key``.
    holder_key: bytes | None

    def __init__(self, issuer_id: str, serial: int, certificate_id: str | uuid.UUID, username: str, cas: str,
                 status: Literal["good", "revoked"] = "good", suspended: bool = False,
                 suspended_at: datetime | None = None, revoked_at: datetime | None = None,
                 revocation_reason: str | None = None, version: int = 0, changed_at: datetime | None = None,
                 not_before: datetime | None = None, not_after: datetime | None = None,
                 provider_cui: str | None = None, revoked_by_issuer: bool = False,
                 holder_key: bytes | None = None) -> None:
        put = object.__setattr__
        # The ids many records share (three issuers, 44 houses) are held once.
        put(self, "issuer_id", sys.intern(issuer_id))
        put(self, "serial", serial)
        put(self, "_id", _packed_id(certificate_id))
        put(self, "username", username)
        put(self, "cas", sys.intern(cas))
        reason = _REASON_INDEX.get(revocation_reason)
        if reason is None:
            raise ValueError(f"unknown revocation reason {revocation_reason!r}")
        put(self, "_flags", (_REVOKED if status == "revoked" else 0) | (_SUSPENDED if suspended else 0)
            | (_BY_ISSUER if revoked_by_issuer else 0) | (reason << _REASON_SHIFT))
        put(self, "_times", _TIMES.pack(_micros(changed_at), _micros(not_before), _micros(not_after),
                                        _micros(suspended_at), _micros(revoked_at)))
        put(self, "version", version)
        put(self, "_cui", _CUI_OF_USERNAME if provider_cui is not None and provider_cui == _cui_of(username)
            else provider_cui)
        put(self, "holder_key", holder_key)

    @property
    def certificate_id(self) -> str:
        held = self._id
        return str(uuid.UUID(bytes=held)) if type(held) is bytes else held

    @property
    def status(self) -> Literal["good", "revoked"]:
        return "revoked" if self._flags & _REVOKED else "good"

    @property
    def suspended(self) -> bool:
        return bool(self._flags & _SUSPENDED)

    @property
    def revoked_by_issuer(self) -> bool:
        """The revocation is the issuing authority's (its CRL), not SIUI's own."""
        return bool(self._flags & _BY_ISSUER)

    @property
    def revocation_reason(self) -> str | None:
        return _REASONS[self._flags >> _REASON_SHIFT]

    @property
    def changed_at(self) -> datetime | None:
        """The certs service's time of the state this record holds: a late, older event
        (events may arrive out of order) must not overwrite a newer state."""
        return _moment(_TIMES.unpack(self._times)[0])

    @property
    def not_before(self) -> datetime | None:
        return _moment(_TIMES.unpack(self._times)[1])

    @property
    def not_after(self) -> datetime | None:
        return _moment(_TIMES.unpack(self._times)[2])

    @property
    def suspended_at(self) -> datetime | None:
        return _moment(_TIMES.unpack(self._times)[3])

    @property
    def revoked_at(self) -> datetime | None:
        return _moment(_TIMES.unpack(self._times)[4])

    @property
    def provider_cui(self) -> str | None:
        held = self._cui
        return _cui_of(self.username) if held is _CUI_OF_USERNAME else held

    def fields(self) -> dict[str, object]:
        """Every field by name (what the constructor takes)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def replace(self, **changes) -> "CertificateRecord":
        """A copy with ``changes`` (as ``dataclasses.replace`` gives one)."""
        return CertificateRecord(**{**self.fields(), **changes})

    def answer(self, cert_id: CertId) -> SingleAnswer:
        """The OCSP answer: revocation wins over suspension, which is a certificateHold."""
        if self._flags & _REVOKED:
            return SingleAnswer(cert_id, "revoked", self.revoked_at, self.revocation_reason)
        if self._flags & _SUSPENDED:
            return SingleAnswer(cert_id, "revoked", self.suspended_at, "certificate_hold")
        return SingleAnswer(cert_id, "good")

    def _packed(self) -> tuple:
        return (self.issuer_id, self.serial, self._id, self.username, self.cas, self._flags, self._times,
                self.version, self._cui, self.holder_key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not CertificateRecord:
            return NotImplemented
        return self._packed() == other._packed()

    def __hash__(self) -> int:
        return hash(self._packed())

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return "CertificateRecord(" + ", ".join(f"{name}={value!r}" for name, value in self.fields().items()) + ")"


def _packed_id(certificate_id: str | uuid.UUID) -> bytes | str:
    # A UUID (every id the certs service gives: asyncpg's or the text of one) in its 16
    # octets; any other text as it is.
    if not isinstance(certificate_id, str):
        return certificate_id.bytes
    if len(certificate_id) == 36:
        try:
            packed = uuid.UUID(certificate_id)
        except ValueError:
            return certificate_id
        if str(packed) == certificate_id:
            return packed.bytes
    return certificate_id


def _cui_of(username: str) -> str | None:
    cui, separator, _ = username.partition("_CAS-")
    return cui if separator else None


@dataclass(frozen=True, slots=True)
class Lookup:
    """Result of ``Registry.lookup``: which of the three cases, and the state version.

    ``unknown_issuer`` → the caller answers with the ``unauthorized`` response status;
    ``unknown_serial`` → a SingleResponse ``unknown``; ``found`` → ``record.answer()``.
    """

    outcome: Literal["unknown_issuer", "unknown_serial", "found"]
    issuer: Issuer | None = None
    record: CertificateRecord | None = None
    state_version: int = 0

    def answer(self, cert_id: CertId) -> SingleAnswer:
        """The SingleAnswer for a known issuer; ValueError for an unknown one."""
        if self.record is not None:
            return self.record.answer(cert_id)
        if self.issuer is None:
            raise ValueError("no answer for an unknown issuer: respond 'unauthorized'")
        return SingleAnswer(cert_id, "unknown")


_UNKNOWN_ISSUER = Lookup("unknown_issuer")


def _by_name(held) -> tuple[str, ...]:
    """The user names of a certificate's house records (``Registry._houses``' value)."""
    if held is None:
        return ()
    if type(held) is CertificateRecord:
        return (held.username,)
    return tuple(held)



class Registry:
    """Issuers by every CertID hash triple, certificates by (issuer_id, serial)."""

    def __init__(self) -> None:
        self._versions = count(1)
        self._issuers: dict[str, Issuer] = {}
        self._by_hashes: dict[tuple[str, bytes, bytes], Issuer] = {}
        self._hash_keys: dict[str, list[tuple[str, bytes, bytes]]] = {}
        self._records: dict[tuple[str, int], CertificateRecord] = {}
        # Issue 15: one certificate may be registered in several houses (one user each).
        # ``_records`` holds what OCSP answers (the houses' records combined by the
        # state feature's rule); these hold each house's own, for the online channel.
        # National scale (issue 14): nearly every certificate has one house and every user
        # one certificate, so a lone record is held as itself, a dict only for two or more
        # (an empty dict per certificate and per user costs ~450 bytes a certificate).
        self._houses: dict[tuple[str, int], CertificateRecord | dict[str, CertificateRecord]] = {}
        self._by_user: dict[str, CertificateRecord | dict[tuple[str, int], CertificateRecord]] = {}
        #: Bumped whenever the set of issuers (or a signer) changes, so that users of the
        #: issuer list (the online channel's TLS trust store) can tell when to rebuild.
        self.issuers_version = 0

    def add_issuer(self, issuer_id: str, issuer: bytes | IssuerHashes, *,
                   signer: ResponderIdentity | None = None, certificate_der: bytes | None = None) -> Issuer:
        """Register (or replace, signer included) a CA from its DER certificate or hashes.

        ``issuer`` is the CA certificate's DER, or precomputed ``issuer_hashes()`` output
        (for instance as stored in the service's own table).

        Raises ValueError when the hashes are already registered under another id.
        """
        if isinstance(issuer, (bytes, bytearray)):
            certificate_der = bytes(issuer)
            hashes = issuer_hashes(certificate_der)
        else:
            hashes = issuer
        keys = [(alg, name_hash, key_hash) for alg, (name_hash, key_hash) in hashes.items()]
        for key in keys:
            other = self._by_hashes.get(key)
            if other is not None and other.issuer_id != issuer_id:
                raise ValueError(f"issuer already registered as {other.issuer_id!r}")
        self._drop_issuer_keys(issuer_id)
        entry = Issuer(issuer_id, signer, next(self._versions), certificate_der)
        self._issuers[issuer_id] = entry
        self.issuers_version += 1
        self._hash_keys[issuer_id] = keys
        for key in keys:
            self._by_hashes[key] = entry
        return entry

    def set_signer(self, issuer_id: str, identity: ResponderIdentity | None) -> Issuer:
        """Delegate the issuer's OCSP signing to ``identity`` (None: back to ours)."""
        current = self._issuers.get(issuer_id)
        if current is None:
            raise KeyError(issuer_id)
        # A new version: answers cached under the previous signer stop matching.
        entry = Issuer(issuer_id, identity, next(self._versions), current.certificate_der)
        self._issuers[issuer_id] = entry
        self.issuers_version += 1
        for key in self._hash_keys[issuer_id]:
            self._by_hashes[key] = entry
        return entry

    def remove_issuer(self, issuer_id: str) -> bool:
        """Forget a CA (its certificate records stay, unreachable); True if it was known."""
        self._drop_issuer_keys(issuer_id)
        self.issuers_version += 1
        return self._issuers.pop(issuer_id, None) is not None

    def issuer(self, issuer_id: str) -> Issuer | None:
        """The issuer registered under ``issuer_id``, if any."""
        return self._issuers.get(issuer_id)

    def hashes_of(self, issuer_id: str) -> dict[str, tuple[bytes, bytes]]:
        """The issuer's (issuerNameHash, issuerKeyHash) per hash algorithm (empty if unknown)."""
        return {alg: (name_hash, key_hash) for alg, name_hash, key_hash in self._hash_keys.get(issuer_id, ())}

    def issuers(self) -> tuple[Issuer, ...]:
        """Every registered issuer (a snapshot)."""
        return tuple(self._issuers.values())

    def certificates(self) -> tuple[CertificateRecord, ...]:
        """Every certificate record (a snapshot; O(n), not for the hot path)."""
        return tuple(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def empty(self) -> bool:
        """Whether no certificate is held at all, in any house."""
        return not self._records and not self._houses

    def upsert_certificate(self, issuer_id: str, serial: int, *, certificate_id: str, username: str,
                           cas: str, status: Literal["good", "revoked"] = "good", suspended: bool = False,
                           suspended_at: datetime | None = None, revoked_at: datetime | None = None,
                           revocation_reason: str | None = None, changed_at: datetime | None = None,
                           not_before: datetime | None = None, not_after: datetime | None = None,
                           provider_cui: str | None = None, revoked_by_issuer: bool = False,
                           holder_key: bytes | None = None) -> CertificateRecord:
        """Create or replace a certificate's record; its cached answers stop matching at once.

        The issuer need not be registered yet: events may arrive in any order, and a
        record is only reachable through its issuer anyway.
        """
        if status not in ("good", "revoked"):
            raise ValueError(f"status must be 'good' or 'revoked', not {status!r}")
        if status == "revoked" and revoked_at is None:
            raise ValueError("a revoked certificate needs revoked_at")
        if suspended and suspended_at is None:
            raise ValueError("a suspended certificate needs suspended_at")
        if revocation_reason is not None and revocation_reason not in REVOCATION_REASONS:
            raise ValueError(f"unknown revocation reason {revocation_reason!r}")
        record = CertificateRecord(issuer_id, serial, certificate_id, username, cas, status, suspended,
                                   suspended_at, revoked_at, revocation_reason, next(self._versions),
                                   changed_at, not_before, not_after, provider_cui, revoked_by_issuer, holder_key)
        self._records[(issuer_id, serial)] = record
        return record

    def next_version(self) -> int:
        """A version for ``load_certificate``'s record (any number taken is never reused)."""
        return next(self._versions)

    def load_certificate(self, record: CertificateRecord) -> bool:
        """At a load: a certificate no house holds yet, with one house's record (made with
        ``version=next_version()``), is answered from that very record (the houses' records
        combined, when there is one, are that record): one object serves both. False, and
        nothing done, when the certificate is already held (the caller combines the houses)."""
        key = (record.issuer_id, record.serial)
        if key in self._houses or key in self._records:
            return False
        self._records[key] = record
        self._houses[key] = record
        self._put_user_entry(record.username, key, record)
        return True

    def remove_certificate(self, issuer_id: str, serial: int) -> bool:
        """Forget a certificate in every house (it answers ``unknown`` again); True if it was known."""
        held = self._houses.pop((issuer_id, serial), None)
        for username in _by_name(held):
            self._drop_user_entry(username, (issuer_id, serial))
        return self._records.pop((issuer_id, serial), None) is not None

    # -- each house's own record (issue 15) ------------------------------------------------

    def put_house_record(self, record: CertificateRecord) -> None:
        """Keep one house's (one user's) record of a certificate; the answer OCSP gives is
        set apart, by ``upsert_certificate`` with the houses' records combined."""
        key = (record.issuer_id, record.serial)
        held = self._houses.get(key)
        if held is None or (type(held) is CertificateRecord and held.username == record.username):
            self._houses[key] = record
        elif type(held) is CertificateRecord:
            self._houses[key] = {held.username: held, record.username: record}
        else:
            held[record.username] = record
        self._put_user_entry(record.username, key, record)

    def drop_house_record(self, issuer_id: str, serial: int, username: str) -> bool:
        """Forget one house's record; True if it was held."""
        key = (issuer_id, serial)
        held = self._houses.get(key)
        found = None
        if type(held) is CertificateRecord:
            if held.username == username:
                found = held
                del self._houses[key]
        elif held is not None:
            found = held.pop(username, None)
            if len(held) == 1:
                self._houses[key] = next(iter(held.values()))
            elif not held:
                del self._houses[key]
        self._drop_user_entry(username, key)
        return found is not None

    def house_records(self, issuer_id: str, serial: int) -> tuple[CertificateRecord, ...]:
        """Every house's record of a certificate, by user name."""
        held = self._houses.get((issuer_id, serial))
        if held is None:
            return ()
        if type(held) is CertificateRecord:
            return (held,)
        return tuple(held[u] for u in sorted(held))

    def house_record(self, issuer_id: str, serial: int, username: str) -> CertificateRecord | None:
        """One user's record of a certificate."""
        held = self._houses.get((issuer_id, serial))
        if type(held) is CertificateRecord:
            return held if held.username == username else None
        return held.get(username) if held is not None else None

    def user_records(self, username: str) -> tuple[CertificateRecord, ...]:
        """Every certificate registered to one user (a few: the online channel's renewal check)."""
        mine = self._by_user.get(username)
        if mine is None:
            return ()
        if type(mine) is CertificateRecord:
            return (mine,)
        return tuple(mine.values())

    def _put_user_entry(self, username: str, key: tuple[str, int], record: CertificateRecord) -> None:
        mine = self._by_user.get(username)
        if mine is None or (type(mine) is CertificateRecord and (mine.issuer_id, mine.serial) == key):
            # The user name the record holds is the key: one string for both.
            self._by_user[record.username] = record
        elif type(mine) is CertificateRecord:
            self._by_user[username] = {(mine.issuer_id, mine.serial): mine, key: record}
        else:
            mine[key] = record

    def _drop_user_entry(self, username: str, key: tuple[str, int]) -> None:
        mine = self._by_user.get(username)
        if mine is None:
            return
        if type(mine) is CertificateRecord:
            if (mine.issuer_id, mine.serial) == key:
                del self._by_user[username]
            return
        mine.pop(key, None)
        if len(mine) == 1:
            self._by_user[username] = next(iter(mine.values()))
        elif not mine:
            del self._by_user[username]

    def certificate(self, issuer_id: str, serial: int) -> CertificateRecord | None:
        """The record for (issuer_id, serial), if any."""
        return self._records.get((issuer_id, serial))

    def lookup(self, cert_id: CertId) -> Lookup:
        """Resolve a CertID: unknown issuer, unknown serial, or the certificate's record."""
        issuer = self._by_hashes.get(cert_id.issuer_key)
        if issuer is None:
            return _UNKNOWN_ISSUER
        record = self._records.get((issuer.issuer_id, cert_id.serial))
        if record is None:
            # "unknown" depends on nothing but the issuer, so its version is the issuer's.
            return Lookup("unknown_serial", issuer, None, issuer.version)
        return Lookup("found", issuer, record, max(issuer.version, record.version))

    def _drop_issuer_keys(self, issuer_id: str) -> None:
        for key in self._hash_keys.pop(issuer_id, ()):
            self._by_hashes.pop(key, None)


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A signed answer ready to send, with what HTTP caching headers need."""

    der: bytes
    produced_at: datetime
    next_update: datetime
    etag: str
    cert_id_der: bytes


class ResponseCache:
    """LRU of signed single-CertID, nonce-less responses, bounded in entries and in bytes
    (an answer's size depends on its signer: an RSA-4096 delegated signer with a chain
    makes answers several times larger than ours).

    Keyed by (issuer_id, serial, hash_algorithm, state_version): a state change gives a
    new version, so stale answers are never served. An entry is served only until
    ``next_update - refresh_margin``, so clients never get an answer about to expire.
    """

    def __init__(self, max_entries: int = 100_000, refresh_margin: timedelta = timedelta(minutes=10), *,
                 max_bytes: int = 256 * 1024 * 1024):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.refresh_margin = refresh_margin
        self.size_bytes = 0
        self._entries: OrderedDict[tuple[str, int, str, int], CachedResponse] = OrderedDict()

    @staticmethod
    def cacheable(request: ParsedRequest) -> bool:
        """Only a single CertID without nonce gives a response others can reuse."""
        return request.nonce is None and len(request.cert_ids) == 1

    @staticmethod
    def _key(lookup: Lookup, cert_id: CertId) -> tuple[str, int, str, int]:
        if lookup.issuer is None:
            raise ValueError("unknown issuers are answered 'unauthorized', never cached")
        return (lookup.issuer.issuer_id, cert_id.serial, cert_id.hash_algorithm, lookup.state_version)

    def get(self, lookup: Lookup, cert_id: CertId, now: datetime) -> CachedResponse | None:
        """The cached answer for this CertID in this state, if fresh enough to serve."""
        key = self._key(lookup, cert_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.next_update - self.refresh_margin:
            self._drop(key)
            return None
        if cert_id.der and entry.cert_id_der != cert_id.der:
            # Same question, different encoding (NULL vs absent hash parameters): the
            # cached bytes would echo a CertID that client does not recognise.
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, lookup: Lookup, cert_id: CertId, der: bytes, *, produced_at: datetime,
            next_update: datetime) -> CachedResponse:
        """Store a freshly signed response, evicting the least recently used beyond the cap."""
        key = self._key(lookup, cert_id)
        etag = '"' + hashlib.sha256(der).hexdigest() + '"'  # strong validator: the body's SHA-256
        entry = CachedResponse(der, produced_at, next_update, etag, cert_id.der)
        self._drop(key)
        self._entries[key] = entry
        self.size_bytes += len(der)
        while len(self._entries) > self.max_entries or self.size_bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size_bytes -= len(evicted.der)
        return entry

    def _drop(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size_bytes -= len(entry.der)

    def clear(self) -> None:
        """Drop everything (e.g. when the service's own responder identity changes)."""
        self._entries.clear()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
