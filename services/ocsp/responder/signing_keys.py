"""What a responder identity signs with when the private key is not in this process.

An HSM (``services.ocsp.responder.hsm``) never hands its key out: it signs a digest we
computed. This module holds what the identity needs to use such a key and nothing of
PKCS#11 itself, so that the encodings are checked without a token: ECDSA tokens return
the raw ``r || s`` (PKCS#11 v2.40 §2.3.1) where X.509 wants ``SEQUENCE { r, s }``, and
an RSA PKCS#1 v1.5 signature is made over a DigestInfo the caller builds (CKM_RSA_PKCS).
"""
from __future__ import annotations

from concurrent.futures import Executor
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["ExternalKey", "SignerUnavailable", "digest_info", "ecdsa_signature_der"]


class SignerUnavailable(Exception):
    """The signing device failed or is away for now: answer ``tryLater``, never a 500."""


@runtime_checkable
class ExternalKey(Protocol):
    """A private key held outside the process; it signs digests, slowly enough (a
    device round trip) that it does so off the event loop, on ``executor``."""

    executor: Executor

    def sign_digest(self, digest: bytes, hash_name: str) -> bytes:
        """The signature over ``digest`` (of ``hash_name``): DER ``SEQUENCE { r, s }`` for an
        EC key, PKCS#1 v1.5 for RSA. Raises ``SignerUnavailable`` when the device fails."""
        ...


def ecdsa_signature_der(raw: bytes) -> bytes:
    """``r || s`` (each half the length, big-endian, as PKCS#11 returns them) as the DER
    ``ECDSA-Sig-Value`` that X.509 and OCSP carry (RFC 5480 / RFC 3279 §2.2.3)."""
    if not raw or len(raw) % 2:
        raise ValueError(f"an ECDSA signature is r || s of equal lengths, got {len(raw)} octets")
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


# DigestInfo ::= SEQUENCE { AlgorithmIdentifier (with NULL parameters), OCTET STRING }:
# for a fixed hash everything before the digest is constant (RFC 8017 §9.2, note 1).
_DIGEST_INFO_PREFIX = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def digest_info(hash_name: str, digest: bytes) -> bytes:
    """The DER DigestInfo an RSA PKCS#1 v1.5 signature (CKM_RSA_PKCS) is made over."""
    try:
        prefix = _DIGEST_INFO_PREFIX[hash_name]
    except KeyError:
        raise ValueError(f"no DigestInfo for hash {hash_name!r}") from None
    if len(digest) != prefix[-1]:
        raise ValueError(f"a {hash_name} digest is {prefix[-1]} octets, got {len(digest)}")
    return prefix + digest
