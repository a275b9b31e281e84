"""Who sees whom in the OCSP log. Pure: no HTTP, no database.

A log line says which provider account used the system, when, and from which address:
personal data in the GDPR's sense (an IP address is, CJEU C-582/14 Breyer). It is
needed by the staff who answer for the house's accounts and act on them — its admins,
CNAS's, and its operators, who take the provider's call when a desktop is refused —
and when a stolen certificate is investigated; a house viewer, who watches the service
work, needs the answers and their timing, not the people. So an entry is shown whole
only to a reader holding ``ocsp-log:personal`` (migration users/003);
anyone else sees the address cut to its network and the account's CUI hidden, and may
not filter by account (a filter would re-identify the line it masks).

What is masked: ``client`` (IPv4 to its /24, IPv6 to its /48, anything else hidden),
``username`` (the CUI's middle digits, keeping the house suffix, so the house is still
legible), and the user name a client claimed, which the online channel keeps in
``detail`` after ``; claimed `` when it is not the certificate's owner. The serial, the certificate and the issuer stay: they identify a
certificate, which every reader of the house may look up anyway.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from shared.auth import Principal, Right

HIDDEN = "***"
IPV4_PREFIX = 24
IPV6_PREFIX = 48
#: Characters of the account name kept on each side of the masked middle.
KEPT = 2


def sees_personal_data(principal: Principal) -> bool:
    """Whether ``principal`` sees the log's addresses and accounts in clear."""
    return principal.can(Right.OCSP_LOG_PERSONAL)


def mask_address(client: str | None) -> str | None:
    """The caller's network, not the caller: ``10.1.2.0/24``, ``2001:db8:1::/48``; a value
    that is not an address (a name from a proxy, garbage) is hidden whole."""
    if client is None:
        return None
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return HIDDEN
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def mask_username(username: str | None) -> str | None:
    """``12433636_CAS-B`` → ``12****36_CAS-B``: the house stays, the provider does not.
    A name without the house suffix (a refused Basic username, say) is masked the same
    way, and a short one hidden whole."""
    if username is None:
        return None
    account, underscore, house = username.partition("_")
    if len(account) <= 2 * KEPT:
        account = HIDDEN
    else:
        account = account[:KEPT] + "*" * min(len(account) - 2 * KEPT, 12) + account[-KEPT:]
    return account + underscore + house if house.startswith("CAS-") else account


CLAIMED = "; claimed "


def mask_detail(detail: str | None) -> str | None:
    """A refusal's reason stays; a claimed user name after it is masked like an account."""
    if detail is None or CLAIMED not in detail:
        return detail
    reason, _, claimed = detail.partition(CLAIMED)
    return reason + CLAIMED + mask_username(claimed)


def as_seen_by(entry: Mapping[str, Any], principal: Principal) -> Mapping[str, Any]:
    """``entry`` (the API's JSON form) as ``principal`` may see it."""
    if sees_personal_data(principal):
        return entry
    return {**entry, "client": mask_address(entry.get("client")),
            "username": mask_username(entry.get("username")), "detail": mask_detail(entry.get("detail"))}
