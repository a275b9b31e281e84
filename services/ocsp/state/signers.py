"""Delegated OCSP signers: checking one, and keeping its private key encrypted at rest.

An issuing authority may delegate OCSP signing to us (RFC 6960 §4.2.2.2): it issues a
responder certificate with the OCSPSigning EKU, and we sign its answers with that key,
so that validators knowing only the CA accept them. The key is stored encrypted with
AES-256-GCM under the service's data key, with the issuer id as associated data: a
ciphertext copied onto another issuer's row does not decrypt. Plain functions, no I/O.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID

from shared import errors

from services.ocsp.responder.responses import ResponderIdentity

NONCE_BYTES = 12  # AES-GCM's standard nonce; a fresh random one per encryption


class DataKeyError(RuntimeError):
    """The data key file is missing or malformed (a deployment problem, found at start)."""


def load_data_key(path: Path) -> bytes:
    """The 32-byte AES key from ``path`` (64 hex characters, as deploy/devpki writes it)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise DataKeyError(f"cannot read the data key {path}: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise DataKeyError(f"{path} must hold 64 hex characters") from None
    if len(key) != 32:
        raise DataKeyError(f"{path} must hold 64 hex characters (AES-256), found {len(text)}")
    return key


def encrypt_key(data_key: bytes, issuer_id: uuid.UUID, private_key_der: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of a PKCS#8 DER private key, bound to ``issuer_id``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(data_key).encrypt(nonce, private_key_der, issuer_id.bytes)


def decrypt_identity(data_key: bytes, issuer_id: uuid.UUID, certificate_der: bytes, nonce: bytes,
                     ciphertext: bytes) -> ResponderIdentity:
    """The signing identity stored for ``issuer_id`` (raises if tampered with or moved)."""
    key_der = AESGCM(data_key).decrypt(nonce, ciphertext, issuer_id.bytes)
    key = serialization.load_der_private_key(key_der, password=None)
    return ResponderIdentity(x509.load_der_x509_certificate(certificate_der), key)


@dataclass(frozen=True)
class CheckedSigner:
    """A delegated signer that passed every check, ready to store."""

    certificate: x509.Certificate
    certificate_der: bytes
    private_key_der: bytes  # PKCS#8, unencrypted: encrypt before it leaves memory


def check_signer(issuer_der: bytes, certificate_pem: str, private_key_pem: str,
                 now: datetime | None = None) -> CheckedSigner:
    """Check an uploaded signer against its issuer; ``errors.Invalid`` naming the field if not.

    It must be a certificate issued by this issuer (its signature verifies with the
    issuer's key), carry the OCSPSigning extended key usage, be within its validity,
    and the key must be an unencrypted RSA or NIST-curve EC key matching it.
    """
    now = now or datetime.now(timezone.utc)
    problems: dict[str, str] = {}
    certificate = key = None
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        problems["certificate_pem"] = "not a PEM certificate"
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except TypeError:
        problems["private_key_pem"] = "the key is encrypted; send it unencrypted (it is encrypted at rest here)"
    except (ValueError, UnsupportedAlgorithm):
        problems["private_key_pem"] = "not a PEM private key"
    if certificate is not None:
        problem = _certificate_problem(certificate, x509.load_der_x509_certificate(issuer_der), now)
        if problem:
            problems["certificate_pem"] = problem
    if not problems:
        try:
            ResponderIdentity(certificate, key)
        except ValueError as exc:
            problems["private_key_pem"] = str(exc)
    if problems:
        detail = "; ".join(f"{name}: {message}" for name, message in problems.items())
        raise errors.Invalid(f"the delegated signer cannot be used: {detail}", errors=problems)
    der = certificate.public_bytes(serialization.Encoding.DER)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return CheckedSigner(certificate, der, key_der)


def _certificate_problem(certificate: x509.Certificate, issuer: x509.Certificate, now: datetime) -> str | None:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by this issuing authority (its signature does not verify with the authority's key)"
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = ()
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        return "it lacks the OCSPSigning extended key usage (RFC 6960 4.2.2.2)"
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return (f"not valid now (valid {certificate.not_valid_before_utc.isoformat()} to "
                f"{certificate.not_valid_after_utc.isoformat()})")
    return None


def signer_info(issuer_id: uuid.UUID, certificate_der: bytes, created_at: datetime, created_by: str) -> dict:
    """What GET /v1/issuers/{id}/signer shows: the certificate, never the key."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    try:
        nocheck = bool(certificate.extensions.get_extension_for_class(x509.OCSPNoCheck))
    except x509.ExtensionNotFound:
        nocheck = False
    return {
        "issuer_id": str(issuer_id),
        "subject": certificate.subject.rfc4514_string(),
        "serial": str(certificate.serial_number),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "sha256_fingerprint": hashlib.sha256(certificate_der).hexdigest(),
        "ocsp_nocheck": nocheck,
        "certificate_pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "created_at": created_at.isoformat(),
        "created_by": created_by,
    }
