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
    the wrong length, and a nonce that is not an OCTET STRING of 1..128 octets.
    Extensions other than the nonce, and any request signature, are ignored: we
    require neither.
    """
    if not der:
        raise MalformedRequest("empty request")
    if len(der) > MAX_REQUEST_BYTES:
        raise MalformedRequest(f"request larger than {MAX_REQUEST_BYTES} bytes")
    try:
        request = asn1_ocsp.OCSPRequest.load(bytes(der), strict=True)
        # asn1crypto decodes lazily: walking .native forces every nested value, so that
        # garbage anywhere surfaces here as a malformed request rather than later as a
        # crash in the middle of answering.
        request.native
        tbs = request["tbs_request"]
        entries = tbs["request_list"]
        count = len(entries)
        if count == 0:
            raise MalformedRequest("request lists no certificates")
        if count > MAX_CERTS_PER_REQUEST:
            raise MalformedRequest(f"request lists more than {MAX_CERTS_PER_REQUEST} certificates")
        cert_ids = tuple(_cert_id(entry["req_cert"]) for entry in entries)
        nonce = _nonce(tbs["request_extensions"])
    except MalformedRequest:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise MalformedRequest(f"undecodable request ({type(exc).__name__})") from None
    return ParsedRequest(cert_ids=cert_ids, nonce=nonce)


def _cert_id(value: asn1_ocsp.CertId) -> CertId:
    algorithm = value["hash_algorithm"]["algorithm"].native
    size = HASH_SIZES.get(algorithm)
    if size is None:
        raise MalformedRequest(f"unsupported CertID hash algorithm {algorithm}")
    name_hash = value["issuer_name_hash"].native
    key_hash = value["issuer_key_hash"].native
    if len(name_hash) != size or len(key_hash) != size:
        raise MalformedRequest(f"CertID hashes are not {algorithm} digests")
    return CertId(algorithm, name_hash, key_hash, value["serial_number"].native, value.dump())


def _nonce(extensions: asn1_ocsp.TBSRequestExtensions) -> bytes | None:
    for extension in extensions:  # an absent optional field iterates as empty
        if extension["extn_id"].native != "nonce":
            continue
        nonce = extension["extn_value"].parsed.native
        if not MIN_NONCE_OCTETS <= len(nonce) <= MAX_NONCE_OCTETS:
            raise MalformedRequest(
                f"nonce must be {MIN_NONCE_OCTETS}..{MAX_NONCE_OCTETS} octets, got {len(nonce)}"
            )
        return nonce
    return None


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
