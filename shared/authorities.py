"""How an issuing authority is named to a person (a message, a metric label): its
certificate's common name, else its organisation, else the whole DN. certs labels its
CRL metrics with it and ocsp writes it in the online channel's ``revoked_by_issuer``
message, so the two always say the same name."""
from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

MAX_NAME = 120


def display_name(certificate_der: bytes) -> str:
    """The short name of the CA whose certificate this is (at most ``MAX_NAME`` characters)."""
    subject = x509.load_der_x509_certificate(certificate_der).subject
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = subject.get_attributes_for_oid(oid)
        if values and str(values[0].value).strip():
            return str(values[0].value).strip()[:MAX_NAME]
    return subject.rfc4514_string()[:MAX_NAME]
