"""Desktop activation ("Administrare / Activare"): what a request says, what it comes to,
and when an address must wait, as plain functions of stored failures, the policy and
"now" (the clock is the caller's).

Decisions:
- A typo costs nothing: a serial that is malformed or fails its check character (which
  catches every single substitution and transposition) is answered 422 at once, before
  any lookup, and is neither stored nor counted. Counting typos only locked out every
  desktop behind a clinic's or a county's NAT address.
- The provider's current key, at its own house, always activates (200), whatever came
  from that address or against that provider before: no lock can be used against the
  key's holder. Brute force needs no lock to be hopeless: a key has 80 random bits.
- Every other well-formed serial (never issued, replaced by a reset, or another house's
  key) is one refusal: the same 403, the same message, counted the same against the
  address, so that an answer never says whether a serial exists or once existed.
- An address with ``max_failures`` refusals in the last ``window`` gets 429 (with the
  seconds until the oldest of them leaves the window) instead of 403, whatever serial
  it sends: the limit is per address only, never per provider, and generous (a county's
  NAT). IPv6 addresses count by their /64 (one LAN), or the limit would be per device.
  A refusal while at 429 is not stored, so one address never holds more than
  ``max_failures`` rows per window. A success does not clear the count.
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared import errors, license
from shared.houses import is_house

from services.keygen.text import field_label

GENERIC_REFUSAL = ("the licence serial is not valid for this insurance house; check the serial "
                   "and the house, or ask the house for a new serial")
CAS_HINT = "is not an insurance house code (AB ... VN, B, OPSNAJ)"
FIELDS = ("license_serial", "cas")
SERIAL_MAX = 64  # characters as typed: 17 symbols, dashes, blanks
CAS_MAX = 16


class Outcome:
    """What an attempt came to: ``activation_attempts.outcome`` and the metric's label."""

    OK = "ok"
    MALFORMED = "malformed"          # 422: not a serial, or a typo caught by the check character
    UNKNOWN_KEY = "unknown-key"      # 403: no key has this digest
    WRONG_HOUSE = "wrong-house"      # 403: a current key, of a provider of another house
    REPLACED_KEY = "replaced-key"    # 403: a key that a reset replaced
    THROTTLED = "throttled"          # 429: the address is at its limit (not stored)

    #: Stored and counted against the address: one kind of refusal to the client.
    REFUSALS = frozenset({UNKNOWN_KEY, WRONG_HOUSE, REPLACED_KEY})
    ALL = (OK, MALFORMED, UNKNOWN_KEY, WRONG_HOUSE, REPLACED_KEY, THROTTLED)


@dataclass(frozen=True)
class ThrottlePolicy:
    """Refusals allowed per address in a sliding window; IPv6 addresses by prefix."""

    max_failures: int = 100
    window_minutes: int = 15
    ipv6_prefix: int = 64

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def since(self, now: datetime) -> datetime:
        """The start of the window that ends at ``now``."""
        return now - self.window


@dataclass(frozen=True)
class Attempt:
    """A well-formed request: the canonical serial (its check character passed) and house."""

    serial: str
    cas: str

    def __repr__(self) -> str:  # never the serial, even in a traceback
        return f"Attempt(cas={self.cas!r})"


def parse_attempt(body: Mapping[str, Any]) -> Attempt:
    """The attempt in a JSON body ``{"license_serial", "cas"}``, or 422 naming each bad
    field. A typo is caught here by the check character, before any lookup."""
    problems = {field_label(name): "unknown field" for name in body if name not in FIELDS}
    serial, cas = body.get("license_serial"), body.get("cas")
    for name, value, limit in (("license_serial", serial, SERIAL_MAX), ("cas", cas, CAS_MAX)):
        if value is None or value == "":
            problems[name] = "is required"
        elif not isinstance(value, str):
            problems[name] = "must be a string"
        elif len(value) > limit:
            problems[name] = f"must be at most {limit} characters"
    if "license_serial" not in problems:
        try:
            serial = license.check(serial)
        except license.MalformedSerial as exc:
            problems["license_serial"] = exc.reason
    if "cas" not in problems:
        cas = cas.strip().upper()
        if not is_house(cas):
            problems["cas"] = CAS_HINT
    if problems:
        raise errors.Invalid("the licence serial or the house is not acceptable", errors=problems)
    return Attempt(serial, cas)


def classify(key: Mapping[str, Any] | None, cas: str) -> str:
    """The outcome of a well-formed serial whose digest found ``key`` (or nothing).

    ``key`` has the provider's ``cas`` and the key's ``replaced_at``.
    """
    if key is None:
        return Outcome.UNKNOWN_KEY
    if key["replaced_at"] is not None:
        return Outcome.REPLACED_KEY
    if key["cas"] != cas:
        return Outcome.WRONG_HOUSE
    return Outcome.OK


def network_of(address: str, policy: ThrottlePolicy) -> str:
    """What an address's refusals are counted under: an IPv4 address itself, an IPv6
    address's ``/ipv6_prefix`` network (a LAN gets many addresses; a NAT'd one shares one).
    Anything else (``unknown``) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.7 is the IPv4 client 192.0.2.7
            return str(ip.ipv4_mapped)
        if policy.ipv6_prefix < 128:
            return str(ipaddress.ip_network(f"{ip}/{policy.ipv6_prefix}", strict=False))
    return str(ip)


def retry_after(counted: datetime | None, policy: ThrottlePolicy, now: datetime) -> int | None:
    """Seconds until the address may be refused with 403 again, or None when it is not
    at its limit.

    ``counted`` is the time of the ``max_failures``-th newest refusal of the address
    inside the window (None when it has fewer): the wait ends when it leaves the window.
    """
    if counted is None or counted <= policy.since(now):
        return None
    return max(1, math.ceil((counted + policy.window - now).total_seconds()))


def wait_message(seconds: int) -> str:
    """The 429's detail: the same for every serial sent from the address."""
    minutes = max(1, -(-seconds // 60))
    return (f"too many refused activation attempts from this address; try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''} (a correct licence serial is accepted at any time)")
