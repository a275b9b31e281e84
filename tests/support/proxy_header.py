"""PROXY protocol headers as a balancer writes them, built byte by byte from the
specification (not with the parser's own constants), for the tests of shared.http.proxied."""
from __future__ import annotations

import ipaddress
import struct

SIGNATURE = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])


def _to(source: tuple[str, int], destination: tuple[str, int] | None) -> tuple[str, int]:
    """The balancer's own address of the source's family, unless given."""
    return destination or (("127.0.0.1" if ipaddress.ip_address(source[0]).version == 4 else "::1"), 8443)


def v2(source: tuple[str, int] | None, destination: tuple[str, int] | None = None, *,
       local: bool = False, tlvs: bytes = b"") -> bytes:
    """Version 2: PROXY (or LOCAL) over TCP, the family taken from the source's address;
    no source: the UNSPEC family and no address block."""
    if source is None:
        return SIGNATURE + bytes([0x20 if local else 0x21, 0x00]) + struct.pack(">H", len(tlvs)) + tlvs
    destination = _to(source, destination)
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    family = 0x11 if src.version == 4 else 0x21
    block = src.packed + dst.packed + struct.pack(">HH", source[1], destination[1]) + tlvs
    return SIGNATURE + bytes([0x20 if local else 0x21, family]) + struct.pack(">H", len(block)) + block


def v1(source: tuple[str, int], destination: tuple[str, int] | None = None) -> bytes:
    destination = _to(source, destination)
    family = "TCP4" if ipaddress.ip_address(source[0]).version == 4 else "TCP6"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()
