"""What the front tests share (no tests here): the real ocsp app served as in production,
its front (``services.ocsp.front.FrontSite``) on a real socket with aiohttp behind it, and
a raw HTTP/1.x client, because the point is what travels on the connection."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiohttp import web

from services.ocsp.app import create_app
from services.ocsp.responder.front import FrontSite
from tests.integration.test_ocsp_responder_support import (  # noqa: F401  (fixtures)
    TestCa, feed, ocsp_config, registered,
)


@dataclass
class Served:
    """The app (``registered`` reads its registry) and the front's port."""

    app: web.Application
    port: int
    host: str = "127.0.0.1"


@pytest.fixture
async def served(ocsp_config):
    runner = web.AppRunner(create_app(ocsp_config), handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = FrontSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        yield Served(runner.app, site.port)
        await site.stop(5)
    finally:
        await runner.cleanup()


@pytest.fixture
async def good(served, feed):
    """A registered CA and a good certificate of it, known to the app: (ca, leaf)."""
    ca = TestCa.create("Front Test CA")
    leaf, _ = ca.issue("front one")
    await feed.issuer(ca)
    await feed.certificate(ca, leaf.serial_number)
    await registered(served, ca, leaf.serial_number)
    return ca, leaf


@dataclass
class Reply:
    version: str
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Conn:
    """One raw connection: write bytes, read whole responses, see whether it was closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, served: Served) -> "Conn":
        return cls(*await asyncio.open_connection(served.host, served.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> Reply:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), 10) if length else b""
        return Reply(version.removeprefix("HTTP/"), int(status), headers, body)

    async def closed_by_server(self) -> bool:
        """True when the server closed the connection (nothing more comes)."""
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def post(der: bytes, *, version: str = "1.1", headers: str = "") -> bytes:
    """A POST / carrying ``der``, as OCSP clients send it."""
    return (f"POST / HTTP/{version}\r\nHost: ocsp\r\nContent-Type: application/ocsp-request\r\n"
            f"Content-Length: {len(der)}\r\n{headers}\r\n").encode() + der


def get(target: str, *, version: str = "1.1", headers: str = "") -> bytes:
    return f"GET {target} HTTP/{version}\r\nHost: ocsp\r\n{headers}\r\n".encode()
