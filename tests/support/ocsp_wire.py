"""A raw HTTP/1.x client for the ocsp port, because what the front tests check is what
travels on the connection (keep-alive, pipelining, closes), and the readings of an OCSP
answer that came back that way."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cryptography.x509 import ocsp


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
    async def open(cls, server) -> "Conn":
        """A connection to ``server`` (anything with ``host`` and ``port``)."""
        return cls(*await asyncio.open_connection(server.host, server.port))

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


def answer(reply: Reply) -> ocsp.OCSPResponse:
    """The OCSP answer a reply carries (it must be a 200 application/ocsp-response)."""
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.body)


def is_good(reply: Reply, serial: int) -> bool:
    response = answer(reply)
    return (response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            and response.serial_number == serial and response.certificate_status == ocsp.OCSPCertStatus.GOOD)


def status_of(reply: Reply) -> ocsp.OCSPResponseStatus:
    return answer(reply).response_status
