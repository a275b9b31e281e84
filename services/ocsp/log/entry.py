"""One line of the OCSP log ("Log OCSP"): what was answered or decided, for whom, when."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPERATIONS = frozenset({"ocsp", "connect"})
STATUSES = frozenset({"good", "revoked", "unknown", "unauthorized", "malformed", "try_later",
                      "online", "offline"})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the OCSP log.

    operation: 'ocsp' | 'connect'. status: for 'ocsp' the answer given ('good', 'revoked',
    'unknown', 'unauthorized', 'malformed', 'try_later'); for 'connect' 'online' or
    'offline'. ``at`` is timezone-aware (UTC). ``serial`` is the certificate serial in
    decimal. ``client`` is the caller's address. ``detail``: a refusal's reason code,
    or other short context.
    """

    at: datetime
    operation: str
    status: str
    latency_ms: float
    client: str | None
    cas: str | None = None
    username: str | None = None
    serial: str | None = None
    issuer_id: str | None = None
    certificate_id: str | None = None
    detail: str | None = None
