"""OCSP through the front protocol on a real socket: what a client sees on the wire
(keep-alive, pipelining, Connection: close, HTTP/1.0, GET caching, bad input)."""
from __future__ import annotations

import base64
import os

from cryptography.x509 import ocsp

from services.ocsp.responder.codec import MAX_REQUEST_BYTES
from tests.support.ocsp_harness import request_der
from tests.support.ocsp_wire import Conn, answer, get, is_good, post, status_of


async def test_post_is_answered(served, good):
    ca, leaf = good
    conn = await Conn.open(served)
    await conn.send(post(request_der(ca, leaf)))
    reply = await conn.reply()
    assert is_good(reply, leaf.serial)
    assert reply.version == "1.1" and "date" in reply.headers and "connection" not in reply.headers
    await conn.close()


async def test_keep_alive_serves_several_requests_on_one_connection(served, good):
    ca, leaf = good
    conn = await Conn.open(served)
    for nonce in (None, b"n" * 16, None, b"m" * 16):
        await conn.send(post(request_der(ca, leaf, nonce=nonce)))
        reply = await conn.reply()
        assert is_good(reply, leaf.serial)
        if nonce:
            assert answer(reply).extensions.get_extension_for_class(ocsp.x509.OCSPNonce).value.nonce == nonce
    await conn.close()


async def test_pipelined_requests_are_answered_in_order(served, good):
    """A live-signed answer first, cached ones and a malformed one behind it: same order back."""
    ca, leaf = good
    other = ca.issue("not registered")
    conn = await Conn.open(served)
    nonces = [os.urandom(16), None, os.urandom(16), None]
    requests = [post(request_der(ca, leaf, nonce=nonce)) for nonce in nonces]
    requests.insert(2, post(b"\x30\x03garbage"))
    requests.append(post(request_der(ca, other)))
    await conn.send(b"".join(requests))
    replies = [await conn.reply() for _ in requests]
    expected = [*nonces[:2], "malformed", *nonces[2:], "unknown"]
    for reply, want in zip(replies, expected):
        if want == "malformed":
            assert status_of(reply) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        elif want == "unknown":
            assert answer(reply).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
        else:
            assert is_good(reply, leaf.serial)
            extensions = answer(reply).extensions
            echoed = extensions.get_extension_for_class(ocsp.x509.OCSPNonce).value.nonce if want else None
            assert echoed == want
    await conn.close()


async def test_connection_close_is_honoured(served, good):
    ca, leaf = good
    conn = await Conn.open(served)
    # A second request after the Connection: close one is not answered.
    await conn.send(post(request_der(ca, leaf), headers="Connection: close\r\n") + post(request_der(ca, leaf)))
    reply = await conn.reply()
    assert is_good(reply, leaf.serial)
    assert reply.headers["connection"] == "close"
    assert await conn.closed_by_server()


async def test_http_1_0_closes_unless_asked_to_keep_alive(served, good):
    ca, leaf = good
    conn = await Conn.open(served)
    await conn.send(post(request_der(ca, leaf), version="1.0"))
    reply = await conn.reply()
    assert reply.version == "1.0" and is_good(reply, leaf.serial)
    assert await conn.closed_by_server()

    conn = await Conn.open(served)
    for _ in range(2):
        await conn.send(post(request_der(ca, leaf), version="1.0", headers="Connection: keep-alive\r\n"))
        reply = await conn.reply()
        assert reply.headers["connection"] == "keep-alive" and is_good(reply, leaf.serial)
    await conn.close()


async def test_get_carries_cache_headers_and_revalidates_with_304(served, good):
    ca, leaf = good
    encoded = base64.b64encode(request_der(ca, leaf)).decode()
    conn = await Conn.open(served)
    await conn.send(get("/" + encoded.replace("/", "%2F").replace("+", "%2B")))
    reply = await conn.reply()
    assert is_good(reply, leaf.serial)
    assert reply.headers["cache-control"] == "max-age=60, public, no-transform, must-revalidate"
    for name in ("last-modified", "expires", "etag"):
        assert reply.headers[name]
    etag = reply.headers["etag"]

    await conn.send(get("/" + encoded, headers=f"If-None-Match: {etag}\r\n"))
    not_modified = await conn.reply()
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified.headers["etag"] == etag and "content-length" not in not_modified.headers

    await conn.send(get("/" + encoded, headers='If-None-Match: "something else"\r\n'))
    assert is_good(await conn.reply(), leaf.serial)
    await conn.send(get("/not-base64!"))
    malformed = await conn.reply()
    assert status_of(malformed) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert "cache-control" not in malformed.headers  # refusals are never cached
    await conn.close()


async def test_oversized_and_garbage_bodies_are_malformed_and_the_connection_stays(served, good):
    ca, leaf = good
    conn = await Conn.open(served)
    await conn.send(post(b"\x30" * (MAX_REQUEST_BYTES + 1)))
    assert status_of(await conn.reply()) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    await conn.send(post(os.urandom(300)))
    assert status_of(await conn.reply()) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    chunked = b"".join(b"%x\r\n%s\r\n" % (1000, b"\x30" * 1000) for _ in range(11)) + b"0\r\n\r\n"
    await conn.send(b"POST / HTTP/1.1\r\nHost: ocsp\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status_of(await conn.reply()) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    await conn.send(post(request_der(ca, leaf)))
    assert is_good(await conn.reply(), leaf.serial)
    await conn.close()


async def test_chunked_body_and_expect_100_continue(served, good):
    ca, leaf = good
    der = request_der(ca, leaf)
    conn = await Conn.open(served)
    await conn.send(b"POST / HTTP/1.1\r\nHost: ocsp\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"%x\r\n%s\r\n" % (10, der[:10]) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(der) - 10, der[10:]))
    assert is_good(await conn.reply(), leaf.serial)

    await conn.send(f"POST / HTTP/1.1\r\nHost: ocsp\r\nContent-Length: {len(der)}\r\n"
                    "Expect: 100-continue\r\n\r\n".encode())
    go_on = await conn.reply()
    assert go_on.status == 100
    await conn.send(der)
    assert is_good(await conn.reply(), leaf.serial)
    await conn.close()
