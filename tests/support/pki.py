"""Test certificates built in memory, for unit tests of the PKI code (the dev PKI and the
openssl CLI cover the rest)."""
from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_cert(cn: str, key, issuer_cn: str, issuer_key, serial: int, *, now: datetime, days: int = 30,
              ca: bool = False, eku=None, ocsp_signing: bool = False) -> x509.Certificate:
    """A certificate for ``key`` named ``cn``, signed by ``issuer_key`` as ``issuer_cn``;
    ``ocsp_signing`` makes it a delegated OCSP responder (RFC 6960 §4.2.2.2)."""
    builder = (
        x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn))
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ocsp_signing:
        eku = [ExtendedKeyUsageOID.OCSP_SIGNING]
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())
