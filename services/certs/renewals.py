"""The rules of a renewal hand-over (issue 15): which registered certificate a presented
one follows, when a house's automatic approval applies, and what a decision may be.
Plain functions and dataclasses, no I/O; the holder rule itself is ``shared.holders``
(the online channel applies the same one).

A renewal is ``pending`` until its house decides: ``approved`` registers the new
certificate for that user (the old one stays valid until it expires or is retired),
``rejected`` keeps a reason the provider is shown. A decision is final.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared import errors
from shared.holders import Holder, same_holder

from .certificates import REASON_MAX, free_text

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
#: Who decides when a house has switched automatic approval on (the history and audit actor).
AUTO_ACTOR = "system:auto-renewal"


@dataclass(frozen=True, slots=True)
class Registered:
    """A certificate registered to the user, as far as the rule needs it."""

    certificate_id: str
    holder: Holder | None
    status: str                # 'active' | 'suspended' | 'revoked'
    not_after: datetime | None
    issuer_revoked: bool = False


def followed(presented: Holder, registered: list[Registered]) -> Registered | None:
    """The registered certificate a presented one renews: of the same holder, not
    revoked (by the house or its issuer), the one valid longest. None: not a renewal."""
    candidates = [r for r in registered
                  if r.holder is not None and r.status != "revoked" and not r.issuer_revoked
                  and same_holder(presented, r.holder)]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.not_after is not None, r.not_after or datetime.min))


def auto_approvable(auto_approve: bool, replaced: Registered, presented_at: datetime) -> bool:
    """The house's automatic approval applies only while the old certificate is still
    valid and not suspended: whoever holds a live certificate's key is its holder; a
    suspended or expired one proves nothing and waits for a person."""
    return (auto_approve and replaced.status == "active" and not replaced.issuer_revoked
            and replaced.not_after is not None and presented_at < replaced.not_after)


def check_pending(status: str) -> None:
    """409 unless the renewal still waits for a decision."""
    if status != PENDING:
        raise errors.Conflict(f"the renewal is already {status}; a decision is final",
                              errors={"status": status})


def rejection_reason(value: object) -> str:
    """The reason the provider will read: an operator's note (trimmed, bounded), required."""
    text = free_text(value, "reason") if isinstance(value, str) else None
    if not text:
        raise errors.Invalid("reason is required: the provider is shown it",
                             errors={"reason": "say why, in words the provider understands"})
    return text


def status_filter(raw: str | None) -> str | None:
    """The listing's ``status`` (all when absent); 422 for another word."""
    value = (raw or "").strip() or None
    if value is not None and value not in STATUSES:
        raise errors.Invalid("unknown status", errors={"status": f"one of {', '.join(STATUSES)}"})
    return value
