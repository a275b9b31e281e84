"""Outside clients agree with the responder: the openssl CLI, pyhanko-certvalidator; and
delegated signers, with which validators need nothing but the CA. On both edges: aiohttp's
own site and the front that production serves :8104 through."""
from __future__ import annotations

import asyncio
import base64
import math
import statistics
import time
import uuid

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY as METRICS
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from services.ocsp.responder import REGISTRY
from shared.db import POOL
from tests.support.ocsp_harness import Issuer, ask, registered, request_der
from tests.support.pki import Issued, new_key, private_key_pem
from tests.support.openssl_ca import openssl_ocsp
from tests.support.wait import eventually


async def test_openssl_cli_several_certificates_sha256_nonce_and_vafile(client, feed, ca, pki, tmp_path):
    good = ca.issue("good one")
    held = ca.issue("held one")
    unknown = ca.issue("never registered")
    await feed.certificate(ca, good.serial)
    await feed.certificate(ca, held.serial, status="suspended")
    await registered(client.app, ca, held.serial, status="suspended")
    await registered(client.app, ca, good.serial)
    files = {}
    for name, issued in {"ca": ca.authority, "good": good, "held": held, "unknown": unknown}.items():
        files[name] = issued.write(tmp_path, name)[0]
    url = str(client.make_url("/"))

    for digest in ([], ["-sha256"]):
        out = await openssl_ocsp(*digest, "-issuer", files["ca"], "-cert", files["good"], "-cert", files["held"],
                                  "-cert", files["unknown"], "-url", url, "-VAfile", pki.responder_cert)
        assert "Response verify OK" in out, out
        assert f"{files['good']}: good" in out
        assert f"{files['held']}: revoked" in out and "Reason: certificateHold" in out
        assert f"{files['unknown']}: unknown" in out
        assert "WARNING: no nonce in response" not in out  # the nonce was echoed


async def test_openssl_reads_a_get_answer(client, feed, ca, pki, tmp_path):
    leaf = ca.issue("get one")
    await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    response = await client.get("/" + base64.b64encode(request_der(ca, leaf)).decode())
    (tmp_path / "resp.der").write_bytes(await response.read())
    ca_pem, leaf_pem = ca.authority.write(tmp_path, "ca")[0], leaf.write(tmp_path, "leaf")[0]
    out = await openssl_ocsp("-respin", tmp_path / "resp.der", "-issuer", ca_pem, "-cert", leaf_pem,
                              "-VAfile", pki.responder_cert)
    assert "Response verify OK" in out and ": good" in out, out


async def _validate(leaf: Issued, ca: Issuer):
    """pyhanko-certvalidator, trusting only the CA, fetching OCSP from the leaf's AIA."""
    context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(ca.authority.der)],
                                allow_fetching=True, revocation_mode="hard-fail")
    validator = CertificateValidator(asn1_x509.Certificate.load(leaf.der), validation_context=context)
    return await validator.async_validate_usage(set())


async def test_delegated_signer_lets_validators_trust_only_the_ca(client, feed, ca, auth_for, tmp_path):
    national = auth_for(cas="CNAS", username="admin")
    responder = ca.delegate("Clients Test CA OCSP Responder")
    leaf = ca.issue("provider", ocsp_url=str(client.make_url("/")))
    certificate_id = await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    url = f"/v1/issuers/{ca.issuer_id}/signer"
    assert (await client.get(url, headers=national)).status == 404

    put = await client.put(url, json={"certificate_pem": responder.pem, "private_key_pem": responder.key_pem},
                           headers=national)
    assert put.status == 200, await put.text()
    info = await put.json()
    assert "private_key_pem" not in info and info["serial"] == str(responder.serial)
    assert (await (await client.get(url, headers=auth_for(cas="B"))).json())["sha256_fingerprint"] == \
        info["sha256_fingerprint"]
    await _eventually_signed_by(client, ca, leaf, responder.cert)
    # Its life is a metric, under the authority's name (what an operator reads in the alert).
    lifetime = {"issuer": ca.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, "signer": "delegated"}
    assert METRICS.get_sample_value("siui_ocsp_signer_not_after_seconds", lifetime) == \
        responder.cert.not_valid_after_utc.timestamp()

    # The key is stored encrypted: neither its PEM nor its DER is in the row.
    row = await client.app[POOL].fetchrow("select key_ciphertext from signers where issuer_id = $1",
                                          uuid.UUID(ca.issuer_id))
    key_der = responder.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    assert key_der not in row["key_ciphertext"] and len(row["key_ciphertext"]) >= len(key_der)

    # pyhanko-certvalidator and openssl, with nothing but the CA as trust anchor.
    path = await _validate(leaf, ca)
    assert path.leaf.serial_number == leaf.serial
    ca_pem, leaf_pem = ca.authority.write(tmp_path, "ca")[0], leaf.write(tmp_path, "leaf")[0]
    out = await openssl_ocsp("-issuer", ca_pem, "-cert", leaf_pem, "-url", str(client.make_url("/")),
                              "-CAfile", ca_pem)
    assert "Response verify OK" in out and ": good" in out, out

    await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
    await registered(client.app, ca, leaf.serial, status="suspended")
    with pytest.raises(RevokedError):
        await _validate(leaf, ca)

    assert (await client.delete(url, headers=national)).status == 204
    await _eventually_signed_by(client, ca, leaf, None)
    assert math.isnan(METRICS.get_sample_value("siui_ocsp_signer_not_after_seconds", lifetime))


async def _eventually_signed_by(client, ca, leaf, signer: x509.Certificate | None):
    async def signed():
        issuer = client.app[REGISTRY].issuer(ca.issuer_id)
        if (issuer.signer is None) != (signer is None):
            return False
        answer = await ask(client, request_der(ca, leaf))
        expected = [signer] if signer else [x509.load_pem_x509_certificate(await (await client.get("/v1/responder.pem")).read())]
        return answer.certificates == expected

    await eventually(signed, what="answers signed by the expected signer")


async def test_signer_checks(client, feed, ca, auth_for):
    national = auth_for(cas="CNAS", username="admin")
    url = f"/v1/issuers/{ca.issuer_id}/signer"
    responder = ca.delegate("responder")
    plain = ca.issue("no ocsp signing")
    foreign = Issuer.new("Someone Else").delegate("foreign responder")
    await registered(client.app, ca)
    body = {"certificate_pem": responder.pem, "private_key_pem": responder.key_pem}

    county = await client.put(url, json=body, headers=auth_for(cas="B"))
    assert county.status == 403
    assert (await client.put(url, json=body)).status == 401
    assert (await client.put(f"/v1/issuers/{uuid.uuid4()}/signer", json=body, headers=national)).status == 404
    cases = {
        "certificate_pem": [{**body, "certificate_pem": foreign.pem, "private_key_pem": foreign.key_pem},
                            {**body, "certificate_pem": plain.pem, "private_key_pem": plain.key_pem},
                            {**body, "certificate_pem": "not a certificate"}],
        "private_key_pem": [{**body, "private_key_pem": private_key_pem(new_key())},
                            {**body, "private_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}],
    }
    for field, bodies in cases.items():
        for bad in bodies:
            response = await client.put(url, json=bad, headers=national)
            assert response.status == 422, await response.text()
            assert response.content_type == "application/problem+json"
            assert field in (await response.json())["errors"]
    unknown_field = await client.put(url, json={**body, "extra": 1}, headers=national)
    assert unknown_field.status == 422 and "extra" in (await unknown_field.json())["errors"]
    unreadable = await client.put(url, data=b"{", headers={**national, "Content-Type": "application/json"})
    assert unreadable.status == 400


async def test_suspension_shows_within_a_second(client, feed, ca):
    """From publishing CertificateSuspended/Reinstated on the real exchange to the answer
    changing, over 50 changes: p50 and p99 are printed, p99 must stay under one second."""
    leaf = ca.issue("timed provider")
    certificate_id = await feed.certificate(ca, leaf.serial)
    await registered(client.app, ca, leaf.serial)
    request = request_der(ca, leaf)
    delays = []
    for run in range(50):
        suspend = run % 2 == 0
        expected = ocsp.OCSPCertStatus.REVOKED if suspend else ocsp.OCSPCertStatus.GOOD
        started = time.perf_counter()
        if suspend:
            await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
        else:
            await feed.reinstate(ca, leaf.serial, certificate_id)
        while (await ask(client, request)).certificate_status != expected:
            assert time.perf_counter() - started < 5, "the change never showed"
            await asyncio.sleep(0.002)
        delays.append(time.perf_counter() - started)
    delays.sort()
    p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
    print(f"\nsuspension delay over {len(delays)} changes: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
          f"max {delays[-1] * 1000:.1f} ms")
    assert p99 < 1.0
