"""Clocks for tests (production code takes any ``shared.clock.Clock``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class FrozenClock:
    """Returns ``now`` until moved with ``advance``."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class ShiftedClock:
    """The real time plus an offset a test may move (a throttle window without waiting)."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)
