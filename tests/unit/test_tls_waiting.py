"""A connection waiting its turn under the admission bound keeps what it sent early.

Debian 12's Python 3.11.2 starts reading a transport even when connection_made paused it,
so the ClientHello can arrive before the connection's turn; dropped, the handshake would
never come and the desktop would be reset 10 s later (found by make test-fresh)."""
from __future__ import annotations

import ssl

from shared.http.tls import MAX_EARLY_BYTES, TlsServerProtocol
from tests.support.transports import RecordingTransport


class Place:
    def __init__(self) -> None:
        self.started = None
        self.waiting = True
        self.released = False

    def release(self) -> None:
        self.released = True


def waiting_protocol():
    place, transport = Place(), RecordingTransport()
    protocol = TlsServerProtocol(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), object,
                                 admit=lambda: place)
    protocol.connection_made(transport)
    return protocol, place, transport


def test_early_bytes_are_kept_for_the_turn_and_reading_paused_for_real():
    protocol, place, transport = waiting_protocol()
    assert transport.calls == ["pause"] and place.started is not None
    protocol.data_received(b"\x16\x03\x01 a ClientHello")
    assert protocol._incoming.pending == len(b"\x16\x03\x01 a ClientHello")
    assert transport.calls == ["pause", "resume", "pause"]


def test_more_than_a_client_hello_while_waiting_is_cut_off():
    protocol, _, transport = waiting_protocol()
    protocol.data_received(b"x" * (MAX_EARLY_BYTES + 1))
    assert transport.calls[-1] == "abort" and protocol._incoming.pending == 0


def test_bytes_of_a_connection_closed_at_accept_are_dropped():
    transport = RecordingTransport()
    protocol = TlsServerProtocol(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), object, admit=lambda: None)
    protocol.connection_made(transport)
    protocol.data_received(b"anything")
    assert transport.calls == ["abort"] and protocol._incoming.pending == 0
