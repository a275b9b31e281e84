"""Load shedding on :8443: which new connections are served now, which wait their turn,
which are told to come back later, and which are closed before any work. Pure
bookkeeping, no I/O.

Why: in 2025 SIUI collapsed under providers retrying: every failure came back as more
load. A connection costs most in its TLS handshake, and a process that starts every
handshake offered to it finishes none of them in time (thousands of handshakes
interleaved on one event loop all complete at the end), the desktops time out and
retry, and the load grows. So each process:

* serves at most ``max_inflight`` connections at a time, from the start of their
  handshake to their first answer: an admitted connect's latency stays bounded;
* keeps up to ``max_waiting`` more, costing nothing but a socket (not even read), each
  started when a place frees: the oldest first while the queue moves (fair), but the
  newest first once the oldest has waited half of ``max_wait`` (adaptive LIFO, as
  Facebook's "Fail at Scale" tells): in a storm the oldest are desktops about to give up,
  and serving them in order would have every answer arrive just too late, a server
  busy and nobody online. One that waited ``max_wait`` seconds is closed unserved: its
  desktop has given up (it waits 10 s) or is about to;
* beyond both, answers up to ``max_shedding`` at a time a quick 503 problem+json with a
  ``Retry-After`` (after its handshake, before its certificate is read, its key checked
  or anything logged), drawn per answer from ``[ceil(retry_after / 2), retry_after]``
  so that desktops shed together do not return together (the desktop adds its own
  jitter on top, ``clients.desktop.backoff``);
* and closes any connection beyond that at accept, before any cryptography; the
  desktop's own backoff (full jitter) spreads its return.
"""
from __future__ import annotations

import math
import random as _random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RUN, WAIT, SHED = "run", "wait", "shed"


@dataclass(slots=True, eq=False)
class Admission:
    """One accepted connection's place: ``state`` is RUN (serve it), WAIT (not yet: the
    gate calls ``started(True)`` when its turn comes, ``started(False)`` when it waited
    too long) or SHED (answer it 503). Released once, at its first answer or when it
    closes, whichever comes first."""

    gate: "Gate"
    state: str
    since: float = 0.0
    started: Callable[[bool], None] | None = None
    released: bool = False

    @property
    def shed(self) -> bool:
        return self.state == SHED

    @property
    def waiting(self) -> bool:
        return self.state == WAIT

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate._left(self)


@dataclass
class Gate:
    """The admission bounds of one process (the event loop's thread only: no lock)."""

    max_inflight: int
    max_waiting: int
    max_shedding: int
    max_wait: float
    retry_after: int
    random: Callable[[], float] = _random.random
    clock: Callable[[], float] = time.monotonic
    #: Told every change, with what happened ("admitted", "waited", "shed", "closed",
    #: "expired", "left"): the metrics' hook, so that this module stays free of them.
    observe: Callable[[str, "Gate"], None] = lambda _what, _gate: None
    admitted: int = 0
    shedding: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_inflight < 1 or self.max_waiting < 0 or self.max_shedding < 0 or self.max_wait <= 0:
            raise ValueError("the gate needs max_inflight >= 1, max_waiting and max_shedding >= 0, max_wait > 0")
        if self.retry_after < 1:
            raise ValueError("retry_after must be at least one second")
        self._waiting: deque[Admission] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def pending(self) -> int:
        """Connections held: served, waiting and being answered 503."""
        return self.admitted + len(self._waiting) + self.shedding

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        self.observe(what, self)

    def arrive(self) -> Admission | None:
        """A connection was accepted: its admission, or None to close it at once."""
        if self.admitted < self.max_inflight and not self._waiting:
            self.admitted += 1
            self._count("admitted")
            return Admission(self, RUN)
        if len(self._waiting) < self.max_waiting:
            admission = Admission(self, WAIT, self.clock())
            self._waiting.append(admission)
            self._count("waited")
            return admission
        if self.shedding < self.max_shedding:
            self.shedding += 1
            self._count("shed")
            return Admission(self, SHED)
        self._count("closed")
        return None

    def _left(self, admission: Admission) -> None:
        if admission.state == RUN:
            self.admitted -= 1
            self._next()
        elif admission.state == SHED:
            self.shedding -= 1
        else:
            try:
                self._waiting.remove(admission)  # it closed while waiting (rare: O(n) is fine)
            except ValueError:
                pass
        self.observe("left", self)

    def _next(self) -> None:
        """Start waiting connections while there are places (see the module: oldest first
        while the queue moves, newest first once it does not; the stale are closed)."""
        now = self.clock()
        while self._waiting and now - self._waiting[0].since > self.max_wait:
            stale = self._waiting.popleft()
            stale.released = True
            self._count("expired")
            if stale.started is not None:
                stale.started(False)
        while self._waiting and self.admitted < self.max_inflight:
            behind = now - self._waiting[0].since > self.max_wait / 2
            admission = self._waiting.pop() if behind else self._waiting.popleft()
            admission.state = RUN
            self.admitted += 1
            self._count("admitted")
            if admission.started is not None:
                admission.started(True)

    def retry_after_seconds(self) -> int:
        """A ``Retry-After`` for one shed connection, uniformly spread (see the module)."""
        low = math.ceil(self.retry_after / 2)
        return low + min(int(self.random() * (self.retry_after - low + 1)), self.retry_after - low)
