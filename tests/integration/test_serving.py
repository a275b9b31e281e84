"""shared.http.serving and shared.http.tls on real sockets: slow clients are cut off, one
address cannot hold every connection, what aiohttp refuses is problem+json, and a
refused TLS handshake sends its alert and is reported."""
from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time

import pytest
from aiohttp import web

from shared.http.clients import TRUSTED_PROXIES
from shared.http.problems import PROBLEM_CT
from shared.http.serving import CUT_OFF, GuardedAppRunner, GuardedTCPSite, GuardLimits
from tests.support.infra import free_port
from tests.support.wait import eventually

LIMITS = GuardLimits(head_timeout=0.6, body_timeout=0.6, idle_timeout=1.5, max_per_address=3)


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0")))
    return web.Response(text="slow done")


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@pytest.fixture
async def served(request):
    app = web.Application()
    # A parametrised test may name the addresses the app trusts as reverse proxies.
    app[TRUSTED_PROXIES] = frozenset(getattr(request, "param", ()))
    app.router.add_get("/slow", _slow)
    app.router.add_post("/echo", _echo)
    runner = GuardedAppRunner(app, limits=LIMITS)
    await runner.setup()
    port = free_port()
    await GuardedTCPSite(runner, "127.0.0.1", port).start()
    yield port
    await runner.cleanup()


def cuts(why: str) -> float:
    return CUT_OFF.labels(why)._value.get()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection (it must close in time)."""
    data = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            data += chunk
    return data


async def test_a_head_trickled_byte_by_byte_is_cut_off(served):
    before = cuts("head_timeout")
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    started = time.monotonic()
    head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    for byte in head:  # one byte every 50 ms: bytes keep coming, the head never ends
        if reader.at_eof():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
        if time.monotonic() - started > 5:
            break
    assert await closed_within(reader, 5) == b""
    assert time.monotonic() - started < 4
    assert cuts("head_timeout") == before + 1
    writer.close()


async def test_a_connection_that_never_speaks_is_closed(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    started = time.monotonic()
    assert await closed_within(reader, 5) == b""
    assert time.monotonic() - started < 3
    writer.close()


async def test_a_body_that_stalls_is_cut_off_but_a_slow_handler_is_not(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    before = cuts("body_timeout")
    assert await closed_within(reader, 5) == b""
    assert cuts("body_timeout") == before + 1
    writer.close()
    # A handler that takes longer than every timeout, with its request whole, is not cut.
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(b"GET /slow?s=1.2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"slow done" in await closed_within(reader, 10)
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(served):
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    assert b"slow done" in await closed_within(reader, 6)  # answered, then closed when idle
    assert time.monotonic() - started >= LIMITS.idle_timeout - 0.1
    writer.close()


async def test_one_address_holds_a_bounded_number_of_connections(served):
    before = cuts("per_address")
    held = []
    for _ in range(LIMITS.max_per_address):
        reader, writer = await asyncio.open_connection("127.0.0.1", served)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"slow done" in await reader.readuntil(b"slow done")
        held.append(writer)
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    assert await closed_within(reader, 3) == b""
    assert cuts("per_address") == before + 1
    for w in [*held, writer]:
        w.close()


@pytest.mark.parametrize("served", [("127.0.0.1",)], indirect=True)
async def test_a_trusted_proxy_is_not_held_to_one_addresss_cap(served):
    """Behind nginx every client arrives from nginx's address: capping it would starve
    them all (nginx limits per client itself)."""
    before = cuts("per_address")
    held = []
    for _ in range(LIMITS.max_per_address + 2):
        reader, writer = await asyncio.open_connection("127.0.0.1", served)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"slow done" in await asyncio.wait_for(reader.readuntil(b"slow done"), 5)
        held.append(writer)
    assert cuts("per_address") == before
    for w in held:
        w.close()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n",
], ids=["not-http", "header-too-long", "bad-chunking"])
async def test_what_aiohttp_cannot_read_is_answered_as_problem_json(served, raw):
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(raw)
    reply = await closed_within(reader, 5)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head[:9] in (b"HTTP/1.0 ", b"HTTP/1.1 ") and head[9:10] == b"4", reply[:200]
    assert f"Content-Type: {PROBLEM_CT}".encode() in head
    problem = json.loads(body)
    assert problem["status"] == int(head[9:12]) and problem["detail"].startswith("the request could not be read")
    writer.close()


# -- TLS ----------------------------------------------------------------------------------

@pytest.fixture
def tls_files(tmp_path):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=test ca", "-days", "2")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "srv.key",
        "-out", "srv.pem", "-subj", "/CN=127.0.0.1", "-days", "2")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "stranger.key",
        "-out", "stranger.pem", "-subj", "/CN=stranger", "-days", "2")
    return tmp_path


@pytest.fixture
async def tls_served(tls_files):
    refused = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "srv.pem", tls_files / "srv.key")
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(tls_files / "ca.pem")
    app = web.Application()
    app.router.add_get("/slow", _slow)
    runner = GuardedAppRunner(app, limits=LIMITS)
    await runner.setup()
    port = free_port()
    await GuardedTCPSite(runner, "127.0.0.1", port, ssl_context=context, handshake_timeout=0.8,
                         on_tls_refused=lambda peer, error: refused.append((peer, str(error)))).start()
    yield port, refused
    await runner.cleanup()


async def test_a_refused_client_certificate_gets_the_tls_alert_and_is_reported(tls_served, tls_files):
    port, refused = tls_served
    done = await asyncio.to_thread(
        subprocess.run, ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", "stranger.pem",
                         "-key", "stranger.key", "-quiet"], input=b"GET /slow HTTP/1.0\r\n\r\n",
        cwd=tls_files, capture_output=True, timeout=15)
    # asyncio and uvloop would close without it ("unexpected eof"): the alert names the cause.
    assert b"alert unknown ca" in done.stderr, done.stderr
    await eventually(lambda: _async(bool(refused)), what="the refusal reported")
    assert refused[0][0] == "127.0.0.1" and "certificate verify failed" in refused[0][1]


async def test_tls_without_a_client_certificate_still_serves_and_the_handshake_is_bounded(tls_served, tls_files):
    port, refused = tls_served
    client = ssl.create_default_context(cafile=str(tls_files / "srv.pem"))
    client.check_hostname = False  # the test's server certificate names no address
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"slow done" in await closed_within(reader, 5)
    writer.close()
    # A client that opens the TCP connection and never starts TLS is let go in time.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    assert await closed_within(reader, 5) == b""
    assert time.monotonic() - started < 3
    await eventually(lambda: _async(any("too long" in error for _, error in refused)), what="timeout reported")
    writer.close()


async def _async(value):
    return value
