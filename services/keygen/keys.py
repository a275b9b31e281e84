"""Activation keys ("Generare parola" / "Resetare parola"): the rules, free of I/O.

A key exists in clear only in :class:`NewKey`, which lives for one request: it goes into
the operator's answer and the agreement PDF. What is kept and published is its digest
(HMAC-SHA256 under the house-wide pepper, ``shared.license.digest``).
"""
from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shared import errors, license
from shared.usernames import external_username
from shared.events import KeyIssued

from services.keygen.agreement import AgreementData
from services.keygen.text import problem_in

GENERATE_WHEN_KEYED = "this provider already has a key: use Resetare parola"
RESET_WHEN_UNKEYED = "this provider has no key yet: use Generare parola"
UNPRINTABLE_PROVIDER = ("this provider's stored details hold characters that must not be printed "
                        "on the agreement: correct the provider (Modifica) first, then issue the key")
# A provider row's text columns, as the API names them.
_TEXT_COLUMNS = {c: c for c in ("cas", "cui", "name", "description", "code", "org_type",
                                "fiscal_attribute", "trade_register_no", "country", "locality",
                                "currency", "work_point", "location_type")}
_TEXT_COLUMNS |= {"legal_representative_name": "legal_representative.name",
                  "legal_representative_cnp": "legal_representative.cnp"}
# The agreement's "Data" is the day at the house, not in UTC.
HOUSE_TIME = ZoneInfo("Europe/Bucharest")


def check_issue(*, has_key: bool, reset: bool) -> None:
    """Generare only for a provider without a key, Resetare only for one with a key
    (409 naming the button to use)."""
    if has_key and not reset:
        raise errors.Conflict(GENERATE_WHEN_KEYED)
    if reset and not has_key:
        raise errors.Conflict(RESET_WHEN_UNKEYED)


def check_printable(provider: Mapping[str, Any]) -> None:
    """422 naming every text of ``provider`` (a providers row) that holds a character the
    agreement refuses to draw (text.py): a record stored before that rule. The key and
    its agreement (and the KeyIssued event naming the provider) wait until it is corrected."""
    problems = {field: why for column, field in _TEXT_COLUMNS.items()
                if isinstance(provider[column], str) and (why := problem_in(provider[column]))}
    if problems:
        raise errors.Invalid(UNPRINTABLE_PROVIDER, errors=problems)


@dataclass(frozen=True)
class NewKey:
    """A key just made: the clear serial (never stored), its digest and id."""

    key_id: str
    serial: str = field(repr=False)
    digest: bytes = field(repr=False)
    issued_at: datetime


def new_key(pepper: bytes, now: datetime, *,
            randbits: Callable[[int], int] = secrets.randbits) -> NewKey:
    """A fresh key issued at ``now`` (``randbits`` is injectable for tests)."""
    serial = license.generate(randbits=randbits)
    return NewKey(key_id=str(uuid.uuid4()), serial=serial,
                  digest=license.digest(serial, pepper), issued_at=now)


def key_issued(provider: Mapping[str, Any], key: NewKey, *, reset: bool,
               issued_by: str) -> KeyIssued:
    """The KeyIssued event for ``key`` of ``provider`` (a providers row): what the users
    service and the online channel need, and never the key."""
    return KeyIssued(
        provider_id=str(provider["id"]), cui=provider["cui"], provider_code=provider["code"],
        provider_name=provider["name"], key_id=key.key_id, key_digest=key.digest.hex(),
        reset=reset, issued_at=key.issued_at.isoformat(), issued_by=issued_by,
        external_user=external_username(provider["cui"], provider["cas"]))


def agreement_day(moment: datetime) -> date:
    """The date printed on the agreement: the day in Romania at ``moment``."""
    return moment.astimezone(HOUSE_TIME).date()


def agreement_for(provider: Mapping[str, Any], key: NewKey) -> AgreementData:
    """What the agreement for ``key`` says about ``provider`` (a providers row)."""
    return AgreementData(
        house=provider["cas"], provider_name=provider["name"], cui=provider["cui"],
        trade_register_no=provider["trade_register_no"],
        representative_name=provider["legal_representative_name"],
        representative_cnp=provider["legal_representative_cnp"],
        license_serial=key.serial, date=agreement_day(key.issued_at))
