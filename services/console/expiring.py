"""The dashboard's "Certificate care expira" box: each house's certificates expiring
within 30 / 15 / 7 days, read from certs (``GET /v1/certificates/expiring``) as the
logged-in operator, so a county sees its own house and CNAS every house (or the one it
chose in the header). Each count links to the certificates list that shows them.

The box never stops the dashboard: without the right to read certificates it is not
shown, and with certs away it says so where the numbers would be.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from shared.auth import Right

from services.console.api import ApiError
from services.console.web import api, house_choice

# TODO(#15): a count of pending renewals beside these, once certs serves GET /v1/renewals.
WINDOW_LABELS = {30: "30 de zile", 15: "15 zile", 7: "7 zile"}


@dataclass(frozen=True)
class ExpiryBox:
    """What the template draws: the windows (widest first), one row per house, the total."""

    windows: tuple[int, ...] = ()
    rows: tuple[dict, ...] = ()
    total: dict = field(default_factory=dict)
    unavailable: bool = False

    def label(self, days: int) -> str:
        return WINDOW_LABELS.get(days, f"{days} zile")


def box_of(body: dict) -> ExpiryBox:
    """The box for certs' answer (only the fields it expects, as numbers)."""
    windows = tuple(int(d) for d in body.get("windows", ()) if isinstance(d, int))

    def counts(item: dict) -> dict:
        return {days: int(item.get(f"within_{days}", 0) or 0) for days in windows}

    rows = tuple({"cas": str(item.get("cas", "")), "counts": counts(item)} for item in body.get("items", ()))
    return ExpiryBox(windows, rows, counts(body.get("total") or {}))


async def expiry_box(request: web.Request) -> ExpiryBox | None:
    """The box for this operator, None when they may not read certificates."""
    if not request["operator"].can(Right.CERTIFICATES_READ):
        return None
    try:
        body = await api(request).get("certs", "/v1/certificates/expiring", cas=house_choice(request))
    except ApiError as exc:
        if exc.status in (401, 403):
            return None
        return ExpiryBox(unavailable=True)
    return box_of(body)
