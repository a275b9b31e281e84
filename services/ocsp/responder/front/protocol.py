"""The front's protocol: one connection of the ocsp port, answering OCSP itself and
handing every other request to aiohttp.

Why: with a new connection per request (a desktop checking one certificate), aiohttp's
cost per connection (a handler object, a task, a Request and a Response per request, the
middleware chain) is the limit, not the cache or the signing. So each connection starts
here: requests are parsed with httptools (llhttp) and OCSP requests (``POST /`` and ``GET
/{base64}``) are answered by the code the aiohttp handlers use (``Responder.answer``,
``wire.record_answer``, ``wire.get_reply``): same answers, log and metrics, and
no task at all when the answer is cached. The first request that is not OCSP (the API,
/healthz, /metrics, anything unparsable) hands the connection to aiohttp: its protocol
takes the transport and gets the bytes of that request and all after it, exactly as if
it had accepted the connection itself.

HTTP/1.1 as aiohttp serves it: keep-alive (HTTP/1.0 only when asked), ``Connection:
close``, pipelining (answers in request order, also when an earlier one waits to be
signed), ``Expect: 100-continue``, a body over MAX_REQUEST_BYTES read, dropped and
answered malformedRequest, idle connections closed (``connections.KEEPALIVE_TIMEOUT``).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from urllib.parse import unquote_to_bytes

import httptools

from services.ocsp.responder.answering import MALFORMED, Pending, Result
from services.ocsp.responder.codec import MAX_REQUEST_BYTES, MalformedRequest, decode_get_path
from services.ocsp.responder.front.connections import Front
from services.ocsp.responder.wire import get_reply, internal_error, record_answer, render
from shared.addresses import client_address
from shared.logging import get_logger

log = get_logger(__name__)

MAX_QUEUED = 32           # answers waiting on one connection before we stop reading from it
MAX_HEAD = 64 * 1024      # a request head longer than this goes to aiohttp, which refuses it

_POST, _GET = 1, 2
_IDLE, _HEAD, _BODY = 0, 1, 2  # where a connection is in the request it reads
_HEADERS_OF_INTEREST = {b"if-none-match", b"expect", b"transfer-encoding", b"x-forwarded-for"}
_HEADER_LENGTHS = frozenset(map(len, _HEADERS_OF_INTEREST))


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: hand-off, or after the last request."""


class _Slot:
    """An answer owed on a connection, kept in request order until it can be written."""

    __slots__ = ("data", "pending", "kind", "version", "keep_alive", "started", "if_none_match", "client")

    def __init__(self, kind, version, keep_alive, started, if_none_match, client):
        self.data: bytes | None = None
        self.pending: Pending | None = None
        self.kind, self.version, self.keep_alive = kind, version, keep_alive
        self.started, self.if_none_match = started, if_none_match
        self.client: str | None = client  # whom the OCSP log names: the peer, or whom its proxy forwards


class FrontProtocol(asyncio.Protocol):
    """One connection, until it is closed or handed to aiohttp.

    To hand a request to aiohttp whole, the bytes from its first one are kept while its
    head is read (``_stream``, starting at offset ``_stream_at`` of the connection).
    An OCSP request's head is then dropped and its end computed (head + Content-Length),
    so that what follows it in the same read starts the next ``_stream``. After a
    chunked body that end is uncertain (``_known`` False) until the next request starts
    a read; a hand-off then closes the connection instead, after the answers owed (an
    HTTP client retries a request left unanswered)."""

    # One is made per connection: slots make it cheaper to create and to free.
    __slots__ = ("front", "transport", "parser", "last_active", "head_since", "_admitted", "_phase", "_received", "_chunk", "_chunk_at",
                 "_stream", "_stream_at", "_known", "_body_at", "_url", "_body", "_size", "_kind", "_chunked",
                 "_if_none_match", "_expect", "_forwarded_for", "_queue", "_handoff", "_handoff_method", "_last", "_eof",
                 "_client", "_reading_paused", "_writing_paused")

    def __init__(self, front: Front):
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.last_active = front.loop.time()
        self.head_since: float | None = self.last_active  # a new connection owes a request head
        self._admitted = False
        self._phase = _IDLE
        self._received = 0                    # bytes read on the connection so far
        self._chunk, self._chunk_at = b"", 0  # the read being parsed, and its offset
        self._stream, self._stream_at, self._known = b"", 0, True
        self._body_at = 0
        self._url = b""
        self._body: list[bytes] = []
        self._size = 0
        self._kind = 0
        self._chunked = False
        self._if_none_match: bytes | None = None
        self._expect: bytes | None = None
        self._forwarded_for: bytes | None = None
        self._queue: deque[_Slot] = deque()
        self._handoff: bytes | None = None    # for aiohttp, once the answers before it are written
        self._handoff_method: bytes | None = None
        self._last = False                    # the connection's last request has been read
        self._eof = False
        self._client: str | None = None
        self._reading_paused = self._writing_paused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.front.connections.add(self)
        self._admitted = self.front.admit(self._peer())
        if self.front.closing or not self._admitted:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # The parser holds our bound methods: without it the protocol is freed by its
        # reference count at once, not by a garbage collection some connections later.
        self.transport = self.parser = None
        self._release()
        for slot in self._queue:  # nobody to answer: signing work not begun is skipped
            if slot.pending is not None:
                slot.pending.future.cancel()
        self._queue.clear()

    def data_received(self, data: bytes) -> None:
        if self._handoff is not None:  # aiohttp's, once the answers before it are written
            self._handoff += data
            return
        if self._last:
            return
        self.last_active = self.front.loop.time()
        self._chunk, self._chunk_at = data, self._received
        self._received += len(data)
        if self._phase == _IDLE:
            self._stream, self._stream_at, self._known = data, self._chunk_at, True
        elif self._phase == _HEAD:
            self._stream += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if self._handoff_method is not None:
                self._hand_off()
            elif not isinstance(exc.__context__, _Stop):
                log.error("ocsp_front_failed", error=repr(exc.__context__ or exc))
                self.close()
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if not self._last:  # what follows the last request is ignored, parsable or not
                self._hand_off()  # aiohttp answers what it cannot parse either (400), and closes
        else:
            if self._phase == _HEAD and len(self._stream) > MAX_HEAD:
                self._hand_off()  # aiohttp refuses heads that long, as it always does
        self._chunk = b""

    def eof_received(self) -> bool:
        self._eof = True
        return bool(self._queue or self._handoff is not None)  # keep writing what is owed

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._last:
            raise _Stop()
        self.head_since = self.front.loop.time()
        self._phase = _HEAD
        self._url, self._body, self._size, self._chunked = b"", [], 0, False
        self._if_none_match = self._expect = self._forwarded_for = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) in _HEADER_LENGTHS:
            name = name.lower()
            if name == b"if-none-match":
                if self._if_none_match is None:
                    self._if_none_match = value
            elif name == b"expect":
                self._expect = value
            elif name == b"transfer-encoding":
                self._chunked = True
            elif name == b"x-forwarded-for":  # several headers are one list (RFC 9110 5.3)
                self._forwarded_for = value if self._forwarded_for is None else self._forwarded_for + b"," + value

    def on_headers_complete(self) -> None:
        self.head_since = None
        parser, url = self.parser, self._url
        method = parser.get_method()
        kind = 0
        if method == b"POST":
            kind = _POST if url == b"/" else 0
        elif method == b"GET" and url[:1] == b"/":
            first = url.partition(b"?")[0].lstrip(b"/").partition(b"/")[0]
            kind = _GET if (unquote_to_bytes(first) if b"%" in first else first) not in self.front.elsewhere else 0
        expect = self._expect
        if kind == 0 or parser.should_upgrade() or (expect is not None and expect.lower() != b"100-continue"):
            self._handoff_method = method
            raise _Stop()
        self._kind, self._phase = kind, _BODY
        if self._known:
            stream = self._stream
            skip = len(stream) - len(stream.lstrip(b"\r\n")) if stream[:1] in (b"\r", b"\n") else 0
            self._body_at = self._stream_at + stream.find(b"\r\n\r\n", skip) + 4
            self._stream = b""
        if expect is not None and not self._queue and parser.get_http_version() == "1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._kind == _POST and self._size <= MAX_REQUEST_BYTES:
            self._body.append(body)

    def on_message_complete(self) -> None:
        started = time.perf_counter()
        self._phase = _IDLE
        if self._known:  # where the next request starts: right after this one
            end = self._body_at + self._size - self._chunk_at
            if self._chunked or not 0 <= end <= len(self._chunk):
                self._known, self._stream = False, b""  # a chunked body's length is not its size
            else:
                self._stream, self._stream_at = self._chunk[end:], self._chunk_at + end
        parser = self.parser
        keep_alive = parser.should_keep_alive() and not self.front.closing
        if not keep_alive:
            self._last = True
        slot = _Slot(self._kind, parser.get_http_version(), keep_alive, started, self._if_none_match,
                     self._requester())
        data = None
        try:
            if self._kind == _POST:
                outcome = (self.front.responder.answer(b"".join(self._body)) if self._size <= MAX_REQUEST_BYTES
                           else Result(MALFORMED, "malformed"))
            else:
                try:
                    der = decode_get_path(self._url.partition(b"?")[0].decode("latin-1"))
                except MalformedRequest:
                    outcome = Result(MALFORMED, "malformed")
                else:
                    outcome = self.front.responder.answer(der)
        except Exception:
            log.exception("ocsp_front_failed")
            outcome, data = None, internal_error(slot.version, slot.keep_alive)
        if type(outcome) is Result:
            data = self._reply(slot, outcome)
        elif outcome is not None:
            slot.pending = outcome
            outcome.future.add_done_callback(lambda _: self._signed(slot))
        if data is not None and not self._queue:  # the usual case: nothing owed before it
            self._write(data, keep_alive)
            return
        slot.data = data
        self._queue.append(slot)
        self._update_reading()

    # -- answering ---------------------------------------------------------------------------

    def _reply(self, slot: _Slot, result: Result) -> bytes:
        try:
            record_answer(self.front.record, slot.client, result, slot.started)
            if slot.kind == _GET:
                inm = slot.if_none_match
                status, headers = get_reply(result, self.front.max_age, inm.decode("latin-1") if inm else None)
            else:
                status, headers = 200, None
            return render(slot.version, status, headers, result.der if status == 200 else None, slot.keep_alive)
        except Exception:
            log.exception("ocsp_front_failed")
            return internal_error(slot.version, slot.keep_alive)

    def _signed(self, slot: _Slot) -> None:
        if slot.pending.future.cancelled() or self.transport is None or self.transport.is_closing():
            return
        slot.data = self._reply(slot, slot.pending.result())
        self._flush()

    def _flush(self) -> None:
        queue = self._queue
        while queue and queue[0].data is not None:
            slot = queue.popleft()
            self._write(slot.data, slot.keep_alive)
        if not queue:
            if self._handoff is not None:
                self._give_to_aiohttp()
            elif self._eof or self._last:
                self.transport.close()
        self._update_reading()

    def _write(self, data: bytes, keep_alive: bool) -> None:
        transport = self.transport
        transport.write(data)
        if not keep_alive:
            transport.close()  # after the buffered answer is sent

    def _peer(self) -> str | None:
        if self._client is None:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            self._client = str(peer[0]) if isinstance(peer, (tuple, list)) else ""
        return self._client or None

    def _requester(self) -> str | None:
        """The client a request is logged against: the peer, unless the peer is a trusted
        reverse proxy, whose X-Forwarded-For then names it (as aiohttp's routes do)."""
        peer = self._peer()
        if peer is None or peer not in self.front.trusted_proxies:
            return peer
        forwarded = self._forwarded_for
        return client_address(peer, forwarded.decode("latin-1") if forwarded is not None else None,
                              self.front.trusted_proxies)

    # -- hand-off ------------------------------------------------------------------------------

    def _hand_off(self) -> None:
        """Give the connection to aiohttp from the current request on (at once, or once the
        answers before it are written); close it where that request's start is unknown."""
        method, self._handoff_method = self._handoff_method, None
        data = self._stream
        whole = self._known and self._phase != _BODY and (
            method is None or data.lstrip(b"\r\n").startswith(method + b" "))
        self._last, self._stream = True, b""
        if not whole:
            if not self._queue and self.transport is not None:
                self.transport.close()
            return
        self._handoff = data
        if not self._queue:
            self._give_to_aiohttp()
        elif not self._reading_paused:  # nothing more is parsed here: let it wait in the socket
            self._reading_paused = True
            self.transport.pause_reading()

    def _give_to_aiohttp(self) -> None:
        transport, data, self._handoff = self.transport, self._handoff, None
        self._release()  # aiohttp's guarded handler counts the connection from now on
        self.transport = self.parser = None
        handler = self.front.handler_factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._writing_paused:
            handler.pause_writing()
        if self._reading_paused:
            transport.resume_reading()  # aiohttp pauses reading itself when it needs to
        if data:
            handler.data_received(data)
        if self._eof:
            handler.eof_received()

    def _update_reading(self) -> None:
        pause = self._writing_paused or len(self._queue) >= MAX_QUEUED
        if pause != self._reading_paused and self.transport is not None and self._handoff is None:
            self._reading_paused = pause
            (self.transport.pause_reading if pause else self.transport.resume_reading)()

    def _release(self) -> None:
        self.front.forget(self)
        if self._admitted:
            self._admitted = False
            self.front.release(self._client or "")

    def overdue(self, now: float) -> str | None:
        """Why the front should cut this connection now (a slow or idle client), or None."""
        limits = self.front.limits
        if self.head_since is not None and now - self.head_since > limits.head_timeout:
            return "head_timeout"
        if self._phase == _BODY and now - self.last_active > limits.body_timeout:
            return "body_timeout"
        if self._phase == _IDLE and not self._queue and now - self.last_active > limits.idle_timeout:
            return "idle"
        return None

    def close_when_done(self) -> None:
        """At shutdown: answer the request being read, if any (with Connection: close),
        and those owed; read no more; then close."""
        if self._phase != _IDLE:
            return  # its answer closes the connection: front.closing makes it the last
        self._last = True
        if not self._queue and self._handoff is None and self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
