"""Reading the certificates operators upload: CA certificates of issuing authorities and
the providers' own certificates. Pure functions; errors are ``shared.errors.Invalid``
naming the field the certificate came in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from shared import errors

from .crl import distribution_points

from .x509names import format_name, name_key

# RFC 5280 4.1.2.2: at most 20 octets. Read as an unsigned magnitude so that the
# non-conforming serials some CAs issue (top bit set: 21 octets in DER) still register.
MAX_SERIAL = (1 << 160) - 1
#: Largest PEM/base64 text read: one certificate is 1-3 kB; a CA's with long policies a few
#: more. Beyond it the text is refused before any parsing (it is also what a 64 kB JSON
#: field can carry), so no upload can hold a worker for long.
MAX_PEM_CHARS = 64 * 1024
_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_END = re.compile(r"-----END ([A-Z0-9 ]{1,40})-----")
_HEX_SEPARATORS = re.compile(r"[\s:]")


@dataclass(frozen=True)
class IssuerFacts:
    """What is kept of an issuing authority's CA certificate."""

    subject_dn: str
    subject_der: bytes
    dn_key: str
    certificate_der: bytes
    serial: int
    not_before: datetime
    not_after: datetime
    name_sha1: bytes
    key_sha1: bytes
    name_sha256: bytes
    key_sha256: bytes


@dataclass(frozen=True)
class CertificateFacts:
    """What is read from an uploaded user certificate."""

    certificate: x509.Certificate
    der: bytes
    serial: int
    subject: str
    issuer_dn: str
    issuer_key: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    #: The http(s) URLs of its CRL Distribution Points: where its issuer says it revokes.
    crl_urls: tuple[str, ...] = ()


def pem_blocks(text: str) -> list[tuple[str, str]] | None:
    """The (kind, base64 body) of each PEM block, read line by line (linear time, whatever
    the text holds); None when the text has no BEGIN line; ValueError for a block that is
    not closed by its own END line."""
    blocks: list[tuple[str, str]] = []
    kind: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if kind is None:
            begin = _BEGIN.fullmatch(line)
            if begin:
                kind, body = begin.group(1), []
            continue
        end = _END.fullmatch(line)
        if end:
            if end.group(1) != kind:
                raise ValueError(f"the PEM block {kind} ends with END {end.group(1)}")
            blocks.append((kind, "".join(body)))
            kind = None
        elif line.startswith("-----"):
            raise ValueError(f"the PEM block {kind} is not closed by its -----END line")
        else:
            body.append(line)
    if kind is not None:
        raise ValueError("the PEM block is not closed by its -----END line")
    if not blocks and "-----BEGIN" in text:
        raise ValueError("the -----BEGIN line is not a PEM header")
    return blocks or None


def read_certificate(text: str, field: str = "certificate_pem") -> tuple[x509.Certificate, bytes]:
    """One X.509 certificate from PEM or base64 DER text, with its DER."""
    if len(text) > MAX_PEM_CHARS:
        raise _invalid(field, f"at most {MAX_PEM_CHARS // 1024} kB: one certificate is a few kB")
    try:
        blocks = pem_blocks(text)
    except ValueError as exc:
        raise _invalid(field, str(exc)) from None
    if blocks:
        certificates = [body for kind, body in blocks if kind in ("CERTIFICATE", "X509 CERTIFICATE")]
        if len(certificates) != 1:
            raise _invalid(field, "send exactly one certificate (-----BEGIN CERTIFICATE-----)")
        encoded = certificates[0]
    else:
        encoded = text
    try:
        der = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(field, "not a PEM certificate nor base64-encoded DER") from None
    try:
        certificate = x509.load_der_x509_certificate(der)
        # Touch what later code reads, so a malformed field fails here, as a 422.
        certificate.serial_number, certificate.subject, certificate.issuer  # noqa: B018
        certificate.not_valid_before_utc, certificate.not_valid_after_utc  # noqa: B018
    except ValueError as exc:
        raise _invalid(field, f"not a readable X.509 certificate ({exc})") from None
    return certificate, der


def to_pem(der: bytes) -> str:
    """The PEM text of a DER certificate."""
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def is_ca(certificate: x509.Certificate) -> bool:
    """basicConstraints CA:TRUE, and keyCertSign if keyUsage is present at all."""
    try:
        if not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return True


def issuer_facts(text: str, field: str = "certificate_pem") -> IssuerFacts:
    """Read an issuing authority's CA certificate; 422 unless it is a CA certificate."""
    certificate, der = read_certificate(text, field)
    if not is_ca(certificate):
        raise _invalid(field, "not a CA certificate (basicConstraints CA:TRUE with keyCertSign "
                              "is required of an issuing authority)")
    serial = _serial_of(certificate, field)
    # The exact encoded subject and key, as OCSP clients hash them (RFC 6960 4.1.1).
    tbs = asn1_x509.Certificate.load(der)["tbs_certificate"]
    name_der = tbs["subject"].dump()
    key_bits = tbs["subject_public_key_info"]["public_key"].contents[1:]
    return IssuerFacts(
        subject_dn=format_name(certificate.subject), subject_der=name_der,
        dn_key=name_key(certificate.subject), certificate_der=der, serial=serial,
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        name_sha1=hashlib.sha1(name_der).digest(), key_sha1=hashlib.sha1(key_bits).digest(),
        name_sha256=hashlib.sha256(name_der).digest(), key_sha256=hashlib.sha256(key_bits).digest())


def certificate_facts(text: str, field: str = "certificate_pem") -> CertificateFacts:
    """Read a user certificate: serial, subject, issuer, validity."""
    certificate, der = read_certificate(text, field)
    return CertificateFacts(
        certificate=certificate, der=der, serial=_serial_of(certificate, field),
        subject=format_name(certificate.subject), issuer_dn=format_name(certificate.issuer),
        issuer_key=name_key(certificate.issuer), not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc, is_ca=is_ca(certificate),
        crl_urls=tuple(distribution_points(certificate)))


def signed_by(certificate: x509.Certificate, issuer_der: bytes) -> bool:
    """Whether the issuer's key verifies the certificate's signature.

    The names were already matched (case- and spacing-insensitively, as RFC 5280 chains
    them), so only the signature is checked here, whatever the key type.
    """
    issuer = x509.load_der_x509_certificate(issuer_der)
    key = issuer.public_key()
    signature, tbs = certificate.signature, certificate.tbs_certificate_bytes
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, tbs, certificate.signature_algorithm_parameters,
                       certificate.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, tbs, certificate.signature_algorithm_parameters)
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        # TypeError/ValueError: parameters of another key type than the issuer's.
        return False
    return True


def parse_serial(raw: str | int, field: str = "serial") -> int:
    """A serial typed as decimal (``12``) or hex (``0x0C``, ``0x0c:4f`` ...)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            if text[:2].lower() == "0x":
                digits = _HEX_SEPARATORS.sub("", text[2:])
                if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise ValueError
                value = int(digits, 16)
            elif text.isascii() and text.isdigit():
                value = int(text)
            else:
                raise ValueError
        except ValueError:
            raise _invalid(field, "write the serial in decimal (12) or hexadecimal with 0x (0x0C)") from None
    else:
        raise _invalid(field, "must be a string (decimal or 0x hexadecimal)")
    return _check_serial(value, field)


def serial_hex(serial: int) -> str:
    """Upper-case hex with an even number of digits, as certificate viewers show it."""
    digits = f"{serial:X}"
    return digits if len(digits) % 2 == 0 else "0" + digits


def _serial_of(certificate: x509.Certificate, field: str) -> int:
    return _check_serial(certificate.serial_number, field)


def _check_serial(value: int, field: str) -> int:
    if value <= 0:
        raise _invalid(field, "a certificate serial is a positive number")
    if value > MAX_SERIAL:
        raise _invalid(field, "a certificate serial has at most 20 octets (RFC 5280)")
    return value


def _invalid(field: str, message: str) -> errors.Invalid:
    return errors.Invalid(f"{field}: {message}", errors={field: message})
