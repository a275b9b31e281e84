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
    if not presented.subject or not registered.subject:
        return False
    if presented.subject == registered.subject:
        return True
    if presented.serial_number and presented.serial_number == registered.serial_number:
        return True
    return bool(presented.organization_identifier
                and presented.organization_identifier == registered.organization_identifier)
