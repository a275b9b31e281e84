"""The OCSP responder through the real app, fed by certs' events on the real broker, on
both edges: aiohttp's own site and the front that production serves :8104 through."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from services.ocsp.app import create_app
from services.ocsp.responder.codec import MAX_REQUEST_BYTES
from tests.support import infra
from shared.clock import utc_now
from tests.support.ocsp_harness import (
    OCSP_REQUEST, Issuer, ask, committed, raw_get, registered, request_der, serve,
)

MALFORMED = ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_good_unknown_and_nonce_echo(client, feed, ca):
    leaf = ca.issue("provider")
    await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)

    answer = await ask(client, request_der(ca, leaf, 424242, nonce=b"\x01" * 32))

    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    statuses = {single.serial_number: single.certificate_status for single in answer.responses}
    assert statuses == {leaf.serial: ocsp.OCSPCertStatus.GOOD, 424242: ocsp.OCSPCertStatus.UNKNOWN}
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x01" * 32
    responder = x509.load_pem_x509_certificate(await (await client.get("/v1/responder.pem")).read())
    assert answer.certificates == [responder]
    assert answer.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    for single in answer.responses:
        assert single.next_update_utc - single.this_update_utc == timedelta(hours=1)


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()],
                         ids=lambda a: a.name)
async def test_answers_in_the_clients_hash(client, feed, ca, algorithm):
    leaf = ca.issue("provider")
    await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    answer = await ask(client, request_der(ca, leaf, algorithm=algorithm))
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.hash_algorithm.name == algorithm.name


async def test_unknown_issuer_is_unauthorized_and_garbage_malformed(client, feed, ca):
    stranger = Issuer.new("Not Registered CA")
    leaf = stranger.issue("provider")
    assert (await ask(client, request_der(stranger, leaf))).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    await registered(client.app, ca)
    # One CertID of a registered issuer and one of an unknown one: not ours to answer.
    mixed = request_der(ca, 77, (stranger, leaf))
    assert (await ask(client, mixed)).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    for body in (b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" + b"\x00" * (MAX_REQUEST_BYTES + 1)):
        assert (await ask(client, body)).response_status == MALFORMED
    # A nonce outside RFC 9654's 1..128 octets.
    assert (await ask(client, request_der(ca, 5, nonce=b"n" * 129))).response_status == MALFORMED


async def test_body_cap_without_content_length(client, ca):
    async def chunks():
        for _ in range(20):
            yield b"\x30" * 1000

    response = await client.post("/", data=chunks(), headers=OCSP_REQUEST)
    assert ocsp.load_der_ocsp_response(await response.read()).response_status == MALFORMED


async def test_suspension_reinstatement_and_revocation(client, feed, ca):
    leaf = ca.issue("provider")
    certificate_id = await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    request = request_der(ca, leaf)
    assert (await ask(client, request)).certificate_status == ocsp.OCSPCertStatus.GOOD  # now cached

    # Whole seconds, as OCSP carries them; later than the registration (newest state wins).
    held_at = utc_now().replace(microsecond=0) + timedelta(seconds=1)
    await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id,
                           changed_at=held_at)
    await registered(client.app, ca, leaf.serial, status="suspended")
    held = await ask(client, request)
    assert held.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold
    assert held.revocation_time_utc == held_at

    await feed.reinstate(ca, leaf.serial, certificate_id, changed_at=held_at + timedelta(seconds=1))
    await registered(client.app, ca, leaf.serial, status="good")
    assert (await ask(client, request)).certificate_status == ocsp.OCSPCertStatus.GOOD

    revoked_at = held_at + timedelta(seconds=2)
    await feed.certificate(ca, leaf.serial, status="revoked", certificate_id=certificate_id,
                           changed_at=revoked_at, reason="key_compromise")
    await registered(client.app, ca, leaf.serial, status="revoked")
    revoked = await ask(client, request)
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc == revoked_at


async def test_events_out_of_order(client, feed):
    ca = Issuer.new("Late Issuer CA")
    leaf = ca.issue("provider")
    now = utc_now()
    certificate_id = await feed.certificate(ca, leaf.serial, status="suspended", changed_at=now)
    # The registration, older, arrives after the suspension; the issuer comes last of all.
    await feed.certificate(ca, leaf.serial, certificate_id=certificate_id, changed_at=now - timedelta(minutes=5))
    await feed.issuer(ca)
    await registered(client.app, ca, leaf.serial, status="suspended")
    # Evidence that the older state had its chance: all three events committed, and then a
    # later change of this issuer applied (the registry follows the commits in order).
    await committed(client.app, feed.published[-3:])
    sentinel = ca.issue("sentinel")
    await feed.certificate(ca, sentinel.serial)
    await registered(client.app, ca, sentinel.serial)
    assert (await ask(client, request_der(ca, leaf))).revocation_reason == x509.ReasonFlags.certificate_hold


async def test_get_with_cache_headers_and_etag(client, feed, ca):
    leaf = ca.issue("provider")
    await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    text = base64.b64encode(request_der(ca, leaf, algorithm=hashes.SHA256())).decode()

    response = await client.get("/" + quote(text, safe=""))
    body = await response.read()
    assert response.status == 200 and response.content_type == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.headers["Cache-Control"] == "max-age=60, public, no-transform, must-revalidate"
    assert response.headers["ETag"] == '"' + hashlib.sha256(body).hexdigest() + '"'
    last_modified = datetime.strptime(response.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT")
    expires = datetime.strptime(response.headers["Expires"], "%a, %d %b %Y %H:%M:%S GMT")
    assert timedelta(0) < expires - last_modified <= timedelta(seconds=61)

    again = await client.get("/" + text, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    # Unescaped, unpadded, after a doubled slash: the same answer (from the cache).
    assert await raw_get(client, "//" + text.replace("=", "")) == (200, body)
    # The operational routes and /v1/* are not OCSP requests.
    assert (await client.get("/healthz")).status == 200
    missing = await client.get("/v1/nothing-here")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    assert ocsp.load_der_ocsp_response(await (await client.get("/not-base64!")).read()).response_status == MALFORMED


async def test_get_keeps_slashes_inside_the_base64(client, feed, ca):
    await registered(client.app, ca)
    for counter in range(20_000):  # a request whose base64 holds a '//' (the nonce varies it)
        nonce = hashlib.sha256(counter.to_bytes(4, "big")).digest()[:16]
        text = base64.b64encode(request_der(ca, 123, nonce=nonce)).decode()
        if "//" in text:
            break
    else:
        raise AssertionError("the nonces tried give no base64 with '//'; try more of them")
    for target in ("/" + text, "/" + text.replace("//", "/")):  # as sent, and "cleaned" by a proxy
        status, body = await raw_get(client, target)
        assert status == 200
        assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.UNKNOWN


async def test_a_suspension_drops_the_cached_get_answer(client, feed, ca):
    leaf = ca.issue("provider")
    certificate_id = await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    path = "/" + base64.b64encode(request_der(ca, leaf)).decode()
    first = await client.get(path)
    etag = first.headers["ETag"]
    await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
    await registered(client.app, ca, leaf.serial, status="suspended")
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert ocsp.load_der_ocsp_response(await changed.read()).certificate_status == ocsp.OCSPCertStatus.REVOKED


async def test_state_survives_a_restart(edge, ocsp_config, feed, ca):
    leaf = ca.issue("provider")
    certificate_id = await feed.certificate(ca, leaf.serial)
    async with serve(edge, create_app(ocsp_config)) as first:
        await registered(first.app, ca, leaf.serial)
        await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
        await registered(first.app, ca, leaf.serial, status="suspended")
    # A new process loads from the tables alone: no event is replayed to it.
    async with serve(edge, create_app(ocsp_config)) as second:
        assert (await ask(second, request_der(ca, leaf))).revocation_reason == x509.ReasonFlags.certificate_hold


async def test_metrics_count_answers_by_status(client, feed, ca, pki):
    await registered(client.app, ca)
    await ask(client, request_der(ca, 99))
    assert (await client.get("/metrics")).status == 401  # the counters name houses: a token is asked
    text = await (await client.get("/metrics", headers=infra.metrics_headers(pki.data_dir))).text()
    assert 'siui_ocsp_responses_total{cas="",status="unknown"}' in text
    assert "siui_ocsp_response_seconds_bucket" in text
