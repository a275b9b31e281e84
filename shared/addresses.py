"""Which address a request comes from, when reverse proxies stand in front.

Throttles (logins, activations), the audit trail and the OCSP log count attempts per
client address. Behind a proxy every client would share the proxy's address, so the
proxies' own addresses are configured (``SIUI_TRUSTED_PROXIES``) and only their
``X-Forwarded-For`` is believed. Pure functions: no HTTP objects here.
"""
from __future__ import annotations

import ipaddress

__all__ = ["canonical", "client_address", "parse_addresses"]


def canonical(text: str | None) -> str | None:
    """An IP address in its canonical text form, or None when ``text`` is not one."""
    try:
        return str(ipaddress.ip_address(text.strip())) if text else None
    except ValueError:
        return None


def parse_addresses(raw: str) -> frozenset[str]:
    """A comma-separated list of IP addresses (a setting); ValueError naming a bad one."""
    found = set()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        address = canonical(item)
        if address is None:
            raise ValueError(f"{item!r} is not an IP address")
        found.add(address)
    return frozenset(found)


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: frozenset[str]) -> str:
    """The address an attempt is counted against.

    The peer's address, unless the peer is a trusted reverse proxy: then the nearest
    X-Forwarded-For entry that is not itself a trusted proxy (entries further left were
    written by the client and could be anything).
    """
    address = canonical(peer) or "unknown"
    if address not in trusted_proxies or not forwarded_for:
        return address
    if len(forwarded_for) > 2048:  # a header this long is not from our proxies
        return address
    hops = [canonical(hop) for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop is None:
            return address  # garbage in the header: count against the proxy's own address
        if hop not in trusted_proxies:
            return hop
    return address
