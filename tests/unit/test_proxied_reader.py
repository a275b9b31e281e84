"""shared.http.proxied's reader between the accept and the TLS protocol, with a stand-in
transport: who gets the bytes, under which address, and how it meets the admission gate
(a connection waiting its turn keeps the ClientHello that came with the header)."""
from __future__ import annotations

import asyncio
import ssl

from shared.http.proxied import ProxiedTransport, ProxyHeaderReader, ProxyTrust
from shared.http.tls import TlsServerProtocol
from tests.support.proxy_header import v2
from tests.support.transports import RecordingTransport

HELLO = b"\x16\x03\x01\x00\x05hello"


class Place:
    started = None
    waiting = True

    def release(self) -> None:
        pass


def accepted(peer: str, *, timeout: float = 5.0, admit=None):
    made: list[TlsServerProtocol] = []

    def factory():
        made.append(TlsServerProtocol(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), object, admit=admit))
        return made[-1]

    transport = RecordingTransport(peer)
    reader = ProxyHeaderReader(ProxyTrust(frozenset({"10.0.0.5"}), timeout), factory)
    transport.set_protocol(reader)
    reader.connection_made(transport)
    return reader, transport, made


async def test_a_waiting_connection_keeps_the_hello_that_came_with_its_header():
    reader, transport, made = accepted("10.0.0.5", admit=Place)
    assert made == []  # nothing starts before the header
    reader.data_received(v2(("203.0.113.7", 40000)) + HELLO)
    (tls,) = made
    assert transport.get_protocol() is tls  # the reader has left the path
    assert isinstance(tls._raw, ProxiedTransport) and tls._peer == "203.0.113.7"
    assert tls._raw.get_extra_info("peername") == ("203.0.113.7", 40000)
    assert tls._raw.get_extra_info("proxy_peername") == ("10.0.0.5", 5555)
    assert tls._incoming.pending == len(HELLO) and transport.calls == ["pause", "resume", "pause"]


async def test_a_header_in_pieces_is_waited_for():
    reader, transport, made = accepted("10.0.0.5")
    header = v2(("2001:db8::1", 1))
    for byte in header[:-1]:
        reader.data_received(bytes([byte]))
    assert made == [] and transport.calls == []
    reader.data_received(header[-1:])
    assert made[0]._peer == "2001:db8::1"


async def test_a_stranger_starts_at_accept_and_is_handed_over_at_its_first_bytes():
    reader, transport, made = accepted("192.0.2.9", admit=Place)
    (tls,) = made
    assert tls._raw is transport and transport.calls == ["pause"]  # the gate decided at accept
    reader.data_received(HELLO)
    assert transport.get_protocol() is tls and tls._incoming.pending == len(HELLO)


async def test_a_strangers_header_is_refused():
    reader, transport, made = accepted("192.0.2.9")
    reader.data_received(v2(("203.0.113.7", 1))[:3])
    assert transport.calls == ["abort"] and made[0]._app is None


async def test_a_silent_balancer_is_closed_at_the_bound():
    _, transport, made = accepted("10.0.0.5", timeout=0.05)
    await asyncio.wait_for(transport.aborted.wait(), 5)
    assert made == []
