"""The PROXY protocol header (HAProxy's, versions 1 and 2): what a TCP balancer writes
before a connection's first byte to say whose connection it is.

Behind a balancer passing :8443 through as TCP (the client certificate is checked by
ocsp, so the balancer cannot terminate TLS), every connection would come from the
balancer's address; its header (HAProxy's ``send-proxy-v2``) carries the provider's.
Only a trusted peer's header is believed (``shared.http.proxied``); here, only reading.

Pure functions over the bytes received so far. ``parse_header`` answers None while the
bytes are a strict prefix of a header that may still complete, a ``ProxyHeader`` once one
is complete, and raises ``ProxyHeaderError`` as soon as they cannot be one. It never looks
past ``MAX_HEADER`` bytes (version 1: 107, the specification's own bound; version 2: its
16 fixed bytes and at most ``MAX_V2_PAYLOAD`` more), so a peer cannot make it wait for or
hold more. Strict: a version 1 line with anything out of its grammar, a version 2 header
of another version or command, a datagram or unknown family, an address block shorter than
its family's or TLVs that do not fit exactly are refused, not guessed at. A LOCAL command
(a balancer's own health check), version 1's UNKNOWN, version 2's UNSPEC family and a unix
socket's addresses give no source: the connection is the peer's own. An IPv4-mapped IPv6
source is given as the IPv4 address it maps. TLV contents are
not read (none is needed; a CRC32c TLV is not verified: the header comes from a trusted
peer over a TCP connection whose integrity TCP and the network already guard).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

__all__ = ["MAX_HEADER", "MAX_V1", "MAX_V2_PAYLOAD", "ProxyHeader", "ProxyHeaderError", "V1_PREFIX",
           "V2_SIGNATURE", "looks_like_header", "parse_header"]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: The longest version 1 line, CRLF included (the specification's bound).
MAX_V1 = 107
V2_FIXED = 16
#: The address block and TLVs a version 2 header may carry here: a unix address block is
#: 216 bytes, HAProxy's optional TLVs (authority, unique id, TLS details) a few hundred.
MAX_V2_PAYLOAD = 1024
MAX_HEADER = max(MAX_V1, V2_FIXED + MAX_V2_PAYLOAD)

#: Why bytes are refused (bounded: a metric label).
REASONS = ("missing", "malformed", "too_long")

_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6, _UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM = 0x1
_ADDRESS_BLOCK = {_INET: 12, _INET6: 36, _UNIX: 216}
_V1_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")
_V1_IPV4 = re.compile(rb"[0-9.]{7,15}")
_V1_IPV6 = re.compile(rb"[0-9A-Fa-f:.]{2,45}")
_V1_TEXT = re.compile(rb"[\x20-\x7e]*")


class ProxyHeaderError(ValueError):
    """The bytes are not a PROXY header that may be believed; ``reason`` is one of
    ``REASONS`` ("missing": they do not start like one at all)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete header: ``length`` bytes, after which the connection's own bytes begin;
    ``source``/``destination`` are (address, port), None when the header names none."""

    version: int
    length: int
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def looks_like_header(data: bytes) -> bool:
    """Whether ``data`` (a connection's first bytes, at least one) begins as a PROXY header
    would, as far as it goes: what a peer not trusted to send one is refused for."""
    head = bytes(data[:len(V2_SIGNATURE)])
    return bool(head) and (V2_SIGNATURE.startswith(head) or V1_PREFIX.startswith(head[:len(V1_PREFIX)]))


def parse_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None while more bytes may complete it."""
    data = bytes(data[:MAX_HEADER])
    if not data:
        return None
    signature = data[:len(V2_SIGNATURE)]
    if V2_SIGNATURE.startswith(signature):
        return _v2(data) if len(signature) == len(V2_SIGNATURE) else None
    prefix = data[:len(V1_PREFIX)]
    if V1_PREFIX.startswith(prefix):
        return _v1(data) if len(prefix) == len(V1_PREFIX) else None
    raise ProxyHeaderError("missing", "the connection does not start with a PROXY protocol header")


# -- version 1: "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8443\r\n" ---------------------------

def _v1(data: bytes) -> ProxyHeader | None:
    window = data[:MAX_V1]
    end = window.find(b"\r\n")
    line = window if end < 0 else window[:end]
    if not _V1_TEXT.fullmatch(line.rstrip(b"\r") if end < 0 else line):
        raise ProxyHeaderError("malformed", "a PROXY v1 line holds only printable ASCII up to its CRLF")
    if end < 0:
        if len(window) >= MAX_V1:
            raise ProxyHeaderError("too_long", f"no CRLF within a PROXY v1 line's {MAX_V1} bytes")
        return None
    length = end + 2
    if line == b"PROXY UNKNOWN" or line.startswith(b"PROXY UNKNOWN "):
        return ProxyHeader(1, length)  # the rest of the line is to be ignored
    fields = line.split(b" ")
    if len(fields) != 6 or fields[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("malformed", "a PROXY v1 line is PROXY TCP4|TCP6 <source> <destination> "
                                            "<source port> <destination port>, or PROXY UNKNOWN")
    family = fields[1]
    source, destination = _v1_address(fields[2], family), _v1_address(fields[3], family)
    return ProxyHeader(1, length, (source, _v1_port(fields[4])), (destination, _v1_port(fields[5])))


def _v1_address(raw: bytes, family: bytes) -> str:
    pattern, kind = (_V1_IPV4, ipaddress.IPv4Address) if family == b"TCP4" else (_V1_IPV6, ipaddress.IPv6Address)
    if pattern.fullmatch(raw):
        try:
            return _text(kind(raw.decode("ascii")))
        except ValueError:
            pass
    raise ProxyHeaderError("malformed", f"not a {family.decode()} address in a PROXY v1 line")


def _v1_port(raw: bytes) -> int:
    if _V1_PORT.fullmatch(raw) and int(raw) <= 65535:
        return int(raw)
    raise ProxyHeaderError("malformed", "a PROXY v1 port is 0 to 65535, in decimal without leading zeros")


# -- version 2: the signature, version and command, family and transport, length, payload ----

def _v2(data: bytes) -> ProxyHeader | None:
    if len(data) > 12:
        version, command = data[12] >> 4, data[12] & 0x0F
        if version != 2:
            raise ProxyHeaderError("malformed", f"PROXY protocol version {version}, not 2")
        if command not in (_LOCAL, _PROXY):
            raise ProxyHeaderError("malformed", f"PROXY v2 command {command}: neither LOCAL nor PROXY")
    if len(data) < V2_FIXED:
        return None
    payload_length = int.from_bytes(data[14:16], "big")
    if payload_length > MAX_V2_PAYLOAD:
        raise ProxyHeaderError("too_long", f"a PROXY v2 header of {payload_length} bytes after its fixed "
                                           f"16 (at most {MAX_V2_PAYLOAD} here)")
    length = V2_FIXED + payload_length
    if len(data) < length:
        return None
    if data[12] & 0x0F == _LOCAL:  # (the command, checked above)
        return ProxyHeader(2, length)  # the balancer's own connection: its block is ignored
    family, transport = data[13] >> 4, data[13] & 0x0F
    if family == _UNSPEC:
        return ProxyHeader(2, length)
    if family not in _ADDRESS_BLOCK or transport != _STREAM:
        raise ProxyHeaderError("malformed", f"PROXY v2 family {family} over transport {transport}: "
                                            "a stream over IPv4, IPv6 or a unix socket expected")
    payload = data[V2_FIXED:length]
    block = _ADDRESS_BLOCK[family]
    if payload_length < block:
        raise ProxyHeaderError("malformed", f"a PROXY v2 address block of {payload_length} bytes, "
                                            f"{block} needed")
    _check_tlvs(payload[block:])
    if family == _UNIX:
        return ProxyHeader(2, length)
    size = 4 if family == _INET else 16
    ports = payload[2 * size:2 * size + 4]
    return ProxyHeader(2, length, (_packed(payload[:size]), int.from_bytes(ports[:2], "big")),
                       (_packed(payload[size:2 * size]), int.from_bytes(ports[2:], "big")))


def _packed(raw: bytes) -> str:
    """The text of a packed IPv4 (4 bytes) or IPv6 (16) address. inet_ntop for IPv4: the
    same dotted quad as ipaddress gives, at a fraction of the cost (HAProxy's usual case)."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    return _text(ipaddress.IPv6Address(raw))


def _text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Canonical text; an IPv4 client a dual-stack balancer names as ::ffff:a.b.c.d is
    a.b.c.d, as the throttles and the log know it when it connects directly."""
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _check_tlvs(tlvs: bytes) -> None:
    """Each TLV (type, 2-byte length, value) must fit, and together they must fill the rest."""
    at = 0
    while at < len(tlvs):
        if len(tlvs) - at < 3:
            raise ProxyHeaderError("malformed", "a PROXY v2 TLV cut short")
        at += 3 + int.from_bytes(tlvs[at + 1:at + 3], "big")
        if at > len(tlvs):
            raise ProxyHeaderError("malformed", "a PROXY v2 TLV longer than the header")
