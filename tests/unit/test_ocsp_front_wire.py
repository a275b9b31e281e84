"""services.ocsp.responder.front: the wire format and the framing that hands a connection to aiohttp
byte-exact, with a fake transport and a stub responder (the real ones: integration tests)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp import web

from services.ocsp.responder.answering import Pending, Result
from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder.front.connections import Front
from services.ocsp.responder.front.protocol import FrontProtocol
from services.ocsp.responder.front.site import routed_elsewhere
from services.ocsp.responder.wire import render
from shared.config import CommonConfig


class Transport(asyncio.Transport):
    """What the protocol wrote, whether it closed, and which protocol it ended with."""

    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True
        self.protocol = None

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True

    def set_protocol(self, protocol):
        self.protocol = protocol

    def get_extra_info(self, name, default=None):
        return ("10.1.2.3", 5555) if name == "peername" else default


class Aiohttp:
    """Stands for aiohttp's protocol: records what it is given."""

    def __init__(self):
        self.data = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        pass


class Responder:
    """Answers b'A:' + the request; a request starting with b'sign' waits for ``release``."""

    def __init__(self):
        self.waiting: list[asyncio.Future] = []

    def answer(self, der: bytes):
        if der.startswith(b"sign"):
            future = asyncio.get_running_loop().create_future()
            self.waiting.append(future)
            return Pending(future, lambda signed: Result(signed, "malformed"), ())
        return Result(b"A:" + der, "malformed")

    def release(self):
        for future in self.waiting:
            future.set_result(b"A:signed")


async def _never(request):
    raise AssertionError("the stub app is never asked")


@pytest.fixture
async def world():
    app = web.Application()
    app.router.add_get("/healthz", _never)
    app.router.add_get("/v1/log", _never)
    app.router.add_post("/", _never)
    app.router.add_get("/{tail:.*}", _never)
    responder, log, handlers = Responder(), [], []

    def handler_factory():
        handlers.append(Aiohttp())
        return handlers[-1]

    front = Front(responder, log.append, 60, handler_factory, routed_elsewhere(app))
    transport = Transport()
    protocol = FrontProtocol(front)
    protocol.connection_made(transport)
    return SimpleNamespace(front=front, protocol=protocol, transport=transport, handlers=handlers,
                           responder=responder, log=log)


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked_post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
LOG = b"GET /v1/log?limit=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"


def bodies(written: bytes) -> list[bytes]:
    return [part.split(b"\r\n\r\n", 1)[1][:len(b"A:") + 8] for part in written.split(b"HTTP/1.1 200 OK")[1:]]


def test_render_forms():
    keep = render("1.1", 200, None, b"xyz", True)
    assert keep.startswith(b"HTTP/1.1 200 OK\r\nDate: ") and keep.endswith(b"\r\n\r\nxyz")
    assert b"Content-Length: 3\r\n" in keep and b"Content-Type: application/ocsp-response\r\n" in keep
    assert b"Connection" not in keep
    assert b"Connection: close\r\n" in render("1.1", 200, None, b"", False)
    assert b"Connection: keep-alive\r\n" in render("1.0", 200, None, b"", True)
    assert b"Connection" not in render("1.0", 200, None, b"", False)
    not_modified = render("1.1", 304, {"ETag": '"e"'}, None, True)
    assert not_modified.endswith(b'ETag: "e"\r\n\r\n') and b"Content-Length" not in not_modified


def test_routed_elsewhere_names_every_other_route(tmp_path):
    common = CommonConfig(database_url="postgresql://unused/x", amqp_url="amqp://unused", data_dir=tmp_path,
                          events_exchange="x", host="127.0.0.1", log_format="console")
    segments = routed_elsewhere(create_app(Config(common=common, port=0, tls_port=0, workers=1)))
    assert {b"healthz", b"readyz", b"metrics", b"openapi.json", b"v1"} <= segments
    assert not any(s.startswith(b"M") or b"{" in s or not s for s in segments)


async def test_pipelined_hand_off_gets_exactly_the_later_requests(world):
    world.protocol.data_received(post(b"one") + post(b"two") + LOG + HEALTH)
    assert bodies(world.transport.written) == [b"A:one", b"A:two"]
    assert world.transport.protocol is world.handlers[0]
    assert world.handlers[0].data == LOG + HEALTH
    assert [e.status for e in world.log] == ["malformed", "malformed"] and world.log[0].client == "10.1.2.3"


async def test_hand_off_byte_by_byte(world):
    for byte in post(b"one") + b"\r\n" + LOG:  # an empty line between requests is allowed
        (world.transport.protocol or world.protocol).data_received(bytes([byte]))
    assert bodies(world.transport.written) == [b"A:one"]
    assert world.handlers[0].data == LOG


async def test_hand_off_waits_for_the_answers_owed(world):
    world.protocol.data_received(post(b"sign me") + post(b"two") + HEALTH[:10])
    world.protocol.data_received(HEALTH[10:])
    assert world.transport.written == b"" and not world.handlers and not world.transport.reading
    world.responder.release()
    await asyncio.sleep(0)  # the future's callbacks run
    assert bodies(world.transport.written) == [b"A:signed", b"A:two"]
    assert world.handlers[0].data == HEALTH and world.transport.reading


async def test_after_a_pipelined_chunked_body_a_hand_off_closes_instead(world):
    world.protocol.data_received(chunked_post(b"one") + HEALTH)
    assert bodies(world.transport.written) == [b"A:one"]
    assert world.transport.closed and not world.handlers


async def test_a_new_read_after_a_chunked_body_hands_off_again(world):
    world.protocol.data_received(chunked_post(b"one"))
    world.protocol.data_received(HEALTH)
    assert world.handlers[0].data == HEALTH and not world.transport.closed


async def test_garbage_and_long_heads_go_to_aiohttp(world):
    world.protocol.data_received(b"\x16\x03\x01 not http\r\n\r\n")
    assert world.handlers[0].data == b"\x16\x03\x01 not http\r\n\r\n"

    second = FrontProtocol(world.front)
    transport = Transport()
    second.connection_made(transport)
    long_head = b"GET /M" + b"A" * 70_000
    second.data_received(long_head)
    assert world.handlers[1].data == long_head


async def test_connection_close_and_oversized_bodies(world):
    world.protocol.data_received(post(b"x" * 10_001) + post(b"last", b"Connection: close\r\n") + post(b"ignored"))
    answers = world.transport.written
    assert answers.count(b"HTTP/1.1 200 OK") == 2 and b"A:x" not in answers and b"A:last" in answers
    assert b"ignored" not in answers and world.transport.closed and not world.handlers


async def test_shutdown_closes_idle_connections_and_finishes_answers(world):
    busy = FrontProtocol(world.front)
    busy_transport = Transport()
    busy.connection_made(busy_transport)
    busy.data_received(post(b"sign it"))
    stopping = asyncio.ensure_future(world.front.shutdown(5))
    await asyncio.sleep(0)
    assert world.transport.closed and not busy_transport.closed
    world.protocol.connection_lost(None)
    world.responder.release()
    await asyncio.sleep(0)
    assert b"A:signed" in busy_transport.written and busy_transport.closed
    busy.connection_lost(None)
    await asyncio.wait_for(stopping, 1)
