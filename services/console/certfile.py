"""Reading an uploaded certificate file, to show the clerk what is in it before saving.

The certs service decides whether the certificate may be registered; this only reads
(PEM or DER) and describes it: serial, subject, issuer, validity, and which registered
issuing authority it names (by the SHA-1 of the issuer name, as OCSP identifies it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

MAX_BYTES = 64 * 1024  # a certificate is a few kB; anything this large is something else


class NotACertificate(ValueError):
    """The file is not one X.509 certificate (the message is for the clerk, in Romanian)."""


@dataclass(frozen=True)
class CertificateFile:
    pem: str
    serial: int
    subject: str
    issuer: str
    issuer_name_sha1: str
    not_before: datetime
    not_after: datetime
    common_name: str | None

    @property
    def serial_hex(self) -> str:
        text = f"{self.serial:X}"
        return text if len(text) % 2 == 0 else "0" + text


def read_certificate(data: bytes) -> CertificateFile:
    """The certificate in ``data`` (PEM or DER), or NotACertificate."""
    if not data:
        raise NotACertificate("alegeti fisierul certificatului")
    if len(data) > MAX_BYTES:
        raise NotACertificate("fisierul este prea mare pentru un certificat")
    try:
        cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except ValueError:
        raise NotACertificate("fisierul nu este un certificat X.509 (PEM sau DER)") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return CertificateFile(
        pem=cert.public_bytes(Encoding.PEM).decode(),
        serial=cert.serial_number,
        subject=_readable(cert.subject),
        issuer=_readable(cert.issuer),
        issuer_name_sha1=hashlib.sha1(cert.issuer.public_bytes()).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        common_name=str(names[0].value) if names else None,
    )


def _readable(name: x509.Name) -> str:
    """A DN as the seed and ``openssl x509 -subject`` write it, most significant first:
    "C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"."""
    parts = [rdn.rfc4514_string() for rdn in name.rdns]
    return ", ".join(parts)


def matching_issuer(issuers: list[dict], facts: CertificateFile) -> dict | None:
    """The registered issuing authority that issued this certificate, if any."""
    for issuer in issuers:
        hashes = issuer.get("hashes") or {}
        if (hashes.get("sha1") or {}).get("name") == facts.issuer_name_sha1:
            return issuer
    return None
