"""The online channel (:8443) in a reconnect storm, over real TLS against the real app:
beyond a small bound connections wait their turn, then are told 503 + Retry-After, then
are closed at accept, while the admitted ones are served; a reconnect resumes its TLS session from a ticket, is still
the certificate of the handshake that opened it, and a ticket carries nobody else."""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY as METRICS

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.online import ONLINE
from shared.clock import utc_now
from shared.license import load_pepper
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness, Provider
from tests.support.pki import TestPki
from tests.support.wait import eventually

MAX_INFLIGHT, RETRY_AFTER = 2, 10


@pytest.fixture(scope="module")
def storm_config(common_config) -> Config:
    return Config(common=common_config, port=0, tls_port=0, workers=1, online_max_inflight=MAX_INFLIGHT,
                  online_max_waiting=1, online_max_shedding=1, online_max_wait=30,
                  online_retry_after=RETRY_AFTER)


@pytest.fixture(scope="module")
async def harness(storm_config, pki, feed, tmp_path_factory):
    """The ocsp app with a :8443 gate of two served connections, one waiting, one shed."""
    async with TestClient(TestServer(create_app(storm_config))) as client:
        yield Harness(client, feed, load_pepper(pki.license_pepper), pki.root_ca_cert,
                      tmp_path_factory.mktemp("ocsp-storm"))


@pytest.fixture(scope="module")
async def ca(harness):
    world = TestPki(utc_now().replace(microsecond=0), label=f"storm {uuid.uuid4().hex[:6]}")
    return await harness.register_issuer(Issuer(world.issuing))


async def enrol(harness: Harness, ca) -> tuple[str, Provider, str]:
    """A provider with a registered certificate and a current key: (user, certificate, serial)."""
    username = f"{new_cui()}_CAS-B"
    provider = harness.provider(ca, username.partition("_")[0])
    await harness.publish_certificate(ca, provider, username)
    await registered(harness.app, ca, provider.serial)
    return username, provider, await harness.issue_key(username)


def request(path: str, authorization: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()


def basic(username: str, serial: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{serial}".encode()).decode()


def parse(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body or b"{}")


async def opened(harness: Harness, provider: Provider):
    """A TLS connection whose handshake is complete and which has sent nothing yet."""
    return await asyncio.open_connection("127.0.0.1", harness.app[ONLINE].port, ssl=harness.tls(provider))


async def ask(reader, writer, payload: bytes) -> tuple[int, dict[str, str], dict]:
    writer.write(payload)
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return parse(raw)


async def settled(check, what: str) -> None:
    """Wait until the server's own bookkeeping says ``check()``."""
    async def probe():
        return check()

    await eventually(probe, what=what)


def shed(stage: str) -> float:
    return METRICS.get_sample_value("siui_ocsp_online_shed_total", {"stage": stage}) or 0.0


def inflight() -> float:
    return METRICS.get_sample_value("siui_ocsp_online_inflight") or 0.0


async def test_beyond_the_bound_connects_wait_then_get_503_with_retry_after_and_all_admitted_are_served(
        harness, ca):
    username, provider, serial = await enrol(harness, ca)
    connect = request("/v1/online/connect", basic(username, serial))
    gate = harness.app[ONLINE].gate
    before_503, before_closed, before_inflight = shed("retry_after"), shed("accept"), inflight()
    admitted = [await opened(harness, provider) for _ in range(MAX_INFLIGHT)]
    await settled(lambda: gate.admitted == MAX_INFLIGHT, what="two connections admitted")
    assert inflight() == before_inflight + MAX_INFLIGHT

    # The third waits its turn: accepted, but its handshake does not even begin.
    waiting = asyncio.create_task(opened(harness, provider))
    await settled(lambda: gate.waiting == 1, what="one connection waiting")
    # The fourth finds the queue full: its handshake, then a quick 503 whatever it sends.
    shed_one = await opened(harness, provider)
    await settled(lambda: gate.shedding == 1, what="one connection being shed")
    # The fifth finds every bound reached: closed before its handshake.
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
        await ask(*await opened(harness, provider), connect)
    await settled(lambda: shed("accept") == before_closed + 1, what="a connection closed at accept")
    assert not waiting.done()

    status, headers, body = await ask(*shed_one, connect)
    assert status == 503 and headers["content-type"].startswith("application/problem+json")
    assert RETRY_AFTER // 2 <= int(headers["retry-after"]) <= RETRY_AFTER
    assert body["status"] == 503 and body["reason"] == "server_busy" and body["semaphore"] == "offline"
    assert shed("retry_after") == before_503 + 1

    # The admitted ones are served in full; the first answer frees the waiting one's turn.
    for reader, writer in admitted:
        status, _, body = await ask(reader, writer, connect)
        assert status == 200 and body["semaphore"] == "online" and body["username"] == username
    status, _, body = await ask(*await asyncio.wait_for(waiting, 10), connect)
    assert status == 200 and body["semaphore"] == "online"
    await settled(lambda: gate.pending == 0, what="every place given back")
    assert inflight() == before_inflight

    # Once the storm has passed, a connect is served again.
    status, body = await harness.connect(provider, username, serial)
    assert status == 200 and body["semaphore"] == "online"


def connect_blocking(port: int, context: ssl.SSLContext, payload: bytes, session: ssl.SSLSession | None = None):
    """One connect over a blocking TLS socket (``session`` resumes): (reused, session, answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
            tls.sendall(payload)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
            return tls.session_reused, tls.session, parse(b"".join(chunks))


async def test_a_reconnect_resumes_its_session_and_is_still_its_own_certificate(harness, ca, storm_config):
    user_a, cert_a, serial_a = await enrol(harness, ca)
    user_b, cert_b, serial_b = await enrol(harness, ca)
    port = harness.app[ONLINE].port
    assert harness.app[ONLINE].trust.shared_tickets
    context = harness.tls(cert_a)
    connect_a = request("/v1/online/connect", basic(user_a, serial_a))

    reused, session, (status, _, first) = await asyncio.to_thread(connect_blocking, port, context, connect_a)
    assert (reused, status) == (False, 200) and session is not None and session.has_ticket
    reused, _, (status, _, body) = await asyncio.to_thread(connect_blocking, port, context, connect_a, session)
    assert reused is True and status == 200 and body["username"] == user_a
    # The heartbeat's token is bound to the certificate's fingerprint: the resumed
    # connection presents (to the server) the very certificate of the first handshake.
    beat = request("/v1/online/heartbeat", f"Bearer {first['session_token']}")
    reused, _, (status, _, body) = await asyncio.to_thread(connect_blocking, port, context, beat, session)
    assert reused is True and status == 200 and body["semaphore"] == "online"

    # B's certificate and credentials on a connection resuming A's ticket: the server
    # sees A's certificate, registered to A, so B is refused.
    context.load_cert_chain(cert_b.cert_path, cert_b.key_path)
    connect_b = request("/v1/online/connect", basic(user_b, serial_b))
    reused, _, (status, _, body) = await asyncio.to_thread(connect_blocking, port, context, connect_b, session)
    assert reused is True and (status, body["reason"]) == (401, "certificate_other_user")
    # The same credentials in a full handshake with B's certificate are fine.
    reused, _, (status, _, body) = await asyncio.to_thread(connect_blocking, port, context, connect_b)
    assert reused is False and status == 200 and body["username"] == user_b

    # Another process (a second worker, or this one restarted) accepts the ticket: the
    # key comes from the data key, not from chance.
    async with TestClient(TestServer(create_app(storm_config))) as other:
        other_port = other.server.app[ONLINE].port
        context_a = harness.tls(cert_a)
        _, session_a, _ = await asyncio.to_thread(connect_blocking, port, context_a, connect_a)
        reused, _, (status, _, body) = await asyncio.to_thread(connect_blocking, other_port, context_a,
                                                               connect_a, session_a)
        assert reused is True and status == 200 and body["username"] == user_a
