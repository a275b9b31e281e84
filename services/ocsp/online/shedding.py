"""Load shedding on :8443: which new connections are served, which are told to come
back later, and which are closed before any work. Pure bookkeeping, no I/O.

Why: in 2025 SIUI collapsed under providers retrying: every failure came back as more
load. A connection costs most in its TLS handshake; a process that starts every
handshake offered to it finishes none of them in time (7,500 handshakes interleaved on
one event loop all complete at the end), the desktops time out and retry, and the
load grows. So each process admits at most ``max_inflight`` connections at a time
(from their accept to their first answer) and serves them in full; a connection that
arrives beyond that still gets its handshake, then a quick 503 problem+json with a
``Retry-After`` (before its certificate is read, its key checked, anything logged);
beyond ``max_pending`` connections in all, it is closed at accept, before any
cryptography, and the desktop's own backoff (full jitter) spreads its return.

The ``Retry-After`` is drawn per answer from ``[ceil(retry_after / 2), retry_after]``:
desktops shed in the same second do not all come back in the same second (and the
desktop adds its own jitter on top, ``clients.desktop.backoff``).
"""
from __future__ import annotations

import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Admission:
    """One accepted connection's place: ``shed`` when it must be answered 503. Released
    once, at its first answer or when it closes, whichever comes first."""

    gate: "Gate"
    shed: bool
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate._left(self)


@dataclass
class Gate:
    """The admission bounds of one process (the event loop's thread only: no lock).

    max_inflight: connections admitted to full service at once.
    max_pending: connections held at once in all, admitted and to-be-shed; one more is
        closed at accept.
    retry_after: the longest ``Retry-After`` (seconds) a shed connection is told.
    """

    max_inflight: int
    max_pending: int
    retry_after: int
    random: Callable[[], float] = _random.random
    admitted: int = 0
    pending: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"admitted": 0, "shed": 0, "closed": 0})

    def __post_init__(self) -> None:
        if not 1 <= self.max_inflight <= self.max_pending:
            raise ValueError("the gate needs 1 <= max_inflight <= max_pending")
        if self.retry_after < 1:
            raise ValueError("retry_after must be at least one second")

    def arrive(self, make: type[Admission] = Admission) -> Admission | None:
        """A connection was accepted: its admission (a ``make``), or None to close it at once."""
        if self.pending >= self.max_pending:
            self.counts["closed"] += 1
            return None
        self.pending += 1
        shed = self.admitted >= self.max_inflight
        if shed:
            self.counts["shed"] += 1
        else:
            self.admitted += 1
            self.counts["admitted"] += 1
        return make(self, shed)

    def _left(self, admission: Admission) -> None:
        self.pending -= 1
        if not admission.shed:
            self.admitted -= 1

    def retry_after_seconds(self) -> int:
        """A ``Retry-After`` for one shed connection, uniformly spread (see the module)."""
        low = math.ceil(self.retry_after / 2)
        return low + min(int(self.random() * (self.retry_after - low + 1)), self.retry_after - low)
