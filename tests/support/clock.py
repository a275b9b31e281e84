"""A clock for tests (production code takes any ``shared.clock.Clock``)."""
from __future__ import annotations

from datetime import datetime, timedelta


class FrozenClock:
    """Returns ``now`` until moved with ``advance``."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)
