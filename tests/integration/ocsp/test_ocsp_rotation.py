"""Rotating the responder key without an outage, with ``python -m services.ocsp`` as deployed
(two workers): the current signer is a key file whose certificate ends soon, the next is
a key in the SoftHSM2 token; the switch is set a few seconds ahead. Before it the next
certificate is downloadable and answers are the current key's, none valid past its
notAfter; from it on every worker signs with the HSM key, which ``openssl ocsp -VAfile
<next.pem>`` accepts; the certificate endpoints and the lifetime metric follow; and a
next signer that does not fit stops the start with the rule it breaks."""
from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timedelta, timezone

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from asn1crypto import x509 as asn1_x509
from tests.support import infra
from tests.support.ocsp_harness import Issuer, request_der
from tests.support.ocsp_process import ask_anew, running_ocsp
from tests.support.openssl_ca import openssl_ocsp
from tests.support.pki import Issued, certificate
from tests.support.wait import eventually

SWITCH_AHEAD = timedelta(seconds=12)  # the two workers start in 2-4 s on the development machine


def _current_signer(pki, tmp_path, *, lifetime: timedelta) -> tuple[Issued, dict[str, str]]:
    """A responder certificate of the dev root for a key file, ending after ``lifetime``."""
    root = Issued.load(pki.root_ca_cert, pki.root_ca_key)
    now = datetime.now(timezone.utc)
    signer = certificate("SIUI Access OCSP Responder (ending)", now=now, issuer=root,
                         not_after=now + lifetime, eku=(ExtendedKeyUsageOID.OCSP_SIGNING,), ocsp_nocheck=True)
    cert_path, key_path = signer.write(tmp_path, "current")
    return signer, {"SIUI_OCSP_RESPONDER_CERT": str(cert_path), "SIUI_OCSP_RESPONDER_KEY": str(key_path)}


def _next_in_hsm(softhsm, switch_at: datetime) -> dict[str, str]:
    settings = softhsm.hsm.settings("next")
    settings.pop("SIUI_OCSP_PKCS11_KEY_LABEL")  # the current key is a file; only the next is in the token
    return {**settings, "SIUI_OCSP_PKCS11_NEXT_KEY_LABEL": "next",
            "SIUI_OCSP_RESPONDER_NEXT_CERT": str(softhsm.certificates["next"]),
            "SIUI_OCSP_RESPONDER_SWITCH_AT": switch_at.isoformat()}



async def test_the_next_signer_takes_over_at_the_switch_in_every_worker(common_config, pki, softhsm, feed, tmp_path):
    ca = Issuer.new("Rotation Test CA")
    leaf = ca.issue("rotation provider")
    old, env = _current_signer(pki, tmp_path, lifetime=timedelta(minutes=40))  # < SIUI_OCSP_VALIDITY (1 h)
    switch_at = (datetime.now(timezone.utc) + SWITCH_AHEAD).replace(microsecond=0)
    env.update(_next_in_hsm(softhsm, switch_at))
    next_pem = softhsm.certificates["next"].read_bytes()
    new_cert = x509.load_pem_x509_certificate(next_pem)
    old_hash, new_key_hash = _key_hash(old.cert), _key_hash(new_cert)
    old_not_after = old.cert.not_valid_after_utc

    async with running_ocsp(common_config, tmp_path / "ocsp.log", env=env) as service:
        await feed.issuer(ca)
        await feed.certificate(ca, leaf.serial)
        cached = request_der(ca, leaf)
        async with aiohttp.ClientSession() as session:
            async def answered() -> ocsp.OCSPResponse | None:
                assert service.process.returncode is None, service.log_tail()
                try:
                    answer = await ask_anew(session, service.url, cached)
                except aiohttp.ClientError:
                    return None
                return answer if answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL else None

            first = await eventually(answered, timeout=30, interval=0.1, what="the service answering")
            assert datetime.now(timezone.utc) < switch_at, "the service took longer to start than SWITCH_AHEAD"

            # Before the switch: the next certificate is published; answers are the current key's.
            async with session.get(service.url + "v1/responder-next.pem") as response:
                assert response.status == 200 and await response.read() == next_pem
            next_file = tmp_path / "next.pem"
            next_file.write_bytes(next_pem)
            async with session.get(service.url + "v1/responder.pem") as response:
                assert await response.read() == old.pem.encode()
            assert first.responder_key_hash == old_hash
            assert first.next_update_utc == old_not_after  # clamped: not thisUpdate + 1 hour

            # Poll, on new connections (both workers), until the signer changes.
            seen_old: list[ocsp.OCSPResponse] = []

            async def switched() -> bool:
                answer = await answered()
                if answer is None:
                    return False
                if answer.responder_key_hash == old_hash:
                    seen_old.append(answer)
                    return False
                return answer.responder_key_hash == new_key_hash

            await eventually(switched, timeout=SWITCH_AHEAD.total_seconds() + 20, interval=0.1,
                             what="answers signed by the next key")
            assert datetime.now(timezone.utc) >= switch_at
            for answer in [first, *seen_old]:  # the old key: never after the switch, never past its notAfter
                assert answer.produced_at_utc < switch_at and answer.next_update_utc <= old_not_after

            # From now on every worker signs with the HSM key, cached or live.
            for _ in range(12):
                answer = await ask_anew(session, service.url, cached)
                assert answer.responder_key_hash == new_key_hash and answer.produced_at_utc >= switch_at
            # The presigner re-signed at the switch: both workers serve one answer of the new key.
            async def one_answer() -> bool:
                answers = [await ask_anew(session, service.url, cached) for _ in range(8)]
                return (len({a.public_bytes(serialization.Encoding.DER) for a in answers}) == 1
                        and answers[0].responder_key_hash == new_key_hash)

            await eventually(one_answer, timeout=10, interval=0.1,
                             what="one pre-signed answer of the next key in every worker")
            ca_path, leaf_path = ca.authority.write(tmp_path, "ca")[0], leaf.write(tmp_path, "leaf")[0]
            for _ in range(4):  # a nonce each: signed live in the token by whichever worker
                out = await openssl_ocsp("-issuer", ca_path, "-cert", leaf_path, "-url", service.url,
                                          "-VAfile", next_file)
                assert "Response verify OK" in out and f"{leaf_path}: good" in out, out
            async with session.get(service.url + "v1/responder.pem") as response:
                assert await response.read() == next_pem
            async with session.get(service.url + "v1/responder-next.pem") as response:
                assert response.status == 404 and response.content_type == "application/problem+json"

            # The lifetime metric: the current signer is the new one, no next pending.
            headers = {**infra.metrics_headers(common_config.data_dir), "Connection": "close"}

            async def metric_follows() -> bool:
                async with session.get(service.url + "metrics", headers=headers) as response:
                    text = await response.text()
                values = dict(re.findall(r'siui_ocsp_signer_not_after_seconds\{issuer="default",signer="(\w+)"\} (\S+)',
                                         text))
                return (float(values.get("current", 0)) == new_cert.not_valid_after_utc.timestamp()
                        and values.get("next") == "NaN")

            await eventually(metric_follows, timeout=10, what="siui_ocsp_signer_not_after_seconds following")
        assert await service.stop() == 0


def _key_hash(cert: x509.Certificate) -> bytes:
    """The responderID byKey a signer's answers carry."""
    spki = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))["tbs_certificate"][
        "subject_public_key_info"]
    return hashlib.sha1(spki["public_key"].contents[1:]).digest()


async def test_a_next_signer_that_does_not_fit_stops_the_start(common_config, pki, softhsm, tmp_path):
    # The switch after the current certificate's notAfter: a time with no valid signer.
    old, env = _current_signer(pki, tmp_path, lifetime=timedelta(days=2))
    env.update(_next_in_hsm(softhsm, datetime.now(timezone.utc) + timedelta(days=3)))
    async with running_ocsp(common_config, tmp_path / "ocsp.log", env=env) as service:
        code = await asyncio.wait_for(service.process.wait(), 60)
        log = service.log_tail()
        assert code != 0
        assert "is not before the current responder certificate's notAfter" in log, log
        assert "Traceback" not in log
