"""The online channel (:8443) behind a TCP balancer speaking the PROXY protocol
(SIUI_ONLINE_PROXY_PROTOCOL=on), over real sockets and real TLS: a trusted balancer's
header names the client wherever the channel counts one (the OCSP log of a connect and of
a refused handshake); anyone else's header is refused, as are a trusted peer without one,
a garbled one and one too slow, each closed within the bound while the channel serves on."""
from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.online import ONLINE
from shared.http.proxied import REFUSED
from shared.license import load_pepper
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer
from tests.support.ocsp_online import Harness
from tests.support.proxy_header import v1, v2
from tests.support.wait import eventually

BALANCER = "127.0.0.1"      # the trusted proxy (SIUI_TRUSTED_PROXIES)
STRANGER = "127.0.0.9"      # a peer of its own loopback address, not trusted
HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
async def harness(common_config, pki, feed, tmp_path_factory):
    common = replace(common_config, trusted_proxies=frozenset({BALANCER}))
    config = Config(common=common, port=0, tls_port=0, workers=1, online_proxy_protocol=True,
                    online_proxy_header_timeout=HEADER_TIMEOUT)
    async with TestClient(TestServer(create_app(config))) as client:
        yield Harness(client, feed, load_pepper(pki.license_pepper), pki.root_ca_cert,
                      tmp_path_factory.mktemp("ocsp-online-proxy"))


def refusals(reason: str) -> float:
    return REFUSED.labels(reason)._value.get()


async def connect(harness: Harness, *, sender: str, header: bytes, username: str,
                  provider=None) -> tuple[int, dict]:
    """POST /v1/online/connect over a connection from ``sender`` that starts with
    ``header``, then TLS (with ``provider``'s certificate, if any); (status, JSON body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.app[ONLINE].port, local_addr=(sender, 0))
    try:
        writer.write(header)
        await writer.start_tls(harness.tls(provider), server_hostname="127.0.0.1")
        writer.write(b"POST /v1/online/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\nAuthorization: " + aiohttp.encode_basic_auth(username, "x").encode()
                     + b"\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def closed_unserved(harness: Harness, *, sender: str, sent: bytes) -> float:
    """Seconds until the channel closes a connection from ``sender`` that sent ``sent``
    (and nothing more), having answered nothing."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.app[ONLINE].port, local_addr=(sender, 0))
    try:
        writer.write(sent)
        try:
            answered = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 10)
        except ConnectionResetError:
            answered = b""
    finally:
        writer.close()
    assert answered == b""
    return time.monotonic() - started


async def logged_from(harness: Harness, auth_for, predicate) -> dict:
    async def found():
        response = await harness.client.get("/v1/log", params={"limit": "500"},
                                            headers=auth_for(cas="CNAS", username="admin"))
        assert response.status == 200
        return [e for e in (await response.json())["items"] if predicate(e)]

    (entry,) = await eventually(found, what="the attempt in the OCSP log")
    return entry


@pytest.mark.parametrize("version", ["v2", "v1"])
async def test_a_trusted_balancers_header_is_the_client_in_the_ocsp_log(harness, auth_for, version):
    client = ("203.0.113.7", 40001) if version == "v2" else ("2001:db8::17", 40002)
    claimed = f"{new_cui()}_CAS-B"
    header = v2(client) if version == "v2" else v1(client)
    status, body = await connect(harness, sender=BALANCER, header=header, username=claimed)
    assert (status, body["reason"]) == (401, "certificate_missing")
    entry = await logged_from(harness, auth_for, lambda e: claimed in (e["detail"] or ""))
    assert entry["client"] == client[0]


async def test_a_refused_handshake_is_reported_against_the_headers_client(harness, auth_for):
    stranger_ca = Issuer.new(f"Stranger CA {uuid.uuid4().hex[:6]}")
    provider = harness.provider(stranger_ca, new_cui())
    with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
        await connect(harness, sender=BALANCER, header=v2(("198.51.100.23", 1234)), username="x_CAS-B",
                      provider=provider)
    assert "UNKNOWN_CA" in repr(refused.value).upper()  # the TLS alert, after the header was read
    entry = await logged_from(harness, auth_for, lambda e: e["client"] == "198.51.100.23")
    assert entry["detail"] == "tls:certificate_untrusted"


async def test_a_local_header_leaves_the_balancers_own_address(harness, auth_for):
    claimed = f"{new_cui()}_CAS-B"
    status, _ = await connect(harness, sender=BALANCER, header=v2(("192.0.2.1", 9), local=True), username=claimed)
    assert status == 401
    entry = await logged_from(harness, auth_for, lambda e: claimed in (e["detail"] or ""))
    assert entry["client"] == BALANCER


async def test_a_header_from_a_peer_not_trusted_is_refused_and_its_plain_tls_served(harness, auth_for):
    before = refusals("untrusted")
    await closed_unserved(harness, sender=STRANGER, sent=v2(("203.0.113.99", 1)))
    await closed_unserved(harness, sender=STRANGER, sent=v1(("203.0.113.99", 1)))
    assert refusals("untrusted") == before + 2
    claimed = f"{new_cui()}_CAS-B"
    status, _ = await connect(harness, sender=STRANGER, header=b"", username=claimed)
    assert status == 401
    entry = await logged_from(harness, auth_for, lambda e: claimed in (e["detail"] or ""))
    assert entry["client"] == STRANGER


async def test_a_trusted_peer_without_a_header_is_refused(harness):
    before = refusals("missing")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await connect(harness, sender=BALANCER, header=b"", username="x_CAS-B")
    assert refusals("missing") == before + 1


async def test_garbled_and_slow_headers_are_closed_within_the_bound_and_the_channel_serves_on(harness, auth_for):
    before = {reason: refusals(reason) for reason in ("malformed", "too_long", "timeout")}
    quick = [await closed_unserved(harness, sender=BALANCER, sent=sent) for sent in (
        b"PROXY TCP4 203.0.113.7 10.0.0.1 99999 8443\r\n",
        v2(("203.0.113.7", 1))[:12] + b"\x31\x11\x00\x0c",
        b"PROXY UNKNOWN " + b"x" * 200)]
    assert max(quick) < HEADER_TIMEOUT  # refused at once, not at the time bound
    silent, halfway = await asyncio.gather(
        closed_unserved(harness, sender=BALANCER, sent=b""),
        closed_unserved(harness, sender=BALANCER, sent=v2(("203.0.113.7", 1))[:20]))
    assert HEADER_TIMEOUT * 0.9 <= min(silent, halfway) and max(silent, halfway) < HEADER_TIMEOUT + 2
    assert refusals("malformed") == before["malformed"] + 2
    assert refusals("too_long") == before["too_long"] + 1
    assert refusals("timeout") == before["timeout"] + 2
    claimed = f"{new_cui()}_CAS-B"
    status, _ = await connect(harness, sender=BALANCER, header=v2(("203.0.113.42", 7)), username=claimed)
    assert status == 401
    entry = await logged_from(harness, auth_for, lambda e: claimed in (e["detail"] or ""))
    assert entry["client"] == "203.0.113.42"
