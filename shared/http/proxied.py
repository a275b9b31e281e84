"""A connection's PROXY protocol header, read before its own protocol sees a byte.

On :8443 the balancer passes the providers' mutual TLS through as TCP, so without this
every connection comes from the balancer: the per-address connection cap, the OCSP log's
``client``, the TLS-refusal reports and ``remote_address`` would all name it. With a
``ProxyTrust`` (``GuardedTCPSite(proxy_trust=...)``), each accepted connection is first
given to ``ProxyHeaderReader``:

* from a peer in ``ProxyTrust.proxies`` (SIUI_TRUSTED_PROXIES, the one trust list) a
  header (``shared.http.proxy_protocol``, version 1 or 2) is **required**, complete
  within ``ProxyTrust.timeout`` seconds of the accept; then the connection's own
  protocol (``shared.http.tls.TlsServerProtocol``) starts on a transport whose
  ``peername`` is the header's source, and gets the bytes after the header. A header
  naming no source (a LOCAL health check, UNKNOWN) leaves the balancer's own address.
  Required rather than optional: a balancer configured without ``send-proxy-v2`` would
  otherwise have every provider counted as the balancer, silently; refused, it shows at
  once (``siui_http_proxy_header_refused_total{reason="missing"}``);
* from any other peer, the connection's protocol starts at accept exactly as without
  this layer (the admission gate decides before anything is read), and a header in its
  first bytes is **refused**: a client cannot name itself another address.

Either way the reader leaves the path as soon as it has decided (``set_protocol``): the
connection's bytes then go to its protocol directly.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from shared.addresses import canonical
from shared.http.proxy_protocol import ProxyHeaderError, looks_like_header, parse_header
from shared.logging import get_logger

log = get_logger(__name__)

REFUSED = Counter("siui_http_proxy_header_refused_total",
                  "Connections closed for their PROXY protocol header, by why", ["reason"])


@dataclass(frozen=True)
class ProxyTrust:
    """Whose PROXY header is believed (and required), and how long it may take to arrive."""

    proxies: frozenset[str]
    timeout: float = 5.0


class ProxiedTransport(asyncio.Transport):
    """The accepted connection's transport, naming the header's source as its peer."""

    def __init__(self, raw: asyncio.Transport, peername: tuple[str, int]) -> None:
        super().__init__()
        self._raw = raw
        self._peername = peername

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self._peername
        if name == "proxy_peername":  # the balancer the connection came through
            return self._raw.get_extra_info("peername", default)
        return self._raw.get_extra_info(name, default)

    def write(self, data) -> None:
        self._raw.write(data)

    def writelines(self, chunks) -> None:
        self._raw.writelines(chunks)

    def write_eof(self) -> None:
        self._raw.write_eof()

    def can_write_eof(self) -> bool:
        return self._raw.can_write_eof()

    def close(self) -> None:
        self._raw.close()

    def abort(self) -> None:
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def get_write_buffer_limits(self):
        return self._raw.get_write_buffer_limits()

    def set_protocol(self, protocol) -> None:
        self._raw.set_protocol(protocol)

    def get_protocol(self):
        return self._raw.get_protocol()


class ProxyHeaderReader(asyncio.Protocol):
    """One accepted connection until its PROXY header is settled (see the module)."""

    def __init__(self, trust: ProxyTrust, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        self._trust = trust
        self._factory = protocol_factory
        self._raw: asyncio.Transport | None = None
        self._peer: str | None = None
        self._inner: asyncio.Protocol | None = None
        self._received = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = canonical(str(peer[0])) if isinstance(peer, (tuple, list)) and peer else None
        if self._peer is not None and self._peer in self._trust.proxies:
            self._timer = asyncio.get_running_loop().call_later(self._trust.timeout, self._too_slow)
            return
        self._start(transport, hand_over=False)  # not a proxy: it starts now, as without us

    def data_received(self, data: bytes) -> None:
        if self._raw is None:
            return
        if self._inner is not None:  # a peer not trusted: only its first bytes are looked at
            if looks_like_header(data):
                self._refuse("untrusted", "a PROXY header from a peer not in SIUI_TRUSTED_PROXIES")
                return
            self._raw.set_protocol(self._inner)
            self._inner.data_received(data)
            return
        self._received += data
        try:
            header = parse_header(self._received)
        except ProxyHeaderError as exc:
            self._refuse(exc.reason, str(exc))
            return
        if header is None:
            return
        self._cancel_timer()
        rest = bytes(self._received[header.length:])
        self._received = bytearray()
        transport = self._raw if header.source is None else ProxiedTransport(self._raw, header.source)
        self._start(transport, hand_over=True)
        if rest and self._raw is not None and not self._raw.is_closing():
            self._inner.data_received(rest)

    def _start(self, transport: asyncio.BaseTransport, *, hand_over: bool) -> None:
        """The connection's own protocol, made and told of its connection; with
        ``hand_over`` the transport's bytes go to it directly from now on."""
        self._inner = self._factory()
        if hand_over:
            self._raw.set_protocol(self._inner)
        self._inner.connection_made(transport)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        if self._received:
            self._refuse("truncated", "the connection ended inside its PROXY header")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._raw = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _too_slow(self) -> None:
        self._timer = None
        if self._inner is None and self._raw is not None:
            self._refuse("timeout", f"no complete PROXY header within {self._trust.timeout:g} s")

    def _refuse(self, reason: str, detail: str) -> None:
        self._cancel_timer()
        REFUSED.labels(reason).inc()
        log.info("proxy_header_refused", peer=self._peer, reason=reason, detail=detail)
        raw, self._raw = self._raw, None  # whatever is still in flight is not looked at
        if raw is not None:
            raw.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def reading_proxy_header(protocol_factory: Callable[[], asyncio.Protocol],
                         trust: ProxyTrust) -> Callable[[], asyncio.Protocol]:
    """A server's protocol factory whose connections settle their PROXY header first."""
    return lambda: ProxyHeaderReader(trust, protocol_factory)
