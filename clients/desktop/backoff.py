"""When the desktop talks to the online channel again: the reconnect backoff and the
heartbeat's spread. Pure arithmetic over an injected random source, so the schedule
is unit-tested exactly; the terminal and the window share it through
:func:`clients.desktop.online.keep_online`.

Why: in 2025 SIUI collapsed under its providers retrying. Tens of thousands of
desktops that lose the server at the same moment must not come back at the same
moment, again and again. So:

* **Reconnect: exponential backoff with full jitter** (AWS, "Exponential Backoff And
  Jitter"): after the n-th failure in a row the client waits a uniformly random time in
  ``[0, min(cap, base * 2**n))``. The ceiling doubles, so a long outage costs the server
  little; the whole interval is random, so retries do not arrive in waves.
* **Retry-After is a floor**: when the server names a wait F, the client waits F plus a
  jitter drawn from ``[0, max(ceiling, F))``: never earlier than asked, and spread over
  at least F more seconds. With ``max(F, jitter)`` every desktop whose jitter fell below
  F would return at exactly the instant the server named; with F plus a small jitter
  they would all return within a second or two of it. Either is the synchronised wave
  the jitter is there to avoid: told to wait 30 s, ten thousand desktops come back over
  the following 30 s, the rate the server's answer implied.
* **The heartbeat is spread**: after each connect the first heartbeat comes at a
  random offset within the interval, then every interval. Desktops started together
  (an office opening at 8:00, a server coming back) therefore beat at independent
  phases, and a suspension is still noticed within one interval.
* The failure count is forgotten only once a heartbeat confirms the session: a server
  that accepts connects but fails right after (overloaded, restarting) keeps the
  backoff growing instead of being hit at the base rate again.

"Never more than one attempt in flight" is the loop's and the channel's part: the loop
is sequential, and :class:`clients.desktop.online.OnlineChannel` serialises requests.
"""
from __future__ import annotations

import random as _random
from collections.abc import Callable

# The first retry within 2 s (1 s on average): a blip is soon over, while a desktop
# retries about four times in the first half-minute of an outage, not thirty.
BASE_SECONDS = 2.0
CAP_SECONDS = 300.0  # a long outage: every desktop retries within five minutes
MAX_FLOOR_SECONDS = 3600.0  # a Retry-After beyond an hour is the server's mistake
_MAX_DOUBLINGS = 30  # 2**30 * base dwarfs any cap; keeps the float finite


class Backoff:
    """Full-jitter exponential backoff; ``random()`` returns a float in [0, 1)."""

    def __init__(self, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS,
                 random: Callable[[], float] = _random.random) -> None:
        if not 0 < base <= cap:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0  # failures in a row since the session was last confirmed
        self._random = random

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` failures (0: the first retry)."""
        return min(self.cap, self.base * 2.0 ** min(failures, _MAX_DOUBLINGS))

    def next_delay(self, floor: float = 0.0) -> float:
        """Seconds to wait before the next attempt, counting this failure."""
        floor = min(max(0.0, floor), MAX_FLOOR_SECONDS)
        delay = floor + self._random() * max(self.ceiling(self.failures), floor)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Schedule:
    """How long the keep-online loop waits after each outcome.

    ``next_delay(online, confirmed, retry_after)``: ``online`` the semaphore after the
    last attempt; ``confirmed`` whether that attempt was a heartbeat (the session held)
    rather than a fresh connect; ``retry_after`` the server's floor in seconds, 0 if none.
    """

    def __init__(self, interval: float, *, cap: float = CAP_SECONDS,
                 random: Callable[[], float] = _random.random) -> None:
        if interval <= 0:
            raise ValueError("the heartbeat interval must be positive")
        self.interval = interval
        self.backoff = Backoff(base=min(BASE_SECONDS, cap), cap=cap, random=random)
        self._random = random

    def next_delay(self, *, online: bool, confirmed: bool, retry_after: float = 0.0) -> float:
        if not online:
            return self.backoff.next_delay(retry_after)
        floor = min(max(0.0, retry_after), MAX_FLOOR_SECONDS)
        if not confirmed:  # a new session: its own phase, within one interval
            return max(floor, self._random() * self.interval)
        self.backoff.reset()
        return max(floor, self.interval)
