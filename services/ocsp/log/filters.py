"""What a reader of the OCSP log asks to see: the filters of ``GET /v1/log`` and the
stream, parsed and limited to the reader's house. Pure: no HTTP, no database."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from services.ocsp.log.entry import OPERATIONS, STATUSES
from services.ocsp.log.privacy import sees_personal_data
from shared import errors
from shared.auth import Principal, house_filter
from shared.houses import is_house
from shared.validation import check_moment


@dataclass(frozen=True)
class LogFilter:
    """What a reader asked to see; ``cas`` is already limited to what they may see."""

    cas: str | None = None
    username: str | None = None
    serial: str | None = None
    status: str | None = None
    operation: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {"cas": self.cas, "username": self.username, "serial": self.serial,
                "status": self.status, "operation": self.operation, "since": self.since,
                "until": self.until}


def parse_serial(text: str) -> str:
    """A certificate serial as typed (decimal, or hex with ``0x``), in the log's decimal form."""
    raw = text.strip().replace(":", "").replace(" ", "")
    if len(raw) > 64:  # a 20-octet serial is 49 decimal digits, 42 hex with 0x
        raise ValueError("is longer than any certificate serial")
    try:
        value = int(raw[2:], 16) if raw.lower().startswith("0x") else int(raw, 10)
    except ValueError:
        raise ValueError("must be a decimal number or 0x-hex") from None
    if value < 0:
        raise ValueError("must not be negative")
    return str(value)


def parse_time(text: str) -> datetime:
    """An ISO 8601 moment; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date or time, e.g. 2026-01-31T10:00:00Z") from None
    problem = check_moment(moment)
    if problem:
        raise ValueError(problem)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_filters(query: Mapping[str, str], principal: Principal) -> LogFilter:
    """The filters of a log query; 422 naming each unacceptable parameter. A county
    reader is held to their own house whatever ``cas`` they send."""
    problems: dict[str, str] = {}

    def text(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value or None

    requested = (text("cas") or "").upper() or None
    if requested and principal.is_national and not is_house(requested):
        problems["cas"] = "is not a house code (AB ... VN, B, OPSNAJ)"
    serial = text("serial")
    if serial:
        try:
            serial = parse_serial(serial)
        except ValueError as exc:
            problems["serial"] = str(exc)
    status, operation = text("status"), text("operation")
    if status and status not in STATUSES:
        problems["status"] = "must be one of " + ", ".join(sorted(STATUSES))
    if operation and operation not in OPERATIONS:
        problems["operation"] = "must be one of " + ", ".join(sorted(OPERATIONS))
    moments: dict[str, datetime | None] = {"from": None, "to": None}
    for name in moments:
        if text(name):
            try:
                moments[name] = parse_time(text(name))
            except ValueError as exc:
                problems[name] = str(exc)
    if moments["from"] and moments["to"] and moments["from"] >= moments["to"]:
        problems["to"] = "must be later than from"
    if problems:
        raise errors.Invalid("some query parameters are not acceptable", errors=problems)
    if text("username") and not sees_personal_data(principal):
        # The masked log would otherwise be re-identified one account at a time.
        raise errors.Forbidden("filtering the OCSP log by user needs the right ocsp-log:personal "
                               "(admins and operators); your roles see the log with users masked")
    return LogFilter(cas=house_filter(principal, requested), username=text("username"), serial=serial,
                     status=status, operation=operation, since=moments["from"], until=moments["to"])
