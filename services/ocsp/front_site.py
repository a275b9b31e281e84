"""The front's process-wide side: its listening socket (``FrontSite``, like aiohttp's
TCPSite) and what its connections share (``Front``): the app's responder, log and
max-age, aiohttp's protocol factory to hand connections to, and the open connections,
closed when idle and at shutdown. The protocol itself is ``services.ocsp.front``."""
from __future__ import annotations

import asyncio

from aiohttp import web

from .front import FrontProtocol
from .oplog import OPLOG
from .responder import MAX_AGE, RESPONDER

KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default: both edges give idle clients the same time
SWEEP_SECONDS = 5.0       # how often idle connections are looked for (one timer per process)
BACKLOG = 1024            # new connections waiting to be accepted: many desktops at once


def routed_elsewhere(app: web.Application) -> frozenset[bytes]:
    """First path segments of the app's other routes (b'healthz', b'v1', ...): a GET under
    one of them is for aiohttp, not a base64 request (which always starts with 'M')."""
    segments = set()
    for resource in app.router.resources():
        first = resource.canonical.lstrip("/").partition("/")[0]
        if first and "{" not in first:
            segments.add(first.encode())
    return frozenset(segments)


class Front:
    """What a process's front connections share: the app's responder, log and max-age,
    aiohttp's protocol factory (``AppRunner.server``) to hand connections to, and the
    open connections (closed when idle, and at shutdown). Call it for a protocol."""

    def __init__(self, app: web.Application, handler_factory: web.Server, *,
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT):
        self.responder = app[RESPONDER]
        self.record = app[OPLOG].record
        self.max_age = app[MAX_AGE]
        self.handler_factory = handler_factory
        self.elsewhere = routed_elsewhere(app)
        self.keepalive_timeout = keepalive_timeout
        self.loop = asyncio.get_running_loop()
        self.connections: set[FrontProtocol] = set()
        self.closing = False
        self._drained = asyncio.Event()
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Look for idle connections from now on."""
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def __call__(self) -> FrontProtocol:
        return FrontProtocol(self)

    def forget(self, connection: FrontProtocol) -> None:
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


class FrontSite:
    """The listening socket of the front, like aiohttp's TCPSite for ``runner``'s app
    (which must have been set up: the responder is read from the app)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, reuse_port: bool = False):
        self.runner, self.host, self.port, self.reuse_port = runner, host, port, reuse_port
        self.front: Front | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.front = Front(self.runner.app, self.runner.server)
        self._server = await asyncio.get_running_loop().create_server(
            self.front, self.host, self.port, reuse_port=self.reuse_port or None, backlog=BACKLOG)
        self.port = self._server.sockets[0].getsockname()[1]
        self.front.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, then finish the front's connections (handed-off ones are the
        runner's: ``runner.cleanup()`` finishes them)."""
        self._server.close()
        await self.front.shutdown(timeout)
