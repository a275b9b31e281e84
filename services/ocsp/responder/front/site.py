"""The front's listening socket (``FrontSite``, like aiohttp's TCPSite): it makes the
``Front`` from the app's responder, log and max-age, and serves ``FrontProtocol``s."""
from __future__ import annotations

import asyncio

from aiohttp import web

from services.ocsp.log import OPLOG
from services.ocsp.responder.appkeys import MAX_AGE, RESPONDER
from services.ocsp.responder.front.connections import Front
from services.ocsp.responder.front.protocol import FrontProtocol
from shared.http.clients import TRUSTED_PROXIES
from shared.http.serving import GuardLimits

BACKLOG = 1024  # new connections waiting to be accepted: many desktops at once


def routed_elsewhere(app: web.Application) -> frozenset[bytes]:
    """First path segments of the app's other routes (b'healthz', b'v1', ...): a GET under
    one of them is for aiohttp, not a base64 request (which always starts with 'M')."""
    segments = set()
    for resource in app.router.resources():
        first = resource.canonical.lstrip("/").partition("/")[0]
        if first and "{" not in first:
            segments.add(first.encode())
    return frozenset(segments)


class FrontSite:
    """The listening socket of the front for ``runner``'s app (which must have been set
    up: the responder is read from the app)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, reuse_port: bool = False,
                 limits: GuardLimits | None = None):
        self.runner, self.host, self.port, self.reuse_port = runner, host, port, reuse_port
        self.limits = limits
        self.front: Front | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        app = self.runner.app
        front = Front(app[RESPONDER], app[OPLOG].record, app[MAX_AGE], self.runner.server, routed_elsewhere(app),
                      limits=self.limits, trusted_proxies=app.get(TRUSTED_PROXIES, frozenset()))
        self.front = front
        self._server = await asyncio.get_running_loop().create_server(
            lambda: FrontProtocol(front), self.host, self.port, reuse_port=self.reuse_port or None, backlog=BACKLOG)
        self.port = self._server.sockets[0].getsockname()[1]
        front.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, then finish the front's connections (handed-off ones are the
        runner's: ``runner.cleanup()`` finishes them)."""
        self._server.close()
        await self.front.shutdown(timeout)
