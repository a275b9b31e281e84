"""The responder key in an HSM: a real SoftHSM2 token (the ``softhsm`` fixture, made by
deploy.hsm), the ocsp app signing through PKCS#11 on both edges, answers checked by
``openssl ocsp -VAfile``; the key never leaves the token; the token going away is
answered tryLater and counted, and signing resumes by itself when it is back."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from prometheus_client import REGISTRY as METRICS

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder import RESPONDER
from tests.support.ocsp_harness import Issuer, ask, registered, request_der, serve
from tests.support.openssl_ca import openssl_ocsp
from tests.support.wait import eventually


def hsm_config(common_config, softhsm, label: str, **kw) -> Config:
    settings = softhsm.hsm.settings(label)
    return Config(common=common_config, port=0, tls_port=0, workers=1,
                  pkcs11_module=Path(settings["SIUI_OCSP_PKCS11_MODULE"]),
                  pkcs11_token=settings["SIUI_OCSP_PKCS11_TOKEN"],
                  pkcs11_pin_file=Path(settings["SIUI_OCSP_PKCS11_PIN_FILE"]),
                  pkcs11_key_label=label, responder_cert=softhsm.certificates[label], **kw)



@pytest.mark.parametrize("label", ["responder", "responder-rsa"])
async def test_answers_signed_in_the_hsm_verify_with_openssl(common_config, softhsm, feed, edge, label, tmp_path):
    ca = Issuer.new(f"HSM Test CA {label}")
    leaf = ca.issue("hsm provider")
    await feed.issuer(ca)
    await feed.certificate(ca, leaf.serial)
    async with serve(edge, create_app(hsm_config(common_config, softhsm, label))) as client:
        await registered(client.app, ca, leaf.serial)
        identity = client.app[RESPONDER].identity
        assert identity.executor is not None  # signed on the token's thread, off the loop
        ca_path, leaf_path = ca.authority.write(tmp_path, "ca")[0], leaf.write(tmp_path, "leaf")[0]
        # openssl sends a nonce: each answer is signed live by the token.
        for _ in range(3):
            out = await openssl_ocsp("-issuer", ca_path, "-cert", leaf_path, "-url", str(client.make_url("/")),
                                     "-VAfile", softhsm.certificates[label])
            assert "Response verify OK" in out and f"{leaf_path}: good" in out, out
        # The responder certificate served is the token key's.
        served = await (await client.get("/v1/responder.pem")).read()
        assert served == softhsm.certificates[label].read_bytes()
        assert (await client.get("/v1/responder-next.pem")).status == 404


def test_the_key_stays_in_the_token(softhsm):
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    hsm = softhsm.hsm
    token = pkcs11.lib(str(hsm.module)).get_token(token_label=hsm.token_label)
    with token.open() as session:  # a public session: private objects are not even visible
        assert list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})) == []
    for label in ("responder", "responder-rsa", "next"):
        with token.open(user_pin=hsm.pin_file.read_text().strip()) as session:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
            assert key[Attribute.NEVER_EXTRACTABLE]
            with pytest.raises(pkcs11.exceptions.PKCS11Error):
                key[Attribute.VALUE]


def _hsm_errors() -> float:
    return METRICS.get_sample_value("siui_ocsp_hsm_errors_total") or 0.0


async def test_the_token_away_is_try_later_and_signing_resumes(common_config, softhsm, feed, tmp_path):
    ca = Issuer.new("HSM Away CA")
    leaf = ca.issue("hsm provider")
    await feed.issuer(ca)
    await feed.certificate(ca, leaf.serial)
    tokens = softhsm.hsm.tokens
    away = tokens.with_name("tokens-away")
    async with serve("front", create_app(hsm_config(common_config, softhsm, "responder"))) as client:
        await registered(client.app, ca, leaf.serial)

        def fresh() -> bytes:  # a nonce each time: nothing cached, the token signs every one
            return request_der(ca, leaf, nonce=os.urandom(16))

        assert (await ask(client, fresh())).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        plain = request_der(ca, leaf)  # no nonce: signed once, then answered from the cache
        cached = await ask(client, plain)
        errors_before = _hsm_errors()
        # The device goes away (SoftHSM2's token files gone, as a network HSM unreachable).
        os.rename(tokens, away)
        tokens.mkdir(mode=0o700)
        try:
            for _ in range(3):
                answer = await ask(client, fresh())
                assert answer.response_status == ocsp.OCSPResponseStatus.TRY_LATER
            assert _hsm_errors() >= errors_before + 3
            # What was signed before is still served meanwhile.
            assert (await ask(client, plain)).tbs_response_bytes == cached.tbs_response_bytes
        finally:
            tokens.rmdir()
            os.rename(away, tokens)

        async def signing_again() -> bool:
            return (await ask(client, fresh())).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL

        await eventually(signing_again, timeout=10, what="signing again once the token is back")
        answer = await ask(client, fresh())
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
        signer = x509.load_pem_x509_certificate(softhsm.certificates["responder"].read_bytes())
        signer.public_key().verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
