"""A small forward proxy with an allow-list: the fresh root's only way out.

The fresh root's network namespace has no route anywhere but to this proxy, which
listens on the host's end of the link only. It forwards plain HTTP (apt: a request with
an absolute URL) and tunnels CONNECT (pip over HTTPS) to the allowed hosts on ports 80
and 443, answers 403 to everything else, and counts both, so that the run can say what
the set-up fetched and what it tried to reach beyond the package registries.

Standard library only: it runs on the host before anything is installed there.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ALLOWED_PORTS = frozenset({80, 443})
HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 30.0
# Hop-by-hop headers of a proxied request or answer: the proxy makes each request one
# connection of its own (Connection: close), which every HTTP/1.1 client handles.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate", "te", "trailer", "upgrade"})


@dataclass
class Tally:
    """What went through: requests per allowed host, refusals per target, bytes."""

    allowed: Counter = field(default_factory=Counter)
    denied: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    bytes_in: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, kind: str, target: str) -> None:
        with self.lock:
            getattr(self, kind)[target] += 1

    def add_bytes(self, count: int) -> None:
        with self.lock:
            self.bytes_in += count


class AllowListProxy:
    def __init__(self, allow: set[str], log_path: Path | None = None, ports: frozenset[int] = ALLOWED_PORTS):
        self.allow = {host.lower().rstrip(".") for host in allow}
        self.ports = ports
        self.tally = Tally()
        self._log = open(log_path, "a", buffering=1) if log_path else None

    def _record(self, kind: str, method: str, target: str, detail: str = "") -> None:
        self.tally.note(kind, target)
        if self._log:
            self._log.write(f"{time.strftime('%H:%M:%S')} {kind:7} {method} {target} {detail}\n")

    def allowed(self, host: str | None, port: int) -> bool:
        return bool(host) and host.lower().rstrip(".") in self.allow and port in self.ports

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, _version = lines[0].split(" ", 2)
            except ValueError:
                await self._refuse(writer, 400, "Bad Request")
                return
            headers = [line for line in lines[1:] if line]
            if method.upper() == "CONNECT":
                await self._tunnel(reader, writer, target)
            else:
                await self._forward(reader, writer, method, target, headers)
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, reason: str) -> None:
        body = f"{status} {reason} (siui test-fresh proxy)\n".encode()
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _open(self, method: str, host: str, port: int, label: str):
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self._record("failed", method, label, repr(exc))
            return None

    async def _tunnel(self, reader, writer, target: str) -> None:
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]")
        port = int(port_text) if port_text.isdigit() else 0
        if not self.allowed(host, port):
            self._record("denied", "CONNECT", target)
            await self._refuse(writer, 403, "Forbidden")
            return
        upstream = await self._open("CONNECT", host, port, target)
        if upstream is None:
            await self._refuse(writer, 502, "Bad Gateway")
            return
        self._record("allowed", "CONNECT", host)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await self._pipe_both(reader, writer, *upstream)

    async def _forward(self, reader, writer, method: str, target: str, headers: list[str]) -> None:
        url = urlsplit(target)
        port = url.port or 80
        if url.scheme != "http" or not self.allowed(url.hostname, port):
            self._record("denied", method, f"{url.hostname or target}:{port}")
            await self._refuse(writer, 403, "Forbidden")
            return
        kept, length = [], 0
        for line in headers:
            name, _, value = line.partition(":")
            if name.strip().lower() in HOP_BY_HOP:
                continue
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
            kept.append(line)
        if not any(line.lower().startswith("host:") for line in kept):
            kept.append(f"Host: {url.netloc}")
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        upstream = await self._open(method, url.hostname, port, url.hostname)
        if upstream is None:
            await self._refuse(writer, 502, "Bad Gateway")
            return
        up_reader, up_writer = upstream
        self._record("allowed", method, url.hostname, path)
        try:
            up_writer.write(f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
                            + "".join(f"{line}\r\n" for line in kept).encode("latin-1")
                            + b"Connection: close\r\n\r\n")
            if length:
                up_writer.write(await reader.readexactly(length))
            await up_writer.drain()
            answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            status, *answer_headers = answer.decode("latin-1").split("\r\n")
            answer_headers = [line for line in answer_headers
                              if line and line.partition(":")[0].strip().lower() not in HOP_BY_HOP]
            writer.write(f"{status}\r\n".encode("latin-1")
                         + "".join(f"{line}\r\n" for line in answer_headers).encode("latin-1")
                         + b"Connection: close\r\n\r\n")
            await self._copy(up_reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError) as exc:
            self._record("failed", method, url.hostname, repr(exc))
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()

    async def _copy(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            self.tally.add_bytes(len(data))
            sink.write(data)
            await sink.drain()

    async def _pipe_both(self, reader, writer, up_reader, up_writer) -> None:
        async def outward():
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    up_writer.write(data)
                    await up_writer.drain()
            with contextlib.suppress(OSError):
                up_writer.write_eof()

        async def inward():
            with contextlib.suppress(OSError):
                await self._copy(up_reader, writer)
            with contextlib.suppress(OSError):
                writer.write_eof()

        try:
            await asyncio.gather(outward(), inward())
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()

    def close(self) -> None:
        if self._log:
            self._log.close()


class ProxyThread:
    """The proxy on its own event loop in a daemon thread, bound to ``host`` only."""

    def __init__(self, proxy: AllowListProxy, host: str, port: int = 0):
        self.proxy, self.host, self.port = proxy, host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="siui-fresh-proxy", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self.proxy.handle, self.host, self.port, limit=HEAD_LIMIT))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self) -> "ProxyThread":
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self.proxy.close()
