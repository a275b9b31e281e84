"""Regression tests of the hardening issue through the responder as production serves it
(the front on a real socket, aiohttp behind it, the log in PostgreSQL): what one
request once could do to the service, and what it answers now."""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import datetime, timezone

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder import REGISTRY
from services.ocsp.responder.front import FrontSite
from services.ocsp.responder.responses import error_response
from shared.broker import connect
from shared.events import CertificateRegistered, IssuerRegistered, new_envelope
from shared.http.serving import CUT_OFF, GuardedAppRunner, GuardLimits
from tests.support.infra import amqp_url_for, free_port
from tests.support import pki
from tests.support.wait import eventually

MALFORMED = error_response("malformed_request")
LIMITS = GuardLimits(head_timeout=0.6, body_timeout=0.6, idle_timeout=2.0, max_per_address=4)


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


class World:
    """One CA of this module, registered; one certificate of it, registered."""

    def __init__(self, port: int, database_url: str):
        self.port, self.database_url = port, database_url
        now = datetime.now(timezone.utc)
        authority = pki.root_ca(f"Hardening CA {uuid.uuid4().hex[:6]}", now=now)
        self.ca = authority.cert
        self.leaf_serial = secrets.randbits(120) | (1 << 120)
        self.leaf = pki.client(authority, "12433636", now=now, serial=self.leaf_serial).cert
        public = self.ca.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        self.name_hash = hashlib.sha1(self.ca.subject.public_bytes()).digest()
        # SubjectPublicKeyInfo's BIT STRING value, without the unused-bits octet.
        self.key_hash = hashlib.sha1(public[-65:]).digest()

    def cert_id(self, serial_contents: bytes) -> bytes:
        """A CertID of this CA with the serial INTEGER's content octets as given (any encoding)."""
        algorithm = bytes.fromhex("300906052b0e03021a0500")
        return tlv(0x30, algorithm + tlv(0x04, self.name_hash) + tlv(0x04, self.key_hash) + tlv(0x02, serial_contents))

    def request(self, *serials: bytes) -> bytes:
        entries = b"".join(tlv(0x30, self.cert_id(s)) for s in serials)
        return tlv(0x30, tlv(0x30, tlv(0x30, entries)))

    async def post(self, der: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(der), der))
        reply = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = reply.partition(b"\r\n\r\n")
        return int(head[9:12]), body

    async def rows(self, query: str, *args):
        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": "ocsp"})
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


def contents(value: int) -> bytes:
    """The minimal DER INTEGER content octets of a positive ``value``."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


@pytest.fixture(scope="module")
async def world(common_config):
    app = create_app(Config(common=common_config, port=0, tls_port=0, workers=1))
    runner = GuardedAppRunner(app)
    await runner.setup()
    site = FrontSite(runner, "127.0.0.1", free_port(), limits=LIMITS)
    await site.start()
    world = World(site.port, common_config.database_url)
    broker = await connect(amqp_url_for("certs"), common_config.events_exchange)  # as certs publishes them
    issuer_id, certificate_id = str(uuid.uuid4()), str(uuid.uuid4())
    world.certificate_id = certificate_id
    pem = world.ca.public_bytes(serialization.Encoding.PEM).decode()
    await broker.publish(new_envelope(IssuerRegistered(issuer_id=issuer_id, subject_dn=world.ca.subject.rfc4514_string(),
                                                       certificate_pem=pem), "CNAS"))
    await broker.publish(new_envelope(CertificateRegistered(
        certificate_id=certificate_id, issuer_id=issuer_id, serial=str(world.leaf_serial), username="12433636_CAS-B",
        provider_cui="12433636", status="active", changed_at=datetime.now(timezone.utc).isoformat()), "B"))

    async def known():
        return app[REGISTRY].certificate(issuer_id, world.leaf_serial) is not None

    await eventually(known, what="the certificate in the registry")
    await broker.close()
    yield world
    await site.stop(2)
    await runner.cleanup()


async def answered_unknown_and_logged(world: World) -> None:
    """Evidence that the responder answers and the log is written: a fresh unknown serial
    is answered 'unknown' and its row reaches the table."""
    serial = secrets.randbits(100) | (1 << 100)
    status, body = await world.post(world.request(contents(serial)))
    assert status == 200
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    async def logged():
        return await world.rows("select id from ocsp_log where serial = $1", str(serial))

    await eventually(logged, timeout=15, what="the log row of a later request")


@pytest.mark.parametrize("octets", [21, 1800, 2100], ids=["21-octets", "4300-digits", "over-4300-digits"])
async def test_a_serial_longer_than_20_octets_is_malformed_and_the_log_keeps_flowing(world, octets):
    status, body = await world.post(world.request(b"\x01" + b"\x00" * (octets - 1)))
    assert (status, body) == (200, MALFORMED)
    await answered_unknown_and_logged(world)


async def test_a_20_octet_serial_with_its_sign_octet_is_a_question_like_any_other(world):
    serial = (1 << 159) | secrets.randbits(100)  # top bit set: 21 content octets in DER
    status, body = await world.post(world.request(contents(serial)))
    assert status == 200 and ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.UNKNOWN


async def test_an_empty_or_zero_padded_serial_is_malformed(world):
    assert await world.post(world.request(b"")) == (200, MALFORMED)
    padded = b"\x00" + contents(world.leaf_serial)  # the registered serial, not DER: was 'good'
    assert await world.post(world.request(padded)) == (200, MALFORMED)
    status, body = await world.post(world.request(contents(world.leaf_serial)))  # the DER one
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD


async def test_one_request_with_a_hundred_cert_ids_writes_at_most_eight_log_rows(world):
    serials = [secrets.randbits(90) | (1 << 90) for _ in range(100)]
    status, body = await world.post(world.request(*(contents(s) for s in serials)))
    assert status == 200 and len(list(ocsp.load_der_ocsp_response(body).responses)) == 100
    await answered_unknown_and_logged(world)  # everything earlier is written by now
    rows = await world.rows("select serial, detail from ocsp_log where serial = any($1::text[]) order by id",
                            [str(s) for s in serials])
    assert [r["serial"] for r in rows] == [str(s) for s in serials[:8]]
    assert rows[-1]["detail"] == "and 92 more CertIDs in this request"


async def test_the_front_cuts_off_a_trickled_head_and_a_silent_connection(world):
    before = CUT_OFF.labels("head_timeout")._value.get()
    reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
    for byte in b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        if reader.at_eof():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, answer owed to nobody
    assert CUT_OFF.labels("head_timeout")._value.get() > before
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # opened, never spoke: closed
    writer.close()


async def test_the_front_bounds_the_connections_of_one_address(world):
    held = []
    for _ in range(LIMITS.max_per_address):
        reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
        der = world.request(contents(world.leaf_serial))
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(der), der))
        await reader.readuntil(b"\r\n\r\n")
        held.append(writer)
    reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    for w in [*held, writer]:
        w.close()
        await w.wait_closed()

    async def accepted_again():  # once the server has seen the closes, the address may connect
        try:
            return (await world.post(world.request(contents(world.leaf_serial))))[0] == 200
        except (ValueError, ConnectionError):
            return False

    await eventually(accepted_again, what="a connection accepted again")


async def test_a_seeded_fuzz_over_http_gets_proper_ocsp_answers_from_the_front(world):
    """The hypothesis fuzz (tests/unit/test_ocsp_fuzz.py) drives the parser and responder
    in process; this sends mutated requests over the wire, POST and GET, pipelined on
    keep-alive connections, to the front as production serves it."""
    import base64
    import random

    from asn1crypto import ocsp as asn1_ocsp

    rng = random.Random(2026)
    errors = {error_response(n) for n in ("malformed_request", "internal_error", "try_later", "unauthorized")}
    seeds = [world.request(contents(world.leaf_serial)), world.request(contents(world.leaf_serial), contents(99)),
             world.request(b"\x01" * 30), world.request(contents(7))]
    counts = {"successful": 0, "error": 0}
    reader, writer = await asyncio.open_connection("127.0.0.1", world.port)
    for n in range(600):
        der = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(0, 3)):
            at = rng.randrange(len(der))
            der[at] = rng.choice([der[at] ^ (1 << rng.randrange(8)), 0x00, 0x80, 0xFF, 0x30])
        der = bytes(der)
        if n % 3 == 0:
            request = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % base64.b64encode(der).replace(b"/", b"%2F")
        else:
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(der), der)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        if body in errors:
            counts["error"] += 1
        else:
            parsed = asn1_ocsp.OCSPResponse.load(body, strict=True)
            assert parsed["response_status"].native == "successful"
            ocsp.load_der_ocsp_response(body)
            counts["successful"] += 1
    writer.close()
    assert counts["successful"] > 50 and counts["error"] > 50, counts
