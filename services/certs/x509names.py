"""Distinguished names as the seed writes them, and matched however they are written.

The seed shows an issuer as ``C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII,
CN=MSANATATII CA``: the RDNs in the order they are encoded in the certificate (RFC 4514
writes them the other way round), joined by ``", "``, with RFC 4514's attribute names and
escapes; an attribute without a short name is written by its OID
(``2.5.4.97=VATRO-18288250`` for organizationIdentifier).

An operator who types a DN may order, space or case it differently, or use long names
(``commonName=``, ``organizationIdentifier=``). ``dn_key`` reduces a DN to what matters
for matching: the multiset of (OID, value), values case-folded with runs of spaces
collapsed (close to RFC 4518's caseIgnoreMatch), so every such spelling meets one key.
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable

from asn1crypto import core
from cryptography import x509

# (OID, value) pairs of one RDN; a DN is a sequence of RDNs in encoded order.
Rdn = tuple[tuple[str, str], ...]

# Names RFC 4514 (and cryptography) write for output; anything else is written as its OID.
_SHORT_NAMES = {
    "2.5.4.3": "CN", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.6": "C", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

# Names accepted on input, lower-cased: RFC 4514's, RFC 4519's long ones, and what
# Windows and OpenSSL print (E, S, SERIALNUMBER, organizationIdentifier).
_INPUT_NAMES = {name.lower(): oid for oid, name in _SHORT_NAMES.items()} | {
    "commonname": "2.5.4.3", "localityname": "2.5.4.7", "s": "2.5.4.8",
    "stateorprovincename": "2.5.4.8", "organizationname": "2.5.4.10",
    "organisationname": "2.5.4.10", "organizationalunitname": "2.5.4.11",
    "organisationalunitname": "2.5.4.11", "countryname": "2.5.4.6",
    "streetaddress": "2.5.4.9", "domaincomponent": "0.9.2342.19200300.100.1.25",
    "userid": "0.9.2342.19200300.100.1.1", "serialnumber": "2.5.4.5", "sn": "2.5.4.4",
    "surname": "2.5.4.4", "gn": "2.5.4.42", "g": "2.5.4.42", "givenname": "2.5.4.42",
    "t": "2.5.4.12", "title": "2.5.4.12", "e": "1.2.840.113549.1.9.1",
    "email": "1.2.840.113549.1.9.1", "emailaddress": "1.2.840.113549.1.9.1",
    "organizationidentifier": "2.5.4.97", "organisationidentifier": "2.5.4.97",
    "postalcode": "2.5.4.17", "pseudonym": "2.5.4.65", "dnqualifier": "2.5.4.46",
    "initials": "2.5.4.43", "generationqualifier": "2.5.4.44",
}

_SPECIAL = ',+"\\<>;'


class HexValue(str):
    """A value that is not a string (a BIT STRING, say): written ``#`` and hex, never escaped."""


class DNSyntaxError(ValueError):
    """A typed DN that cannot be read; the message says where."""


# -- from a certificate -------------------------------------------------------------------

def name_rdns(name: x509.Name) -> list[Rdn]:
    """The RDNs of a certificate name, in encoded order, values as text."""
    return [tuple((a.oid.dotted_string, _text(a.value)) for a in rdn) for rdn in name.rdns]


def _text(value: str | bytes) -> str:
    # Only a BIT STRING attribute (x500UniqueIdentifier) is bytes: shown as #hex, as RFC 4514 does.
    return value if isinstance(value, str) else HexValue("#" + value.hex())


def format_dn(rdns: Iterable[Rdn]) -> str:
    """The seed's spelling: encoded order, ``", "`` between RDNs, RFC 4514 escapes."""
    return ", ".join("+".join(f"{_SHORT_NAMES.get(oid, oid)}={escape_value(value)}" for oid, value in rdn)
                     for rdn in rdns)


def format_name(name: x509.Name) -> str:
    """``format_dn`` of a certificate's name."""
    return format_dn(name_rdns(name))


def escape_value(value: str) -> str:
    """RFC 4514 section 2.4 escaping of one attribute value."""
    if isinstance(value, HexValue):
        return value
    out = []
    for i, ch in enumerate(value):
        if ch in _SPECIAL or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


# -- typed by a person ------------------------------------------------------------------

def parse_dn(text: str) -> list[Rdn]:
    """Read a DN in the seed's or RFC 4514 spelling (any order, spacing, ``,`` or ``;``).

    Raises DNSyntaxError naming the problem.
    """
    if not isinstance(text, str) or not text.strip():
        raise DNSyntaxError("the DN is empty")
    rdns: list[Rdn] = []
    current: list[tuple[str, str]] = []
    pos, size = 0, len(text)
    while True:
        oid, pos = _read_type(text, pos)
        value, pos = _read_value(text, pos)
        current.append((oid, value))
        if pos >= size:
            rdns.append(tuple(current))
            return rdns
        separator = text[pos]
        pos += 1
        if separator in ",;":
            rdns.append(tuple(current))
            current = []


def _read_type(text: str, pos: int) -> tuple[str, int]:
    end = text.find("=", pos)
    if end < 0:
        raise DNSyntaxError(f"expected NAME=value at {text[pos:].strip()!r}")
    raw = text[pos:end].strip()
    name = raw.lower()
    if name.startswith("oid."):
        name = name[4:]
    if name and all(part.isdigit() for part in name.split(".")) and name.count(".") >= 1:
        return name, end + 1
    if name in _INPUT_NAMES:
        return _INPUT_NAMES[name], end + 1
    raise DNSyntaxError(f"unknown attribute name {raw!r}" if raw else "an attribute name is missing")


def _read_value(text: str, pos: int) -> tuple[str, int]:
    size = len(text)
    while pos < size and text[pos] == " ":
        pos += 1
    if pos < size and text[pos] == '"':  # RFC 1779/2253 quoted value
        end = pos + 1
        chars: list[str] = []
        while end < size and text[end] != '"':
            if text[end] == "\\" and end + 1 < size:
                end += 1
            chars.append(text[end])
            end += 1
        if end >= size:
            raise DNSyntaxError("a quoted value is not closed")
        return "".join(chars), _skip_to_separator(text, end + 1)
    if pos < size and text[pos] == "#":
        end = pos + 1
        while end < size and text[end] not in ",;+":
            end += 1
        return _ber_value(text[pos + 1:end].strip()), end
    raw = bytearray()
    trailing = 0  # unescaped spaces at the end, dropped
    while pos < size and text[pos] not in ",;+":
        ch = text[pos]
        if ch == "\\":
            pair = text[pos + 1:pos + 3]
            if len(pair) == 2 and _is_hex(pair):  # \XX: one octet of the UTF-8 value
                raw.append(int(pair, 16))
                pos += 3
            elif pos + 1 < size:
                raw.extend(text[pos + 1].encode())
                pos += 2
            else:
                raise DNSyntaxError("the DN ends with a lone backslash")
            trailing = 0
            continue
        raw.extend(ch.encode())
        trailing = trailing + 1 if ch == " " else 0
        pos += 1
    if trailing:
        del raw[-trailing:]
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DNSyntaxError("an escaped value is not UTF-8") from None
    if not value:
        raise DNSyntaxError("an attribute has an empty value")
    return value, pos


def _skip_to_separator(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos < len(text) and text[pos] not in ",;+":
        raise DNSyntaxError(f"unexpected text after a quoted value: {text[pos:]!r}")
    return pos


def _ber_value(hex_text: str) -> str:
    if not hex_text or len(hex_text) % 2 or not _is_hex(hex_text):
        raise DNSyntaxError("a #value must be hexadecimal BER")
    try:
        native = core.Asn1Value.load(bytes.fromhex(hex_text)).native
    except ValueError:
        raise DNSyntaxError("a #value is not valid BER") from None
    return native if isinstance(native, str) else HexValue("#" + hex_text.lower())


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


# -- matching ---------------------------------------------------------------------------

def normalize_value(value: str) -> str:
    """Case, compatibility forms and spacing removed: what caseIgnoreMatch compares."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def dn_key(rdns: Iterable[Rdn]) -> str:
    """One string for every spelling of the same DN: sorted (OID, normalised value) pairs."""
    pairs = sorted([oid, normalize_value(value)] for rdn in rdns for oid, value in rdn)
    return json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))


def name_key(name: x509.Name) -> str:
    """``dn_key`` of a certificate's name."""
    return dn_key(name_rdns(name))
