"""How many of a house's certificates expire soon, as the console's dashboard shows them
("expiră în 30 / 15 / 7 zile"): the counting windows and the answer's shape. Pure; the
windows and what "expires within" means come from ``shared.expiry``, the rule the
online channel warns the provider's desktop by.

Counted like the listing's ``expiring_within_days`` (so that a count and the list it
links to agree): every certificate not revoked, suspended ones included, whose validity
ends between now and the window's end. A window's count includes the narrower ones.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.expiry import WINDOWS


def horizon(now: datetime) -> datetime:
    """The end of the widest window: nothing later is counted."""
    return now + timedelta(days=max(WINDOWS))


def counts_json(rows: Iterable[Mapping[str, Any]], now: datetime, houses: Iterable[str] = ()) -> dict[str, Any]:
    """The answer of ``GET /v1/certificates/expiring``: one item per house (each of
    ``houses`` even when it has none; others only when they have some), each window's
    count as ``within_<days>``, and the totals. ``rows``: ``(cas, days, count)``."""
    blank = {f"within_{days}": 0 for days in WINDOWS}
    by_house: dict[str, dict[str, int]] = {cas: dict(blank) for cas in houses}
    for row in rows:
        by_house.setdefault(row["cas"], dict(blank))[f"within_{row['days']}"] = row["count"]
    total = {name: sum(counts[name] for counts in by_house.values()) for name in blank}
    return {"as_of": now.isoformat(), "windows": list(WINDOWS),
            "items": [{"cas": cas, **by_house[cas]} for cas in sorted(by_house)], "total": total}
