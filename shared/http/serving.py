"""Serving an aiohttp application so that no client can hold it, and so that even what
aiohttp refuses before any handler runs is answered as problem+json.

``GuardedAppRunner`` is aiohttp's ``AppRunner`` whose connections are watched:

* a request head must arrive whole within ``head_timeout`` of its first byte (or of the
  connection's opening): a client that trickles a header a byte a minute (slowloris) is
  cut off instead of keeping a connection for hours;
* while a request body is incomplete, the client must send something at least every
  ``body_timeout``;
* an idle connection is closed after ``idle_timeout`` (aiohttp's keep-alive);
* one client address holds at most ``max_per_address`` connections; more are closed at once;
* a request aiohttp cannot parse (oversized headers, bad chunking, not HTTP) gets a
  problem+json 4xx rather than aiohttp's text/plain.

It reads a few of aiohttp's protocol attributes (``_current_request``, ``_messages``),
which is why aiohttp is pinned; tests/integration/test_serving.py holds it to account.
"""
from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from prometheus_client import Counter as MetricCounter

from shared.http.clients import TRUSTED_PROXIES
from shared.http.problems import PROBLEM_CT
from shared.http.proxied import ProxyTrust, reading_proxy_header
from shared.http.tls import Admit, Refused, TlsServerProtocol
from shared.logging import get_logger

log = get_logger(__name__)

CUT_OFF = MetricCounter("siui_http_connections_cut_total", "Connections closed by the guard", ["why"])
SWEEP_SECONDS = 1.0


@dataclass(frozen=True)
class GuardLimits:
    """How long a client may take, and how many connections one address may hold.

    head_timeout: seconds for a whole request head from its first byte (nginx's
        client_header_timeout; a desktop sends its few hundred bytes at once).
    body_timeout: seconds a body may pause between two reads (nginx's client_body_timeout).
    idle_timeout: seconds a connection may wait for its next request (keep-alive).
    max_per_address: connections one client address may hold open. Generous: a county
        house's NAT puts hundreds of desktops behind one address.
    """

    head_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 75.0
    max_per_address: int = 512


_REASONS = {400: "Bad request", 408: "Request timeout", 413: "Payload too large",
            431: "Request header fields too large", 500: "Internal error"}


def protocol_problem(status: int, message: str | None) -> tuple[str, bytes]:
    """The content type and body of a refusal made before any handler ran."""
    title = _REASONS.get(status, "Bad request")
    detail = (message or title).splitlines()[0][:200] if message else title
    body = {"type": f"/problems/{title.lower().replace(' ', '-')}", "title": title, "status": status,
            "detail": f"the request could not be read: {detail}"}
    return PROBLEM_CT, json.dumps(body).encode()


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol, watched (see the module docstring)."""

    def __init__(self, manager: "GuardedServer", **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._address: str | None = None
        self._admitted = False
        self._head_since: float | None = None
        self._last_read = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else None
        now = self._loop.time()
        self._head_since = self._last_read = now  # a new connection owes its first request head
        super().connection_made(transport)
        self._admitted = True
        if not self._guard.admit(self):
            CUT_OFF.labels("per_address").inc()
            transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted:
            self._admitted = False
            self._guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        self._last_read = now
        if self._head_since is None and self._current_request is None and not self._messages:
            self._head_since = now  # the first byte of the next request
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._head_since = None  # the head is complete

    def overdue(self, now: float, limits: GuardLimits) -> str | None:
        """Why this connection should be cut now, or None."""
        if self._head_since is not None and now - self._head_since > limits.head_timeout:
            return "head_timeout"
        if now - self._last_read > limits.body_timeout and self._body_incomplete():
            return "body_timeout"
        return None

    def _body_incomplete(self) -> bool:
        request = self._current_request
        if request is not None and not request.content.is_eof():
            return True
        return any(not payload.is_eof() for _, payload in self._messages if hasattr(payload, "is_eof"))

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        if 400 <= response.status < 500:
            content_type, body = protocol_problem(response.status, message)
            response = web.Response(status=response.status, body=body, content_type=content_type)
            response.force_close()
        return response

    def cut(self, why: str) -> None:
        CUT_OFF.labels(why).inc()
        if self.transport is not None:
            self.transport.close()


class GuardedServer(web.Server):
    """aiohttp's Server making ``GuardedRequestHandler``s and sweeping them."""

    def __init__(self, *args, limits: GuardLimits, exempt: frozenset[str] = frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        #: Reverse proxies: each of their connections carries many clients, so one
        #: address's cap would starve everyone behind them (they limit per client).
        self.exempt = exempt
        self._per_address: Counter[str] = Counter()
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> GuardedRequestHandler:
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def admit(self, handler: GuardedRequestHandler) -> bool:
        address = handler._address or ""
        self._per_address[address] += 1
        return address in self.exempt or self._per_address[address] <= self.limits.max_per_address

    def release(self, handler: GuardedRequestHandler) -> None:
        address = handler._address or ""
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def _sweep(self) -> None:
        now = self._loop.time()
        for handler in list(self._connections):
            why = handler.overdue(now, self.limits) if isinstance(handler, GuardedRequestHandler) else None
            if why:
                handler.cut(why)
        self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)

    async def shutdown(self, timeout: float | None = None) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await super().shutdown(timeout)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through a ``GuardedServer``."""

    def __init__(self, app: web.Application, *, limits: GuardLimits | None = None, **kwargs) -> None:
        self.limits = limits or GuardLimits()
        kwargs.setdefault("keepalive_timeout", self.limits.idle_timeout)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        # AppRunner._make_server and Application._make_handler, with our Server class.
        loop = asyncio.get_running_loop()
        app = self.app
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        kwargs = dict(self._kwargs)
        kwargs["debug"] = app._debug
        return GuardedServer(app._handle, request_factory=app._make_request, loop=loop, limits=self.limits,
                             exempt=app.get(TRUSTED_PROXIES, frozenset()), **kwargs)


class GuardedTCPSite(web.TCPSite):
    """``web.TCPSite`` whose TLS (with an ``ssl_context``) is terminated by
    ``shared.http.tls.TlsServerProtocol``: the handshake is bounded in time, and a refused
    one sends its TLS alert and is reported to ``on_tls_refused(peer, error)``; with
    ``admit``, each accepted connection first asks for its place (``shared.http.tls``).
    With ``proxy_trust``, a trusted balancer's connections start with a PROXY protocol
    header naming the client (``shared.http.proxied``), read before anything else."""

    def __init__(self, *args, handshake_timeout: float = 10.0, on_tls_refused: Refused | None = None,
                 admit: Admit | None = None, proxy_trust: ProxyTrust | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = handshake_timeout
        self._on_tls_refused = on_tls_refused
        self._admit = admit
        self._proxy_trust = proxy_trust

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        factory = server
        if self._ssl_context is not None:
            context, refused, timeout = self._ssl_context, self._on_tls_refused, self._handshake_timeout
            admit = self._admit

            def factory():
                return TlsServerProtocol(context, server, on_refused=refused, handshake_timeout=timeout,
                                         admit=admit)
        if self._proxy_trust is not None:
            factory = reading_proxy_header(factory, self._proxy_trust)

        self._server = await loop.create_server(
            factory, self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


async def serve_forever(make_app: Callable[[], web.Application], host: str, port: int, *,
                        reuse_port: bool = False, shutdown_timeout: float = 10.0,
                        limits: GuardLimits | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop gracefully (requests in flight finish, then
    the cleanup contexts run in reverse)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # from the start: a stop during startup waits for it
        loop.add_signal_handler(signum, stop.set)
    runner = GuardedAppRunner(make_app(), limits=limits, handle_signals=False, access_log=None,
                              shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()
        await GuardedTCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        await stop.wait()
    finally:
        await runner.cleanup()
