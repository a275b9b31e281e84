"""Desktop activation ("Administrare / Activare"): throttling and outcomes, as plain
functions of stored attempts, the policy and "now" (the clock is the caller's).

Decisions:
- A sliding window: an address, or a provider, that has ``max_failures`` failed attempts
  in the last ``window`` is refused (429) until the oldest of those falls out of it.
  A success does not clear the count: otherwise anyone holding one valid key (their own)
  could interleave it with guesses to reset their address's count.
- A malformed serial (wrong length, foreign character, failed check character) is
  answered 422 at once, before any key lookup, but it is recorded and counts against the
  client address: such requests cost nothing to send, and a client that only sends junk
  must not keep the endpoint busy for free. It cannot count against a provider: no
  key was named.
- Refused attempts (429) are recorded but do not count, so a lock ends on time.
- A wrong key and a key of another house answer the same 403 with one message, so an
  answer never says whether a serial exists somewhere.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

GENERIC_REFUSAL = ("the licence serial is not valid for this insurance house; check the serial "
                   "and the house, or ask the house for a new serial")


class Outcome:
    """What an attempt came to, as stored in ``activation_attempts.outcome``."""

    OK = "ok"
    MALFORMED = "malformed"          # 422: not a serial, or a typo caught by the check character
    UNKNOWN_KEY = "unknown-key"      # 403: no key has this digest
    WRONG_HOUSE = "wrong-house"      # 403: a current key, of a provider of another house
    REPLACED_KEY = "replaced-key"    # 403: a key that a reset replaced
    THROTTLED = "throttled"          # 429

    FAILURES = frozenset({MALFORMED, UNKNOWN_KEY, WRONG_HOUSE, REPLACED_KEY})


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window_minutes: int = 15

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def since(self, now: datetime) -> datetime:
        """The start of the window that ends at ``now``."""
        return now - self.window


def retry_after(recent_failures: Sequence[datetime], policy: ThrottlePolicy,
                now: datetime) -> int | None:
    """Seconds until another attempt is allowed, or None if one is allowed now.

    ``recent_failures`` are the times of failures within the window, newest first (at
    least the newest ``max_failures`` of them). The lock lasts until the
    ``max_failures``-th newest failure leaves the window.
    """
    in_window = [at for at in recent_failures if at > policy.since(now)]
    if len(in_window) < policy.max_failures:
        return None
    oldest_counted = sorted(in_window, reverse=True)[policy.max_failures - 1]
    seconds = (oldest_counted + policy.window - now).total_seconds()
    return max(1, math.ceil(seconds))


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
