"""Building and signing OCSP responses (RFC 6960 BasicOCSPResponse).

The split is deliberate: asn1crypto encodes ``tbsResponseData`` (it writes exactly what
we ask, no more), ``cryptography`` signs its DER (OpenSSL speed, keys never leave it).
This is the responder's hot path, so everything constant per responder (its id, its
certificate list, the signature AlgorithmIdentifier) is encoded once in
``ResponderIdentity``, constant statuses once per process, times and revocation info
once per distinct value; a request then costs a few byte joins plus the signature.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal, Union

from asn1crypto import algos, core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from services.ocsp.responder.codec import CertId
from services.ocsp.responder.signing_keys import ExternalKey

__all__ = [
    "ERROR_STATUSES",
    "REVOCATION_REASONS",
    "ResponderIdentity",
    "SigningKey",
    "SingleAnswer",
    "build_response",
    "error_response",
]

SigningKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
CertStatusName = Literal["good", "revoked", "unknown"]

#: RFC 5280 CRLReason names as asn1crypto spells them (code 7 is unused by the RFC).
REVOCATION_REASONS = frozenset({
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "remove_from_crl", "privilege_withdrawn",
    "aa_compromise",
})

#: OCSPResponseStatus values other than successful (RFC 6960 §4.2.1).
ERROR_STATUSES: dict[str, int] = {
    "malformed_request": 1, "internal_error": 2, "try_later": 3, "sig_required": 5,
    "unauthorized": 6,
}
# An unsuccessful OCSPResponse is just SEQUENCE { ENUMERATED status }: five constant bytes.
_ERROR_BYTES = {name: bytes((0x30, 0x03, 0x0A, 0x01, code)) for name, code in ERROR_STATUSES.items()}

_OID_PKIX_OCSP_BASIC = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.1").dump()
_OID_NONCE = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.2").dump()
_SUCCESSFUL = b"\x0a\x01\x00"  # ENUMERATED successful(0)
# ECDSA hash matched to the curve strength, as CA/B Forum and RFC 5480 expect.
_EC_HASHES = {"secp256r1": ("sha256_ecdsa", hashes.SHA256), "secp384r1": ("sha384_ecdsa", hashes.SHA384),
              "secp521r1": ("sha512_ecdsa", hashes.SHA512)}
#: What an external key is asked to prove it holds the certificate's key with, at load.
_PROBE = b"SIUI OCSP responder key check"


def _der_len(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_len(len(content)) + content


@dataclass(frozen=True, eq=False)
class ResponderIdentity:
    """A signing certificate with its private key and the constant parts of every response.

    ``private_key`` is an in-process key, or an ``ExternalKey`` (an HSM) that signs
    digests off the event loop on its ``executor``. ``extra_certs`` are sent after the
    signer certificate (an intermediate, say); a delegated responder certificate issued
    by the CA needs none. Raises ``ValueError`` when the key does not match the
    certificate (an external key proves it by signing a probe) or is neither RSA nor
    NIST-curve EC.
    """

    certificate: x509.Certificate
    private_key: SigningKey | ExternalKey
    extra_certs: tuple[x509.Certificate, ...] = ()
    #: SHA-1 of the subjectPublicKey BIT STRING value: the responderID byKey (RFC 6960 §4.2.1).
    key_hash: bytes = field(init=False, repr=False)
    #: The certificate's validity: no answer is signed outside it, none valid beyond it.
    not_before: datetime = field(init=False, repr=False)
    not_after: datetime = field(init=False, repr=False)
    #: Where signing runs when it must leave the event loop (an HSM); None: on the loop.
    executor: Executor | None = field(init=False, repr=False)
    _responder_id_der: bytes = field(init=False, repr=False)
    _sig_alg_der: bytes = field(init=False, repr=False)
    _certs_der: bytes = field(init=False, repr=False)
    _sign: Callable[[bytes], bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        public = self.certificate.public_key()
        key = self.private_key
        if isinstance(key, ExternalKey):
            sign, sig_alg = _external_signer(key, public)
        else:
            sign, sig_alg = _in_process_signer(key, public)
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        spki_asn1 = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
        key_hash = hashlib.sha1(spki_asn1["public_key"].contents[1:]).digest()  # skip unused-bits octet
        certs = [der] + [c.public_bytes(serialization.Encoding.DER) for c in self.extra_certs]
        setter = object.__setattr__  # frozen dataclass: precomputed fields are set once, here
        setter(self, "extra_certs", tuple(self.extra_certs))
        setter(self, "key_hash", key_hash)
        setter(self, "not_before", self.certificate.not_valid_before_utc)
        setter(self, "not_after", self.certificate.not_valid_after_utc)
        setter(self, "executor", key.executor if isinstance(key, ExternalKey) else None)
        setter(self, "_responder_id_der", asn1_ocsp.ResponderId(name="by_key", value=key_hash).dump())
        setter(self, "_sig_alg_der", algos.SignedDigestAlgorithm(sig_alg).dump())
        # certs [0] EXPLICIT SEQUENCE OF Certificate
        setter(self, "_certs_der", _tlv(0xA0, _tlv(0x30, b"".join(certs))))
        setter(self, "_sign", sign)

    def valid_at(self, moment: datetime) -> bool:
        """Whether the certificate is within its validity at ``moment``: outside it no
        client accepts the signature, so nothing is signed."""
        return self.not_before <= moment < self.not_after

    def certificate_pem(self) -> bytes:
        """The signer certificate as PEM (what /v1/responder.pem serves)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def from_pem(cls, certificate_pem: bytes, private_key_pem: bytes, *, password: bytes | None = None,
                 extra_certs_pem: bytes = b"") -> ResponderIdentity:
        """Load an identity from PEM text (certificate, PKCS#8/traditional key, optional chain)."""
        key = serialization.load_pem_private_key(private_key_pem, password=password)
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise ValueError("responder key must be RSA or EC")
        extra = tuple(x509.load_pem_x509_certificates(extra_certs_pem)) if extra_certs_pem.strip() else ()
        return cls(x509.load_pem_x509_certificate(certificate_pem), key, extra)


def _in_process_signer(key: SigningKey, public) -> tuple[Callable[[bytes], bytes], dict]:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if public.public_bytes(serialization.Encoding.DER, spki) != key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise ValueError("private key does not match the responder certificate")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg_name, hash_cls = _ec_algorithm(key.curve.name)
        algorithm = ec.ECDSA(hash_cls())

        def sign(data: bytes) -> bytes:
            return key.sign(data, algorithm)

        # RFC 5758: ECDSA AlgorithmIdentifiers carry no parameters at all.
        return sign, {"algorithm": alg_name}
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

        def sign(data: bytes) -> bytes:
            return key.sign(data, pkcs1, sha256)

        # RFC 4055: sha256WithRSAEncryption carries an explicit NULL.
        return sign, {"algorithm": "sha256_rsa", "parameters": core.Null()}
    raise ValueError(f"unsupported responder key type {type(key).__name__}")


def _ec_algorithm(curve: str) -> tuple[str, type[hashes.HashAlgorithm]]:
    if curve not in _EC_HASHES:
        raise ValueError(f"unsupported EC curve {curve}")
    return _EC_HASHES[curve]


def _external_signer(key: ExternalKey, public) -> tuple[Callable[[bytes], bytes], dict]:
    """The same algorithms as in process, the digest computed here and signed by the device
    (a network HSM then carries 32 bytes per answer, not the whole ResponseData)."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        alg_name, hash_cls = _ec_algorithm(public.curve.name)
        sig_alg = {"algorithm": alg_name}
        verify_args = (ec.ECDSA(hash_cls()),)
    elif isinstance(public, rsa.RSAPublicKey):
        hash_cls = hashes.SHA256
        sig_alg = {"algorithm": "sha256_rsa", "parameters": core.Null()}
        verify_args = (padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"unsupported responder key type {type(public).__name__}")
    hash_name = hash_cls.name
    new_hash = getattr(hashlib, hash_name)

    def sign(data: bytes) -> bytes:
        return key.sign_digest(new_hash(data).digest(), hash_name)

    # The device holds a key by label only: that it is the certificate's is proven, not assumed.
    try:
        public.verify(sign(_PROBE), _PROBE, *verify_args)
    except InvalidSignature:
        raise ValueError("the HSM key does not match the responder certificate") from None
    return sign, sig_alg


@dataclass(frozen=True, slots=True)
class SingleAnswer:
    """The status to report for one CertID; ``revoked`` needs ``revoked_at``."""

    cert_id: CertId
    status: CertStatusName
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("good", "revoked", "unknown"):
            raise ValueError(f"unknown certificate status {self.status!r}")
        if self.status == "revoked" and self.revoked_at is None:
            raise ValueError("a revoked answer needs revoked_at")
        if self.revocation_reason is not None and self.revocation_reason not in REVOCATION_REASONS:
            raise ValueError(f"unknown revocation reason {self.revocation_reason!r}")


def _gtime_der(value: datetime) -> bytes:
    if value.tzinfo is None:
        raise ValueError("OCSP times must be timezone-aware")
    # Whole seconds: RFC 5280 profiles forbid fractions and some clients reject them.
    # Truncating first also makes the memo below hit for every request in that second.
    return _gtime_der_whole(value.replace(microsecond=0))


@lru_cache(maxsize=256)
def _gtime_der_whole(value: datetime) -> bytes:
    return core.GeneralizedTime(value).dump()


# CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
# unknown [2] IMPLICIT UnknownInfo }; the two NULL arms never change.
_GOOD_DER = asn1_ocsp.CertStatus(name="good", value=core.Null()).dump()
_UNKNOWN_DER = asn1_ocsp.CertStatus(name="unknown", value=core.Null()).dump()


@lru_cache(maxsize=4096)
def _revoked_der(revoked_at: datetime, reason: str | None) -> bytes:
    # Memoised: the same suspended certificate is asked about again and again.
    if revoked_at.tzinfo is None:
        raise ValueError("OCSP times must be timezone-aware")
    info = {"revocation_time": revoked_at.replace(microsecond=0)}
    if reason is not None:
        info["revocation_reason"] = reason
    return asn1_ocsp.CertStatus(name="revoked", value=asn1_ocsp.RevokedInfo(info)).dump()


def _cert_id_der(cert_id: CertId) -> bytes:
    if cert_id.der:  # echo the client's own encoding, byte for byte
        return cert_id.der
    return asn1_ocsp.CertId({
        "hash_algorithm": {"algorithm": cert_id.hash_algorithm},
        "issuer_name_hash": cert_id.issuer_name_hash,
        "issuer_key_hash": cert_id.issuer_key_hash,
        "serial_number": cert_id.serial,
    }).dump()


def _single_response_der(answer: SingleAnswer, times: bytes) -> bytes:
    if answer.status == "good":
        status = _GOOD_DER
    elif answer.status == "unknown":
        status = _UNKNOWN_DER
    else:
        status = _revoked_der(answer.revoked_at, answer.revocation_reason)
    # SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT }
    return _tlv(0x30, _cert_id_der(answer.cert_id) + status + times)


def build_response(identity: ResponderIdentity, answers: Sequence[SingleAnswer], *, nonce: bytes | None,
                   produced_at: datetime, this_update: datetime, next_update: datetime) -> bytes:
    """Return a signed, successful OCSPResponse (DER) with one SingleResponse per answer.

    Each CertID is echoed as the client sent it; the responderID is byKey; the signer
    certificate (and ``identity.extra_certs``) travel in ``certs``; ``nonce``, when
    given, is echoed in responseExtensions. Times must be timezone-aware and are
    truncated to whole seconds.

    Every leaf is encoded by asn1crypto; the SEQUENCEs around them are joined here
    because asn1crypto re-serialises a whole SEQUENCE on each field it sets, which cost
    ~75 µs per answer. tests/unit/test_ocsp_responses.py checks the bytes are identical
    to a ResponseData built entirely with asn1crypto.
    """
    if not answers:
        raise ValueError("a response needs at least one answer")
    times = _gtime_der(this_update) + _tlv(0xA0, _gtime_der(next_update))
    responses = b"".join([_single_response_der(answer, times) for answer in answers])
    tbs = identity._responder_id_der + _gtime_der(produced_at) + _tlv(0x30, responses)
    if nonce is not None:
        # RFC 8954/9654: extnValue holds the nonce as an OCTET STRING, as clients send it.
        extension = _tlv(0x30, _OID_NONCE + _tlv(0x04, _tlv(0x04, nonce)))
        tbs += _tlv(0xA1, _tlv(0x30, extension))
    tbs = _tlv(0x30, tbs)  # ResponseData; version v1 is the DEFAULT, hence omitted
    signature = identity._sign(tbs)
    # BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, BIT STRING, [0] certs }
    basic = _tlv(0x30, tbs + identity._sig_alg_der + _tlv(0x03, b"\x00" + signature) + identity._certs_der)
    response_bytes = _tlv(0x30, _OID_PKIX_OCSP_BASIC + _tlv(0x04, basic))
    return _tlv(0x30, _SUCCESSFUL + _tlv(0xA0, response_bytes))


def error_response(status: str) -> bytes:
    """The constant unsuccessful OCSPResponse for ``status`` (e.g. ``'malformed_request'``)."""
    try:
        return _ERROR_BYTES[status]
    except KeyError:
        raise ValueError(f"unknown OCSP error status {status!r}") from None
