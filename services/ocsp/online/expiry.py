"""What an online answer says about the certificate's expiry and about a replaced key,
free of HTTP: ``certificate_expires_at`` always, and from ``shared.expiry.WARNING_DAYS``
days before expiry a ``warning`` the desktop shows in its status bar, so that a provider
renews before access stops rather than learning of it from a refusal.
"""
from __future__ import annotations

from datetime import datetime, timezone

from shared import expiry

WARNING_CODE = "certificate_expiring"
WARNING = ("Certificatul expiră în {days}: reînnoiți-l și conectați-vă cu noul certificat.",
           "The certificate expires in {days}: renew it and connect with the new certificate.")


def romanian_days(n: int) -> str:
    """``n`` days as Romanian says it: "1 zi", "2 zile" … "19 zile", then "20 de zile"
    (a number whose last two digits are 0 or 20–99 takes "de"; "101 zile", "120 de zile")."""
    if n == 1:
        return "1 zi"
    return f"{n} de zile" if n % 100 == 0 or n % 100 >= 20 else f"{n} zile"


def english_days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def expiry_warning(not_after: datetime, now: datetime, language: str) -> str | None:
    """The status bar's warning in ``language`` ('ro' or 'en'), or None before the
    warning days (and after expiry: that is a refusal, not a warning)."""
    if not expiry.warns(not_after, now):
        return None
    days = expiry.days_left(not_after, now)
    ro, en = WARNING
    return en.format(days=english_days(days)) if language == "en" else ro.format(days=romanian_days(days))


def expiry_fields(not_after: datetime, now: datetime, language: str) -> dict[str, object]:
    """The fields an online connect or heartbeat answer gains: when the certificate
    expires, how many days are left, and the warning with its code when it is due."""
    fields: dict[str, object] = {
        "certificate_expires_at": not_after.astimezone(timezone.utc).isoformat(),
        "certificate_days_left": expiry.days_left(not_after, now)}
    warning = expiry_warning(not_after, now, language)
    if warning is not None:
        fields.update(warning=warning, warning_code=WARNING_CODE)
    return fields


def replaced_words(replaced_at: datetime | None, language: str) -> str:
    """The ``{when}`` of the key_replaced message: " la 2026-12-02 14:05 UTC", or ""
    when the time is not known (a key replaced before the channel kept the times)."""
    if replaced_at is None:
        return ""
    moment = replaced_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f" on {moment}" if language == "en" else f" la {moment}"
