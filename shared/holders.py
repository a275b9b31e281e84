"""Who a certificate names: the rule by which a renewed certificate is recognised as the
same holder's as one already registered (issue 15).

A qualified provider renews a certificate with a new serial and a new key, and usually
the same subject. When the subject changes (a new county in ``ST``, a new ``OU``), the
ETSI EN 319 412 identifiers stay: the natural person's ``serialNumber`` (2.5.4.5, e.g.
``PNORO-1800101221144``) and the legal person's ``organizationIdentifier`` (2.5.4.97,
e.g. ``VATRO-12433636``). Two certificates name the same holder when their subjects are
the same DN (compared however they are encoded: case, spacing and attribute order
ignored), or they share one of these identifiers.

Used by certs (which records and approves a renewal) and by ocsp's online channel (which
tells the desktop at once that its renewal waits for approval): one rule, so the two can
never disagree. Pure; no I/O.
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from cryptography import x509

SERIAL_NUMBER = "2.5.4.5"
ORGANIZATION_IDENTIFIER = "2.5.4.97"
#: Bounds what one certificate may make us keep or compare: a subject of real
#: certificates is well under 1 kB.
MAX_SUBJECT_CHARS = 2048
MAX_IDENTIFIER_CHARS = 128


@dataclass(frozen=True, slots=True)
class Holder:
    """The parts of a subject that identify its holder. ``subject`` is a normalised key
    of the whole DN; the identifiers are None when the certificate has none."""

    subject: str
    serial_number: str | None = None
    organization_identifier: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"subject": self.subject, "serial_number": self.serial_number,
                "organization_identifier": self.organization_identifier}

    @classmethod
    def from_json(cls, data: object) -> "Holder | None":
        """A holder written by ``to_json`` (a note, a row); None for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("subject"), str) or not data["subject"]:
            return None
        return cls(data["subject"][:MAX_SUBJECT_CHARS], _text(data.get("serial_number")),
                   _text(data.get("organization_identifier")))


def _fold(value: str) -> str:
    # Close to RFC 4518 caseIgnoreMatch: compatibility forms, case, runs of spaces.
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    folded = _fold(value)[:MAX_IDENTIFIER_CHARS]
    return folded or None


def holder_of(name: x509.Name) -> Holder:
    """The holder a subject names (``certificate.subject``)."""
    pairs = sorted((attribute.oid.dotted_string, _fold(str(attribute.value)))
                   for attribute in name if isinstance(attribute.value, str))
    subject = ";".join(f"{oid}={value}" for oid, value in pairs)[:MAX_SUBJECT_CHARS]
    return Holder(subject, _first(name, SERIAL_NUMBER), _first(name, ORGANIZATION_IDENTIFIER))


def _first(name: x509.Name, oid: str) -> str | None:
    for attribute in name.get_attributes_for_oid(x509.ObjectIdentifier(oid)):
        return _text(attribute.value)
    return None


def same_holder(presented: Holder, registered: Holder) -> bool:
    """Whether two certificates name the same holder: the same subject, or the same
    qualified-certificate identifier (serialNumber or organizationIdentifier).

    An empty subject matches nothing: a certificate that names nobody follows nobody."""
    return _same((presented.subject, presented.serial_number, presented.organization_identifier),
                 (registered.subject, registered.serial_number, registered.organization_identifier))


#: A holder key: three 8-octet BLAKE2b digests (subject, serialNumber,
#: organizationIdentifier), zeros for an absent part.
HOLDER_KEY_BYTES = 24
_PART = 8
_ABSENT = bytes(_PART)


def holder_key(holder: Holder) -> bytes:
    """What a responder keeps of a holder (a million certificates: 57 octets instead of
    the ~350 of the subject's text): the same comparisons, by ``same_holder_key``, give
    what ``same_holder`` gives on the holders themselves, but for a chance of 2**-64 per
    comparison (a user's few certificates are all one is ever compared with)."""
    return b"".join(_digest(part) for part in (holder.subject, holder.serial_number, holder.organization_identifier))


def same_holder_key(presented: bytes, registered: bytes) -> bool:
    """``same_holder`` on two ``holder_key``s."""
    return _same(_parts(presented), _parts(registered))


def _digest(part: str | None) -> bytes:
    if not part:
        return _ABSENT
    return hashlib.blake2b(part.encode(), digest_size=_PART).digest()


def _parts(key: bytes) -> tuple[bytes, bytes, bytes]:
    if len(key) != HOLDER_KEY_BYTES:
        raise ValueError(f"a holder key has {HOLDER_KEY_BYTES} octets, not {len(key)}")
    return tuple(b"" if part == _ABSENT else part  # type: ignore[return-value]
                 for part in (key[:_PART], key[_PART:2 * _PART], key[2 * _PART:]))


def _same(presented: tuple, registered: tuple) -> bool:
    # The one rule, on texts or on their digests: (subject, serialNumber, organizationIdentifier),
    # an absent part empty.
    subject, serial_number, organization = presented
    if not subject or not registered[0]:
        return False
    if subject == registered[0]:
        return True
    if serial_number and serial_number == registered[1]:
        return True
    return bool(organization and organization == registered[2])
