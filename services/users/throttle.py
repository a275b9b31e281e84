"""How many login attempts are let through: pure arithmetic of counts, the policy and "now".

Two limits, both decided before any user is looked up, so that neither can tell whether
a user name exists:

- **Per client address**, a sliding-window counter: attempts are counted in fixed
  windows (one row per address and window, shared by every replica through
  PostgreSQL), and an attempt is let through when the previous window's count, weighted
  by how much of it still overlaps the last ``window_seconds``, plus the current
  window's count stays within ``per_window``. That is the smooth limit of a sliding
  window (no double burst at a window's edge) at the cost of two counters per address.
  Refused attempts are not counted, so an address that keeps knocking is let in again
  on time.
- **Globally, per process**, a token bucket (``TokenBucket``): ``rate`` attempts a
  second with a burst of ``burst``. It bounds the password-checking work one process
  accepts, whoever sends it; it needs no sharing (each replica has its own CPU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class AddressPolicy:
    per_window: int = 30
    window_seconds: int = 60


def window_start(now: datetime, policy: AddressPolicy) -> datetime:
    """The start of the fixed window ``now`` falls in (whole seconds: a stable key)."""
    seconds = math.floor((now - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % policy.window_seconds)


def previous_window(now: datetime, policy: AddressPolicy) -> datetime:
    return window_start(now, policy) - timedelta(seconds=policy.window_seconds)


def _elapsed(now: datetime, policy: AddressPolicy) -> float:
    """How much of the current window has passed, from 0 to just under 1."""
    return (now - window_start(now, policy)).total_seconds() / policy.window_seconds


def current_cap(previous: int, now: datetime, policy: AddressPolicy) -> int:
    """How many attempts the current window may hold at ``now``: an attempt is let
    through while the window's count is below this (so the weighted sum stays within
    the limit once it is added)."""
    carried = previous * (1 - _elapsed(now, policy))
    return max(0, math.floor(policy.per_window - carried + 1e-9))


def address_retry_after(previous: int, current: int, now: datetime, policy: AddressPolicy) -> int:
    """Whole seconds until an address refused at ``now`` may try again (at least 1).

    ``previous`` and ``current`` are the counts of the previous and current windows.
    The previous window's weight falls as time passes: first see whether it falls far
    enough before this window ends; else the current count becomes the previous one.
    """
    limit, window = policy.per_window, policy.window_seconds
    elapsed = _elapsed(now, policy)
    room = limit - current - 1  # how much of the previous count may still be carried
    if room >= 0 and previous > 0:
        needed = 1 - room / previous  # the elapsed fraction at which it fits
        if needed < 1:
            return max(1, math.ceil((max(needed, elapsed) - elapsed) * window))
    # In the next window: ``current`` is carried, with a weight falling from 1.
    needed = 1 - (limit - 1) / current if current > 0 else 0.0
    return max(1, math.ceil((1 - elapsed + max(0.0, needed)) * window))


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` kept; each attempt takes one.

    Times are seconds on any clock (the service's injected clock, so tests move it);
    a clock going backwards refills nothing.
    """

    def __init__(self, rate: float, burst: float):
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None

    def take(self, now: float) -> int | None:
        """None when an attempt may go ahead (a token is taken), else the whole seconds
        until the next token (at least 1)."""
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self.rate))
