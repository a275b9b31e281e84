"""Pre-signed answers (issue 14): two responder apps on the same database, each behind the
front as in production, serve byte-identical answers and the same ETag for the same
state; a suspension is re-signed once and both serve the new bytes; a nonce is signed
live; openssl verifies a pre-signed answer."""
from __future__ import annotations

import base64
import contextlib

from cryptography import x509
from cryptography.x509 import ocsp

from services.ocsp.app import create_app
from services.ocsp.responder import PRESIGNED, REGISTRY, RESPONDER
from services.ocsp.responder.wire import SOURCES
from services.ocsp.responder.presigned import STATE, state_of
from services.ocsp.state import PRESIGNER
from services.ocsp.state.presigner import PRESIGNED as PRESIGNED_COUNT
from tests.support.ocsp_harness import Issuer, registered, request_der, serve
from tests.support.openssl_ca import openssl_ocsp
from tests.support.wait import eventually


@contextlib.asynccontextmanager
async def two_responders(ocsp_config):
    """Two whole ocsp apps (as two responder instances or two workers are) on one database."""
    async with serve("front", create_app(ocsp_config)) as one, serve("front", create_app(ocsp_config)) as two:
        yield one, two


async def _get(client, der: bytes, etag: str | None = None):
    headers = {"If-None-Match": etag} if etag else {}
    response = await client.get("/" + base64.b64encode(der).decode(), headers=headers)
    return response.status, await response.read(), response.headers.get("ETag")


async def _presigned_for(app, ca: Issuer, serial: int, state: str | None = None) -> bool:
    """Whether ``app`` holds the pre-signed answer of the state its registry holds
    (and that state is ``state``, when given)."""
    entry = app[PRESIGNED].get(ca.issuer_id, serial, "sha1")
    record = app[REGISTRY].certificate(ca.issuer_id, serial)
    return (entry is not None and record is not None and entry[STATE] == state_of(record)
            and state in (None, entry[STATE]))


async def test_two_responders_serve_the_same_bytes_and_etag_and_a_suspension_re_signs_once(ocsp_config, feed,
                                                                                             tmp_path, pki):
    ca = Issuer.new("Presigned Test CA")
    leaf = ca.issue("presigned one")
    async with two_responders(ocsp_config) as (one, two):
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf)
        for client in (one, two):
            await registered(client.app, ca, leaf.serial)
        der = request_der(ca, leaf)

        async def same_answers():
            answers = [await _get(client, der) for client in (one, two) for _ in range(2)]
            return answers if len({body for _, body, _ in answers}) == 1 else None

        answers = await eventually(same_answers, what="both responders serving one pre-signed answer")
        status, body, etag = answers[0]
        assert status == 200 and all(tag == etag for _, _, tag in answers)
        assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD
        # The ETag of one answers 304 on the other: caches in front of the array hold one version.
        assert (await _get(two, der, etag))[0] == 304
        assert (await _get(one, der, etag))[0] == 304

        # openssl verifies the pre-signed bytes.
        (tmp_path / "presigned.der").write_bytes(body)
        ca_pem, leaf_pem = ca.authority.write(tmp_path, "ca")[0], leaf.write(tmp_path, "leaf")[0]
        out = await openssl_ocsp("-respin", tmp_path / "presigned.der", "-issuer", ca_pem, "-cert", leaf_pem,
                                  "-VAfile", pki.responder_cert)
        assert "Response verify OK" in out and ": good" in out, out

        signed_before = PRESIGNED_COUNT.labels("change")._value.get()
        live_before = SOURCES.labels("live")._value.get()
        for client in (one, two):
            # On a machine this loaded the presigner may take longer than the production
            # wait; the point here is that a request asked during it waits, not signs.
            client.app[RESPONDER].presign_wait = 5.0
        await feed.certificate(ca, leaf, status="suspended", certificate_id=certificate_id)
        await registered(one.app, ca, leaf.serial, status="suspended")
        # Asked the moment the state arrived (the new answer may not have yet): revoked,
        # and from the presigner, not signed on the request path.
        first = ocsp.load_der_ocsp_response((await _get(one, der))[1])
        assert first.certificate_status == ocsp.OCSPCertStatus.REVOKED
        for client in (one, two):
            await registered(client.app, ca, leaf.serial, status="suspended")
            await eventually(lambda app=client.app: _presigned_for(app, ca, leaf.serial),
                             what="the suspension's pre-signed answer in both")
        held = [await _get(client, der) for client in (one, two) for _ in range(2)]
        assert len({body for _, body, _ in held}) == 1 and held[0][1] != body
        assert len({tag for _, _, tag in held}) == 1 and held[0][2] != etag
        answer = ocsp.load_der_ocsp_response(held[0][1])
        assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason.name == "certificate_hold"
        # One signature for the new state (per hash algorithm), not one per responder.
        assert PRESIGNED_COUNT.labels("change")._value.get() - signed_before == len(ocsp_config.presign_algorithms)
        # The old ETag no longer matches: the client gets the new answer, not a 304.
        assert (await _get(one, der, etag))[0] == 200
        assert SOURCES.labels("live")._value.get() == live_before  # no request signed anything


async def test_a_nonce_is_signed_live_and_echoed(ocsp_config, feed):
    ca = Issuer.new("Presigned Nonce CA")
    leaf = ca.issue("nonce one")
    async with two_responders(ocsp_config) as (one, two):
        await feed.issuer(ca)
        await feed.certificate(ca, leaf)
        for client in (one, two):
            await registered(client.app, ca, leaf.serial)
            await eventually(lambda app=client.app: _presigned_for(app, ca, leaf.serial, "good"),
                             what="pre-signed answer loaded")
        presigned = (await _get(one, request_der(ca, leaf)))[1]
        bodies = set()
        for n, client in enumerate((one, two, one)):
            nonce = bytes([n + 1]) * 16
            response = await client.post("/", data=request_der(ca, leaf, nonce=nonce),
                                          headers={"Content-Type": "application/ocsp-request"})
            body = await response.read()
            answer = ocsp.load_der_ocsp_response(body)
            assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
            assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
            bodies.add(body)
        assert len(bodies) == 3 and presigned not in bodies


async def test_when_the_presigner_stops_another_takes_over(ocsp_config, feed):
    """One presigner at a time (the advisory lock); its app stopped, the other app's
    candidate wins the lock and signs what comes next."""
    ca = Issuer.new("Presigned Failover CA")
    first, second = ca.issue("before"), ca.issue("after")
    async with serve("front", create_app(ocsp_config)) as one:
        async with serve("front", create_app(ocsp_config)) as two:
            leaders = await eventually(
                lambda: _leaders(one, two), what="one of the two holding the presigner's lock")
            assert len(leaders) == 1
            await feed.issuer(ca)
            await feed.certificate(ca, first)
            for client in (one, two):
                await registered(client.app, ca, first.serial)
                await eventually(lambda app=client.app: _presigned_for(app, ca, first.serial, "good"),
                                 what="the first certificate pre-signed")
            survivor, leaving = (two, one) if leaders[0] is one else (one, two)
            await leaving.close()  # its lock goes with its connection
            await eventually(lambda: _leading(survivor), timeout=15, what="the survivor elected")
            await feed.certificate(ca, second)
            await registered(survivor.app, ca, second.serial)
            await eventually(lambda: _presigned_for(survivor.app, ca, second.serial, "good"),
                             what="the next certificate pre-signed by the survivor")


async def _leaders(*clients):
    leading = [client for client in clients if client.app[PRESIGNER].leading]
    return leading or None


async def _leading(client) -> bool:
    return client.app[PRESIGNER].leading
