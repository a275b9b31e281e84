"""Pre-signed answers: the bytes every worker of every responder serves for one state.

Boulder and EJBCA sign a certificate's nonce-less answer when its state changes and again
before its nextUpdate, and serve those bytes; with ECDSA (randomised signatures) that is
the only way two workers give byte-identical answers, so the same ETag, so that an
``If-None-Match`` 304 and any HTTP cache in front work across the whole array.

One elected presigner (``services.ocsp.state.presigner``) signs and stores them; each
process's follower puts them here. An entry is served only while it still says what the
registry says (``state_of``) and is signed by the signer the responder would use now
(``signer_key_hash``), and never from ``next_update - margin`` on. Pure: no I/O.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from asn1crypto import algos, core

from services.ocsp.responder.codec import HASH_SIZES, CertId
from services.ocsp.responder.registry import CertificateRecord, IssuerHashes
from services.ocsp.responder.responses import ResponderIdentity, build_response

__all__ = ["CERT_ID", "DER", "ETAG", "GOOD", "NEXT_UPDATE", "PRODUCED_AT", "STATE", "SIGNER", "PresignedAnswer",
           "PresignedStore", "canonical_cert_id", "due", "presigned_answer", "sign_answer", "state_of"]

#: The state text of a good certificate (the usual case, so a constant).
GOOD = "good"

Key = tuple[str, int, str]  # (issuer_id, serial, hash_algorithm)


def state_of(record: CertificateRecord) -> str:
    """What an answer for ``record`` says, as text: 'good' or 'revoked <epoch> <reason>'.

    Exactly what ``CertificateRecord.answer`` encodes (times in whole seconds, as the
    answer carries them), so equal texts mean equal answers up to their signature."""
    if record.status == "revoked":
        return f"revoked {int(record.revoked_at.timestamp())} {record.revocation_reason or ''}"
    if record.suspended:
        return f"revoked {int(record.suspended_at.timestamp())} certificate_hold"
    return GOOD


def canonical_cert_id(hash_algorithm: str, hashes: IssuerHashes, serial: int) -> CertId:
    """The CertID as OpenSSL, cryptography and asn1crypto encode it (hash parameters an
    explicit NULL): a pre-signed answer echoes this encoding, so a request encoded
    otherwise is answered live instead (its client matches CertIDs byte for byte).

    Joined by hand (tests/unit/test_ocsp_presigned_store.py checks it against asn1crypto): a
    reload makes one per stored answer, and asn1crypto costs ~30 µs each."""
    name_hash, key_hash = hashes[hash_algorithm]
    serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    der = _tlv(0x30, _ALGORITHMS[hash_algorithm] + _tlv(0x04, name_hash) + _tlv(0x04, key_hash)
               + _tlv(0x02, serial_der))
    return CertId(hash_algorithm, name_hash, key_hash, serial, der)


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    # A SHA-512 CertID is ~150 octets; nothing here reaches 256.
    return bytes((tag, 0x81, length)) + content


_ALGORITHMS = {name: algos.DigestAlgorithm({"algorithm": name, "parameters": core.Null()}).dump()
               for name in HASH_SIZES}


#: One pre-signed answer: a plain tuple of bytes, text and datetimes, by position
#: (``DER``, ``STATE``, ...). Not a dataclass on purpose: the collector stops tracking a
#: tuple of such atoms, so the store costs garbage collection nothing, however large; a
#: slots dataclass per answer is walked by every collection of its generation (measured
#: under bench.ocsp: 150-330 ms per gen1 or gen2 collection at 100,000 answers, the
#: event loop held all along: the saturation p99).
PresignedAnswer = tuple
DER, STATE, SIGNER, PRODUCED_AT, NEXT_UPDATE, CERT_ID, ETAG = range(7)


def presigned_answer(der: bytes, state: str, signer_key_hash: bytes, produced_at: datetime, next_update: datetime,
                     cert_id_der: bytes) -> PresignedAnswer:
    """An answer as the store holds it, its ETag computed once, here: a strong validator
    from the bytes, so equal bytes on every worker give equal ETags."""
    return (der, state, signer_key_hash, produced_at, next_update, cert_id_der,
            '"' + hashlib.sha256(der).hexdigest() + '"')


class PresignedStore:
    """The process's pre-signed answers by (issuer_id, serial, hash_algorithm).

    ``margin``: an answer is served only until ``next_update - margin``, so that no
    client receives one about to expire (the presigner refreshes long before). Requests
    that find an entry of an older state (the change arrived, its new answer not yet)
    may ``wait`` for the new one instead of signing: the presigner is at work on it.
    """

    def __init__(self, margin: timedelta = timedelta(minutes=5)):
        self.margin = margin
        self._entries: dict[Key, PresignedAnswer] = {}
        self._waiters: dict[Key, list[asyncio.Future]] = {}
        #: The newest ``seq`` applied (the follower reads rows after it).
        self.seq = 0
        #: Clear while the follower's first load still reads the table (the process
        #: serves meanwhile): the presigner's sweep waits for it.
        self.loaded = asyncio.Event()
        self.loaded.set()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, issuer_id: str, serial: int, hash_algorithm: str) -> PresignedAnswer | None:
        """The entry held for that CertID, whatever its state (the caller checks it)."""
        return self._entries.get((issuer_id, serial, hash_algorithm))

    def servable(self, entry: PresignedAnswer, state: str, signer_key_hash: bytes, now: datetime) -> bool:
        """Whether ``entry`` may answer now: same state, same signer, not near its nextUpdate."""
        return entry[STATE] == state and entry[SIGNER] == signer_key_hash and now < entry[NEXT_UPDATE] - self.margin

    def put(self, issuer_id: str, serial: int, hash_algorithm: str, entry: PresignedAnswer) -> None:
        """Hold ``entry`` (replacing the previous one) and wake the requests waiting for it."""
        key = (issuer_id, serial, hash_algorithm)
        previous = self._entries.get(key)
        if previous is not None:
            self.size_bytes -= len(previous[DER])
        self._entries[key] = entry
        self.size_bytes += len(entry[DER])
        waiters = self._waiters.pop(key, None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(entry)

    def replace_all(self, entries: Iterable[tuple[Key, PresignedAnswer]], seq: int) -> None:
        """Hold exactly ``entries`` (a reload), up to ``seq``; waiters are woken for theirs."""
        old = self._entries
        self._entries, self.size_bytes = {}, 0
        for (issuer_id, serial, algorithm), entry in entries:
            self.put(issuer_id, serial, algorithm, entry)
        self.seq = seq  # the table's own: after a restore it may even be lower
        old.clear()

    def wait(self, issuer_id: str, serial: int, hash_algorithm: str) -> asyncio.Future:
        """A future set to the next entry put for that CertID (the caller bounds the wait)."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault((issuer_id, serial, hash_algorithm), []).append(future)
        return future

    def forget_waiter(self, issuer_id: str, serial: int, hash_algorithm: str, future: asyncio.Future) -> None:
        """Stop waking ``future`` (it timed out, or its client went away)."""
        key = (issuer_id, serial, hash_algorithm)
        waiters = self._waiters.get(key)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[key]

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())


def sign_answer(identity: ResponderIdentity, record: CertificateRecord, cert_id: CertId, now: datetime,
                validity: timedelta) -> PresignedAnswer:
    """Sign ``record``'s nonce-less answer for ``cert_id`` as ``identity``: thisUpdate now,
    nextUpdate ``validity`` later but never past the signer's notAfter."""
    now = now.replace(microsecond=0)
    next_update = min(now + validity, identity.not_after)
    der = build_response(identity, [record.answer(cert_id)], nonce=None, produced_at=now, this_update=now,
                         next_update=next_update)
    return presigned_answer(der, state_of(record), identity.key_hash, now, next_update, cert_id.der)


def due(entry: PresignedAnswer | None, state: str, signer_key_hash: bytes, now: datetime,
        spread: float = 0.0) -> bool:
    """Whether the presigner must sign this CertID (again): never signed, another state,
    another signer, or half its life gone (refreshed well before nextUpdate, as Boulder
    does: clients and caches always hold an answer with nearly half its life ahead).

    ``spread`` (0 to 1, fixed per certificate) moves the refresh up to an eighth of the
    life later, so that answers first signed together (a start, a rotation) are not all
    re-signed in the same sweep again and again."""
    if entry is None or entry[STATE] != state or entry[SIGNER] != signer_key_hash:
        return True
    produced_at = entry[PRODUCED_AT]
    return now >= produced_at + (entry[NEXT_UPDATE] - produced_at) * (0.5 + spread / 8)
