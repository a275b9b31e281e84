"""A stand-in asyncio transport for unit tests of the protocols between accept and TLS
(shared.http.proxied, shared.http.tls): it records the flow-control calls a protocol makes
and stands for a peer at a given address."""
from __future__ import annotations

import asyncio


class RecordingTransport:
    def __init__(self, peer: str = "127.0.0.7") -> None:
        self.peer = peer
        self.protocol = None
        self.calls: list[str] = []
        self.aborted = asyncio.Event()

    def get_extra_info(self, name, default=None):
        return (self.peer, 5555) if name == "peername" else default

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def get_protocol(self):
        return self.protocol

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def abort(self) -> None:
        self.calls.append("abort")
        self.aborted.set()

    def is_closing(self) -> bool:
        return "abort" in self.calls
