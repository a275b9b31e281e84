"""How long after the certs API answers a suspension (or reinstatement) does the OCSP
responder answer the new status? ``python -m bench.suspension_delay``

The whole stack runs as ``make up`` runs it (fresh database, isolated exchange, free
ports on 127.0.0.1); one certificate is suspended and reinstated ROUNDS times, and after
each API answer the responder is polled over HTTP until its answer changes. The path
measured is the real one: certs commits → outbox relay → RabbitMQ → every ocsp
process's own queue → its memory (and the pre-signed answer: the presigner's outbox →
RabbitMQ → every process's store). Prints p50/p99/max of both delays.
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from deploy.devpki import ensure_dev_pki
from tests.support import infra
from tests.support.stack import start_stack

ROUNDS = 50
CUI = "12433636"
USER = f"{CUI}_CAS-B"


async def status(http: aiohttp.ClientSession, url: str, request: bytes) -> ocsp.OCSPCertStatus:
    async with http.post(url, data=request, headers={"Content-Type": "application/ocsp-request"}) as r:
        return ocsp.load_der_ocsp_response(await r.read()).certificate_status


async def delay_until(http, url, request, expected, started: float) -> float:
    # A new connection per poll, so that the kernel spreads them over both workers: the
    # change counts only once the worker asked has it too.
    while await status(http, url, request) != expected:
        if time.perf_counter() - started > 5:
            raise RuntimeError(f"no {expected.name} within 5 s")
    return (time.perf_counter() - started) * 1000


async def measure(stack, pki) -> tuple[list[float], list[float]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(stack.url("users", "/v1/sessions"),
                             json={"username": "admin", "password": stack.admin_password}) as r:
            auth = {"Authorization": f"Bearer {(await r.json())['token']}"}
        async with http.post(stack.url("keygen", "/v1/providers"), headers=auth,
                             json={"cas": "B", "cui": CUI, "name": "SC DEMO MEDICAL SRL"}) as r:
            provider = await r.json()
        async with http.post(stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key"),
                             headers=auth, json={"reset": False}) as r:
            assert r.status == 201, await r.text()
        async with http.post(stack.url("certs", "/v1/issuers"), headers=auth,
                             json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
            assert r.status == 201, await r.text()
        certificate = None
        while certificate is None:  # until certs has heard of the external user
            async with http.post(stack.url("certs", "/v1/certificates"), headers=auth,
                                 json={"username": USER, "certificate_pem": pki.demo_provider_cert.read_text()}) as r:
                certificate = await r.json() if r.status == 201 else None
            await asyncio.sleep(0.05)
        issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
        cert = x509.load_pem_x509_certificate(pki.demo_provider_cert.read_bytes())
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build() \
            .public_bytes(serialization.Encoding.DER)
        url = stack.url("ocsp", "/")
        polls = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        patch_url = stack.url("certs", f"/v1/certificates/{certificate['id']}")
        to_revoked, to_good = [], []
        async with polls:
            await delay_until(polls, url, request, ocsp.OCSPCertStatus.GOOD, time.perf_counter())
            for _ in range(ROUNDS):
                for suspended, expected, sink in ((True, ocsp.OCSPCertStatus.REVOKED, to_revoked),
                                                  (False, ocsp.OCSPCertStatus.GOOD, to_good)):
                    async with http.patch(patch_url, headers=auth, json={"suspended": suspended}) as r:
                        assert r.status == 200, await r.text()
                    sink.append(await delay_until(polls, url, request, expected, time.perf_counter()))
        return to_revoked, to_good


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"{name:<22} n={len(values):<4} p50 {statistics.median(values):7.1f} ms   "
            f"p99 {p99:7.1f} ms   max {ordered[-1]:7.1f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        pki = ensure_dev_pki(Path(work))
        database_url = asyncio.run(infra.create_database("siui_bench_delay"))
        exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
        stack = start_stack(pki.data_dir, database_url, exchange, name="bench-delay")
        try:
            to_revoked, to_good = asyncio.run(measure(stack, pki))
        finally:
            stack.stop()
            asyncio.run(infra.drop_database(database_url))
            asyncio.run(infra.delete_exchange(exchange))
    print("Delay from the certs API's answer to the OCSP answer changing (2 ocsp workers)")
    print(summary("suspend -> revoked", to_revoked))
    print(summary("reinstate -> good", to_good))


if __name__ == "__main__":
    main()
