"""When a certificate's expiry is worth telling someone: the provider's desktop (the
online channel's ``warning``, services/ocsp) and the house (the console's dashboard,
counted by services/certs). One rule for both, so the desktop warns on the same day
the house sees the certificate in its "30 days" count. Pure: the caller gives "now".
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

#: From this many days before expiry the desktop is warned, and the house counts it.
WARNING_DAYS = 30
#: The dashboard's windows, widest first: "expires within 30 / 15 / 7 days".
WINDOWS = (30, 15, 7)

_DAY = timedelta(days=1)


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, rounded up (12 hours left is "1 day": the
    certificate still works today); 0 once it has expired."""
    remaining = not_after - now
    if remaining <= timedelta(0):
        return 0
    return math.ceil(remaining / _DAY)


def within(not_after: datetime, now: datetime, days: int) -> bool:
    """Whether a still valid certificate expires within ``days`` days of ``now``
    (``now < not_after <= now + days``): the certs listing's ``expiring_within_days``."""
    return now < not_after <= now + timedelta(days=days)


def warns(not_after: datetime, now: datetime) -> bool:
    """Whether the desktop is warned: from ``WARNING_DAYS`` days before expiry on (the
    moment exactly 30 days before is included), until it has expired."""
    return within(not_after, now, WARNING_DAYS)


def window_of(not_after: datetime, now: datetime) -> int | None:
    """The narrowest dashboard window the certificate falls in (7, 15 or 30), or None."""
    fitting = [days for days in WINDOWS if within(not_after, now, days)]
    return min(fitting) if fitting else None
