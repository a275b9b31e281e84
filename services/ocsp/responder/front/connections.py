"""What a process's front connections share (``Front``): the app's responder, log and
max-age, aiohttp's protocol factory to hand connections to, and the set of open
connections, swept when idle and drained at shutdown. Plain state: the protocol
(``protocol.FrontProtocol``) reads it, the site (``site.FrontSite``) makes it."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from services.ocsp.log import LogEntry
from services.ocsp.responder.answering import Responder

KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default: both edges give idle clients the same time
SWEEP_SECONDS = 5.0       # how often idle connections are looked for (one timer per process)


class Connection(Protocol):
    """What the front needs of a connection to sweep and drain it."""

    last_active: float

    def close(self) -> None: ...

    def close_when_done(self) -> None: ...


class Front:
    """The shared side of the front's connections (one per process)."""

    def __init__(self, responder: Responder, record: Callable[[LogEntry], None], max_age: int,
                 handler_factory: Callable[[], asyncio.Protocol], elsewhere: frozenset[bytes], *,
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT):
        self.responder = responder
        self.record = record
        self.max_age = max_age
        self.handler_factory = handler_factory
        #: First path segments of the app's other routes: a GET under one is for aiohttp.
        self.elsewhere = elsewhere
        self.keepalive_timeout = keepalive_timeout
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.closing = False
        self._drained = asyncio.Event()
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Look for idle connections from now on."""
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.closing and not self.connections:
            self._drained.set()

    def _sweep(self) -> None:
        deadline = self.loop.time() - self.keepalive_timeout
        for connection in [c for c in self.connections if c.last_active < deadline]:
            connection.close()
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections now; let the others write the answers they owe (at most
        ``timeout`` seconds); then close whatever is left."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close_when_done()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except asyncio.TimeoutError:
                for connection in list(self.connections):
                    connection.close()
