"""TLS in front of an HTTP protocol, terminated in our code so that a refused handshake
is heard of.

asyncio (and uvloop) drop a connection whose TLS handshake fails without sending the
TLS alert OpenSSL produced: a desktop presenting a certificate of an unknown authority
sees "unexpected EOF", indistinguishable from a network fault, and nobody at the
service hears of it either. Here the handshake runs on ``ssl.SSLObject`` over memory
buffers, as asyncio's own SSL protocol does, but on failure the alert is written out
before the connection closes, and ``on_refused(peer, error)`` is told (for a metric, a
log line, an OCSP log entry). After the handshake the application protocol (aiohttp's)
gets a transport whose writes are encrypted and whose ``ssl_object`` is the TLS session.

With ``admit``, every accepted connection asks for its place first (load shedding, e.g.
``services.ocsp.online.shedding``): None closes it before any cryptography is done; a
place that is ``waiting`` leaves the connection unread until the gate calls its
``started(True)`` (its turn: the handshake begins, its time limit with it) or
``started(False)`` (waited too long: closed unserved). The place is the transport's
``admission`` extra (the application reads it) and is released when the connection closes.
"""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Protocol

from shared.logging import get_logger

log = get_logger(__name__)

READ_SIZE = 64 * 1024
#: What a connection waiting its turn may have sent before it is served: a ClientHello
#: (a few hundred bytes; with a post-quantum key share and many extensions, under 16 KB).
MAX_EARLY_BYTES = 32 * 1024
Refused = Callable[[str | None, ssl.SSLError], None]


class Held(Protocol):
    """A connection's place under an admission bound, given back with ``release()``."""

    started: Callable[[bool], None] | None

    @property
    def waiting(self) -> bool: ...

    def release(self) -> None: ...


Admit = Callable[[], Held | None]


class _AppTransport(asyncio.Transport):
    """What the application protocol writes to: plaintext in, TLS records out."""

    def __init__(self, tls: "TlsServerProtocol") -> None:
        super().__init__()
        self._tls = tls

    def write(self, data) -> None:
        self._tls._write_plain(bytes(data))

    def writelines(self, chunks) -> None:
        self._tls._write_plain(b"".join(bytes(c) for c in chunks))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        raw = self._tls._raw
        return raw is None or raw.is_closing()

    def close(self) -> None:
        self._tls._close(graceful=True)

    def abort(self) -> None:
        self._tls._close(graceful=False)

    def pause_reading(self) -> None:
        if self._tls._raw is not None:
            self._tls._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._tls._raw is not None:
            self._tls._raw.resume_reading()

    def is_reading(self) -> bool:
        raw = self._tls._raw
        return raw is not None and raw.is_reading()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        if self._tls._raw is not None:
            self._tls._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        raw = self._tls._raw
        return raw.get_write_buffer_size() if raw is not None else 0

    def get_extra_info(self, name, default=None):
        if name == "ssl_object":
            return self._tls._ssl
        if name == "sslcontext":
            return self._tls._context
        if name == "admission":
            return self._tls._admission
        if name == "peercert":
            return self._tls._ssl.getpeercert() if self._tls._ssl is not None else default
        raw = self._tls._raw
        return raw.get_extra_info(name, default) if raw is not None else default

    def set_protocol(self, protocol) -> None:
        self._tls._app = protocol

    def get_protocol(self):
        return self._tls._app


class TlsServerProtocol(asyncio.Protocol):
    """One TLS connection: the handshake (bounded in time), then decrypted bytes for the
    application protocol made by ``app_factory``."""

    def __init__(self, context: ssl.SSLContext, app_factory: Callable[[], asyncio.Protocol], *,
                 on_refused: Refused | None = None, handshake_timeout: float = 10.0,
                 admit: Admit | None = None) -> None:
        self._context = context
        self._admit = admit
        self._admission: Held | None = None
        self._app_factory = app_factory
        self._on_refused = on_refused
        self._handshake_timeout = handshake_timeout
        self._raw: asyncio.Transport | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl: ssl.SSLObject | None = None
        self._app: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._peer: str | None = None

    # -- from the socket -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else None
        if self._admit is not None:
            self._admission = self._admit()
            if self._admission is None:  # over the bound: no handshake, no TLS object even
                transport.abort()
                return
            if self._admission.waiting:  # its ClientHello stays in the kernel until its turn
                transport.pause_reading()
                self._admission.started = self._turn
                return
        self._begin()

    def _turn(self, go: bool) -> None:
        if self._raw is None or self._raw.is_closing():
            return
        if not go:
            self._raw.abort()
            return
        self._raw.resume_reading()
        self._begin()
        if self._incoming.pending:  # what arrived while it waited (see _early)
            self._handshake()

    def _begin(self) -> None:
        self._ssl = self._context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._timer = asyncio.get_running_loop().call_later(self._handshake_timeout, self._handshake_too_slow)

    def data_received(self, data: bytes) -> None:
        if self._ssl is None:
            if self._admission is not None and self._admission.waiting:
                self._early(data)
            return  # else closed at accept: bytes already in flight are dropped
        self._incoming.write(data)
        if self._app is None:
            self._handshake()
        if self._app is not None:
            self._read_plain()

    def _early(self, data: bytes) -> None:
        """Bytes of a connection still waiting its turn. Its reading was paused in
        connection_made, but some Pythons (Debian 12's 3.11.2) start reading anyway: the
        transport adds its reader after connection_made without looking at the pause.
        Dropping them would lose the ClientHello and the handshake would never come, so
        they are kept for the turn (one ClientHello's worth at most) and reading is paused
        for real (resume, then pause: a second pause alone is a no-op there)."""
        if self._raw is None:
            return
        if self._incoming.pending + len(data) > MAX_EARLY_BYTES:
            self._raw.abort()
            return
        self._incoming.write(data)
        self._raw.resume_reading()
        self._raw.pause_reading()

    def eof_received(self) -> bool:
        if self._ssl is None:  # closed at accept, or gone while waiting its turn
            return False
        self._incoming.write_eof()
        if self._app is not None:
            self._read_plain()
            return bool(self._app.eof_received())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admission is not None:
            self._admission.release()
        if self._timer is not None:
            self._timer.cancel()
        self._raw = None
        if self._app is not None:
            app, self._app = self._app, None
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # -- the TLS session -------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            self._flush()  # the alert: the client learns why (unknown CA, bad certificate)
            self._refused(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a broken peer must not break the loop
            self._refused(ssl.SSLError(str(exc)))
            return
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._app = self._app_factory()
        self._app.connection_made(_AppTransport(self))

    def _refused(self, exc: ssl.SSLError) -> None:
        if self._on_refused is not None:
            try:
                self._on_refused(self._peer, exc)
            except Exception:  # noqa: BLE001 - reporting must not keep a connection open
                log.exception("tls_refusal_report_failed")
        if self._raw is not None:
            self._raw.close()  # after the alert in its buffer is written

    def _handshake_too_slow(self) -> None:
        self._timer = None
        if self._app is None and self._raw is not None:
            self._refused(ssl.SSLError("the TLS handshake took too long"))

    def _read_plain(self) -> None:
        while self._app is not None:
            try:
                data = self._ssl.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify
                self._flush()
                if not self._app.eof_received():
                    self._close(graceful=True)
                break
            except ssl.SSLError as exc:
                log.info("tls_connection_failed", peer=self._peer, error=str(exc))
                self._close(graceful=False)
                break
            if not data:
                break
            self._app.data_received(data)
        self._flush()  # a read may produce output (key updates, session tickets)

    def _write_plain(self, data: bytes) -> None:
        if self._ssl is None or self._raw is None or self._raw.is_closing():
            return
        view = memoryview(data)
        while view:
            try:
                written = self._ssl.write(view)
            except ssl.SSLError as exc:
                log.info("tls_write_failed", peer=self._peer, error=str(exc))
                self._close(graceful=False)
                return
            view = view[written:]
        self._flush()

    def _flush(self) -> None:
        if self._raw is None:
            return
        data = self._outgoing.read()
        if data:
            self._raw.write(data)

    def _close(self, *, graceful: bool) -> None:
        if self._raw is None or self._raw.is_closing():
            return
        if graceful and self._ssl is not None:
            try:
                self._ssl.unwrap()  # close_notify; the peer's reply is not awaited
            except ssl.SSLError:
                pass
            self._flush()
            self._raw.close()
        else:
            self._raw.abort()
