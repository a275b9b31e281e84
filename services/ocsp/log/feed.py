"""The read side of the log: wakes this process's live streams when any process has
written entries (the writers' ``pg_notify('ocsp_log')``, through ``shared.listen``)."""
from __future__ import annotations

import asyncio
import contextlib

from shared.listen import Subscription


class LogFeed:
    """An event that fires at every note; streams take it before reading, so a note that
    arrives during their read is not missed. ``run`` is a ``shared.tasks`` target."""

    def __init__(self, notes: Subscription) -> None:
        self.notes = notes
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """The event the next note sets."""
        return self._changed

    def _fire(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.notes.get()  # a note or a RESYNC: either way, look again
            self._fire()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until ``event`` is set or ``timeout`` passes (streams poll as a fallback)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
