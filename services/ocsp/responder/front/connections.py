"""What a process's front connections share (``Front``): the app's responder, log and
max-age, aiohttp's protocol factory to hand connections to, and the set of open
connections, swept when idle and drained at shutdown. Plain state: the protocol
(``protocol.FrontProtocol``) reads it, the site (``site.FrontSite``) makes it."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from services.ocsp.log import LogEntry
from services.ocsp.responder.answering import Responder
from shared.http.serving import CUT_OFF, GuardLimits

KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default: both edges give idle clients the same time
SWEEP_SECONDS = 1.0       # how often slow and idle connections are looked for (one timer per process)


class Connection(Protocol):
    """What the front needs of a connection to sweep and drain it."""

    def overdue(self, now: float) -> str | None: ...

    def close(self) -> None: ...

    def close_when_done(self) -> None: ...


class Front:
    """The shared side of the front's connections (one per process)."""

    def __init__(self, responder: Responder, record: Callable[[LogEntry], None], max_age: int,
                 handler_factory: Callable[[], asyncio.Protocol], elsewhere: frozenset[bytes], *,
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT, limits: GuardLimits | None = None,
                 trusted_proxies: frozenset[str] = frozenset()):
        self.responder = responder
        self.record = record
        self.max_age = max_age
        self.handler_factory = handler_factory
        #: First path segments of the app's other routes: a GET under one is for aiohttp.
        self.elsewhere = elsewhere
        #: The same bounds as every aiohttp port (shared.http.serving): slow heads and
        #: bodies are cut off, idle connections closed, one address holds a bounded number.
        self.limits = limits or GuardLimits(idle_timeout=keepalive_timeout)
        self._per_address: Counter[str] = Counter()
        #: Reverse proxies: their X-Forwarded-For names the client the log records, and
        #: they are exempt from the per-address cap (each carries many clients).
        self.trusted_proxies = trusted_proxies
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self.closing = False
        self._drained = asyncio.Event()
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Look for idle connections from now on."""
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def admit(self, address: str | None) -> bool:
        """Count a new connection from ``address``; False when that address holds too many."""
        key = address or ""
        self._per_address[key] += 1
        if key not in self.trusted_proxies and self._per_address[key] > self.limits.max_per_address:
            CUT_OFF.labels("per_address").inc()
            return False
        return True

    def release(self, address: str) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.closing and not self.connections:
            self._drained.set()

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            why = connection.overdue(now)
            if why is not None:
                CUT_OFF.labels(why).inc()
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
