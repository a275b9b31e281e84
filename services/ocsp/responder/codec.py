"""Decoding OCSP requests (RFC 6960) and the RFC 5019 GET form.

Pure functions over bytes and strings: no HTTP, no I/O. The responder calls
``parse_request`` on a POST body or on ``decode_get_path(tail)``; anything it cannot
trust raises ``MalformedRequest``, which the edge answers with the constant
``malformedRequest`` OCSP response.

We parse with asn1crypto rather than ``cryptography`` because the latter refuses
requests carrying more than one CertID, which RFC 6960 allows.
"""
from __future__ import annotations

import base64
import binascii
import itertools
from dataclasses import dataclass, field
from urllib.parse import unquote

from asn1crypto import ocsp as asn1_ocsp

__all__ = [
    "MAX_CERTS_PER_REQUEST",
    "MAX_REQUEST_BYTES",
    "MAX_SERIAL_OCTETS",
    "HASH_SIZES",
    "CertId",
    "MalformedRequest",
    "ParsedRequest",
    "decode_get_path",
    "parse_request",
]

#: Boulder caps requests too: a client never needs more, and it bounds our work per request.
MAX_REQUEST_BYTES = 10_000
#: More entries than this is abuse, not a browser or a TLS server stapling.
MAX_CERTS_PER_REQUEST = 100
#: RFC 5280 4.1.2.2: certificate serials are at most 20 octets; a CertID naming a longer
#: one is about no certificate anybody may issue (and would bloat every log row).
MAX_SERIAL_OCTETS = 20
#: RFC 9654: the nonce is an OCTET STRING of 1..128 octets.
MIN_NONCE_OCTETS, MAX_NONCE_OCTETS = 1, 128
#: Digest length per supported CertID hash algorithm (asn1crypto names).
HASH_SIZES: dict[str, int] = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

# How many re-expansions of path-cleaned slashes decode_get_path may try before giving up;
# bounds the work an attacker can cause with a crafted URL.
_MAX_SLASH_REPAIRS = 256


class MalformedRequest(ValueError):
    """The bytes are not an OCSP request we are willing to answer; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CertId:
    """One RFC 6960 CertID.

    ``der`` keeps the CertID exactly as the client encoded it, so the response can echo
    it byte for byte: OpenSSL matches answers to questions by comparing the whole
    AlgorithmIdentifier, parameters included (NULL versus absent). It is left out of
    equality and hashing because it adds nothing to identity.
    """

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    der: bytes = field(default=b"", compare=False, repr=False)

    @property
    def issuer_key(self) -> tuple[str, bytes, bytes]:
        """The (hash_algorithm, issuer_name_hash, issuer_key_hash) triple naming the issuer."""
        return (self.hash_algorithm, self.issuer_name_hash, self.issuer_key_hash)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the responder needs from an OCSPRequest: the questions and the nonce."""

    cert_ids: tuple[CertId, ...]
    nonce: bytes | None


def parse_request(der: bytes) -> ParsedRequest:
    """Parse a DER OCSPRequest; raise ``MalformedRequest`` for anything we refuse.

    Refused: more than ``MAX_REQUEST_BYTES``, bytes that are not one complete DER
    OCSPRequest (trailing data included), no entries, more than
    ``MAX_CERTS_PER_REQUEST`` entries, a CertID hash other than SHA-1/256/384/512 or of
    the wrong length, a serial that is empty, not minimally encoded or longer than
    ``MAX_SERIAL_OCTETS``, and a nonce that is not an OCTET STRING of 1..128 octets.
    Extensions other than the nonce, and any request signature, are ignored: we
    require neither.
    """
    if not der:
        raise MalformedRequest("empty request")
    if len(der) > MAX_REQUEST_BYTES:
        raise MalformedRequest(f"request larger than {MAX_REQUEST_BYTES} bytes")
    der = bytes(der)
    fast = _fast_parse(der)
    return fast if fast is not None else _parse_with_asn1crypto(der)


def _parse_with_asn1crypto(der: bytes) -> ParsedRequest:
    """The general path: any shape asn1crypto decodes, with our limits applied."""
    try:
        request = asn1_ocsp.OCSPRequest.load(der, strict=True)
        # asn1crypto decodes lazily: .native forces every nested value, so that garbage
        # anywhere surfaces here as a malformed request rather than later as a crash in
        # the middle of answering. We then read the values from that same native tree.
        tbs = request.native["tbs_request"]
        entries = tbs["request_list"]
        if not entries:
            raise MalformedRequest("request lists no certificates")
        if len(entries) > MAX_CERTS_PER_REQUEST:
            raise MalformedRequest(f"request lists more than {MAX_CERTS_PER_REQUEST} certificates")
        raw_entries = request["tbs_request"]["request_list"]
        cert_ids = tuple(_cert_id(entry["req_cert"], raw_entries[i]["req_cert"].dump(),
                                  raw_entries[i]["req_cert"]["serial_number"].contents)
                         for i, entry in enumerate(entries))
        nonce = _nonce(tbs["request_extensions"])
    except MalformedRequest:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise MalformedRequest(f"undecodable request ({type(exc).__name__})") from None
    return ParsedRequest(cert_ids=cert_ids, nonce=nonce)


def _cert_id(value: dict, der: bytes, serial_contents: bytes) -> CertId:
    _check_serial(serial_contents)
    algorithm = value["hash_algorithm"]["algorithm"]
    size = HASH_SIZES.get(algorithm)
    if size is None:
        raise MalformedRequest(f"unsupported CertID hash algorithm {algorithm}")
    name_hash, key_hash = value["issuer_name_hash"], value["issuer_key_hash"]
    if len(name_hash) != size or len(key_hash) != size:
        raise MalformedRequest(f"CertID hashes are not {algorithm} digests")
    return CertId(algorithm, name_hash, key_hash, value["serial_number"], der)


def _check_serial(contents: bytes) -> None:
    """A CertID serial must be a DER INTEGER (present, minimally encoded) of at most
    ``MAX_SERIAL_OCTETS`` octets, as RFC 5280 bounds certificate serials. A zero-padded
    serial is another encoding of a registered one: answering it would let two requests
    about one certificate look different, and OpenSSL cannot match such an answer."""
    if not contents:
        raise MalformedRequest("CertID serial is empty")
    if len(contents) > 1 and ((contents[0] == 0 and contents[1] < 0x80) or
                              (contents[0] == 0xFF and contents[1] >= 0x80)):
        raise MalformedRequest("CertID serial is not minimally encoded (not DER)")
    # A positive 20-octet serial whose first bit is set needs a leading zero octet.
    if len(contents) > MAX_SERIAL_OCTETS + 1 or (len(contents) == MAX_SERIAL_OCTETS + 1 and contents[0] != 0):
        raise MalformedRequest(f"CertID serial is longer than {MAX_SERIAL_OCTETS} octets (RFC 5280)")


def _nonce(extensions: list[dict] | None) -> bytes | None:
    for extension in extensions or ():
        if extension["extn_id"] != "nonce":
            continue
        nonce = extension["extn_value"]  # already the inner OCTET STRING's value
        if not isinstance(nonce, bytes):
            raise MalformedRequest("nonce is not an OCTET STRING")
        if not MIN_NONCE_OCTETS <= len(nonce) <= MAX_NONCE_OCTETS:
            raise MalformedRequest(
                f"nonce must be {MIN_NONCE_OCTETS}..{MAX_NONCE_OCTETS} octets, got {len(nonce)}"
            )
        return nonce
    return None


# --- the fast path -------------------------------------------------------------------
# asn1crypto costs ~50 µs per request, more than signing the answer. Almost every client
# sends the same plain shape (no version, no requestor name, no per-entry extensions, at
# most a nonce, no signature), which a few slices decode in a few µs. The fast path
# accepts only that shape in strict DER and returns None for anything else, leaving the
# decision (and the error message) to asn1crypto: it never accepts what asn1crypto would
# refuse, and tests/unit/test_ocsp_codec.py checks both paths agree.

_HASH_OIDS = {  # DER of the OBJECT IDENTIFIER TLV -> asn1crypto's name
    bytes.fromhex("06052b0e03021a"): "sha1",
    bytes.fromhex("0609608648016503040201"): "sha256",
    bytes.fromhex("0609608648016503040202"): "sha384",
    bytes.fromhex("0609608648016503040203"): "sha512",
}
_NONCE_OID = bytes.fromhex("06092b0601050507300102")
_NULL = b"\x05\x00"


def _tlv_at(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER TLV at ``pos``; ValueError if bad."""
    if pos + 2 > end:
        raise ValueError
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        start, length = pos + 2, first
    elif first == 0x81:
        start, length = pos + 3, data[pos + 2] if pos + 3 <= end else 0
        if length < 0x80:  # not the shortest form: not DER
            raise ValueError
    elif first == 0x82:
        start, length = pos + 4, int.from_bytes(data[pos + 2:pos + 4], "big") if pos + 4 <= end else 0
        if length < 0x100:
            raise ValueError
    else:
        raise ValueError
    if start + length > end:
        raise ValueError
    return tag, start, start + length


def _fast_cert_id(data: bytes, tlv_start: int, start: int, end: int) -> CertId:
    tag, a_start, a_end = _tlv_at(data, start, end)  # AlgorithmIdentifier
    if tag != 0x30:
        raise ValueError
    _, o_start, o_end = _tlv_at(data, a_start, a_end)
    algorithm = _HASH_OIDS.get(data[a_start:o_end])
    if algorithm is None or data[o_end:a_end] not in (b"", _NULL):
        raise ValueError
    size = HASH_SIZES[algorithm]
    tag, n_start, n_end = _tlv_at(data, a_end, end)
    if tag != 0x04 or n_end - n_start != size:
        raise ValueError
    tag, k_start, k_end = _tlv_at(data, n_end, end)
    if tag != 0x04 or k_end - k_start != size:
        raise ValueError
    tag, s_start, s_end = _tlv_at(data, k_end, end)
    if tag != 0x02 or s_end != end or s_start == s_end:
        raise ValueError
    serial = data[s_start:s_end]
    if len(serial) > 1 and ((serial[0] == 0 and serial[1] < 0x80) or (serial[0] == 0xFF and serial[1] >= 0x80)):
        raise ValueError  # a non-minimal INTEGER is not DER: asn1crypto's path refuses it by name
    if len(serial) > MAX_SERIAL_OCTETS:
        raise ValueError  # maybe a 20-octet serial with its sign octet: the general path decides
    return CertId(algorithm, data[n_start:n_end], data[k_start:k_end],
                  int.from_bytes(serial, "big", signed=True), data[tlv_start:end])


def _fast_parse(der: bytes) -> ParsedRequest | None:
    """The plain request shape, decoded by hand; None for anything else (see above)."""
    try:
        end = len(der)
        tag, start, stop = _tlv_at(der, 0, end)  # OCSPRequest
        if tag != 0x30 or stop != end:
            return None
        tag, t_start, t_end = _tlv_at(der, start, end)  # TBSRequest
        if tag != 0x30 or t_end != end:  # an optionalSignature follows: not the plain shape
            return None
        tag, l_start, l_end = _tlv_at(der, t_start, t_end)  # requestList
        if tag != 0x30:
            return None
        cert_ids = []
        pos = l_start
        while pos < l_end:
            tag, r_start, r_end = _tlv_at(der, pos, l_end)  # Request
            if tag != 0x30:
                return None
            tag, c_start, c_end = _tlv_at(der, r_start, r_end)  # CertID
            if tag != 0x30 or c_end != r_end:  # singleRequestExtensions: not the plain shape
                return None
            cert_ids.append(_fast_cert_id(der, r_start, c_start, c_end))
            pos = r_end
        if not cert_ids or len(cert_ids) > MAX_CERTS_PER_REQUEST:
            return None
        nonce = None
        if l_end != t_end:
            nonce = _fast_nonce(der, l_end, t_end)
            if nonce is None:
                return None
        return ParsedRequest(cert_ids=tuple(cert_ids), nonce=nonce)
    except (ValueError, IndexError):
        return None


def _fast_nonce(der: bytes, pos: int, end: int) -> bytes | None:
    """The nonce of a requestExtensions holding exactly one nonce extension, else None."""
    tag, x_start, x_end = _tlv_at(der, pos, end)
    if tag != 0xA2 or x_end != end:
        return None
    tag, s_start, s_end = _tlv_at(der, x_start, x_end)  # Extensions
    if tag != 0x30 or s_end != x_end:
        return None
    tag, e_start, e_end = _tlv_at(der, s_start, s_end)  # the one Extension
    if tag != 0x30 or e_end != s_end or der[e_start:e_start + len(_NONCE_OID)] != _NONCE_OID:
        return None
    tag, v_start, v_end = _tlv_at(der, e_start + len(_NONCE_OID), e_end)  # no 'critical' here
    if tag != 0x04 or v_end != e_end:
        return None
    tag, n_start, n_end = _tlv_at(der, v_start, v_end)  # RFC 8954: an OCTET STRING inside
    if tag != 0x04 or n_end != v_end or not MIN_NONCE_OCTETS <= n_end - n_start <= MAX_NONCE_OCTETS:
        return None
    return der[n_start:n_end]


def decode_get_path(path_tail: str) -> bytes:
    """Turn the URL tail of an RFC 5019 GET request into the request's DER bytes.

    Accepts the tail percent-encoded or not (``%2B %2F %3D``), with or without ``=``
    padding, URL-safe characters, and with leading slashes. Which slashes are real:
    the base64 of a DER SEQUENCE always starts with ``M`` (0x30), so leading slashes
    come from URL joining and are dropped, while every slash after the first character
    is base64 and is kept, doubled or not. Proxies that "clean" paths (nginx's
    ``merge_slashes``, Go's ServeMux redirect) turn a base64 ``//`` into ``/``; when the
    tail does not decode to one complete DER value we try putting those slashes back,
    keeping the first combination that parses as an OCSPRequest.
    Raises ``MalformedRequest`` when nothing works.
    """
    if len(path_tail) > 3 * MAX_REQUEST_BYTES:  # percent-encoding at most triples the length
        raise MalformedRequest("GET request too long")
    text = unquote(path_tail).lstrip("/")
    # Some clients leave '+' unescaped and something on the way turns it into a space;
    # URL-safe base64 is not RFC 5019 but costs nothing to accept.
    text = text.replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    if not text:
        raise MalformedRequest("empty GET request")
    der = _b64_der(text)
    if der is not None:
        return der
    for candidate in _slash_repairs(text):
        der = _b64_der(candidate)
        if der is not None and _parses(der):
            return der
    raise MalformedRequest("GET path is not base64 of a DER request")


def _b64_der(text: str) -> bytes | None:
    """Decode unpadded base64; return it only if it is exactly one DER TLV of sane size."""
    if len(text) % 4 == 1:  # no base64 encoding has this length
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) > MAX_REQUEST_BYTES or _der_length(data) != len(data):
        return None
    return data


def _der_length(data: bytes) -> int | None:
    """Total length (header + content) announced by a leading DER SEQUENCE, if any."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    octets = first & 0x7F
    if octets == 0 or octets > 3 or len(data) < 2 + octets:
        return None
    return 2 + octets + int.from_bytes(data[2 : 2 + octets], "big")


def _slash_repairs(text: str):
    """Candidates where ``extra`` of the single slashes were originally longer runs."""
    positions = [i for i, ch in enumerate(text) if ch == "/"]
    if not positions or "//" in text:  # a cleaned path has no doubled slash left
        return
    tried = 0
    for extra in range(1, 4):
        for combo in itertools.combinations_with_replacement(positions, extra):
            tried += 1
            if tried > _MAX_SLASH_REPAIRS:
                return
            pieces, last = [], 0
            for pos in combo:
                pieces.append(text[last:pos])
                pieces.append("/")
                last = pos
            pieces.append(text[last:])
            yield "".join(pieces)


def _parses(der: bytes) -> bool:
    try:
        parse_request(der)
    except MalformedRequest:
        return False
    return True
