"""The seed's flow, end to end, against the running stack with real clients:
admin logs in → provider in house B → activation key (KeyIssued through the outbox and
RabbitMQ) → external user 12433636_CAS-B → certificate registered → `openssl ocsp` says
good → suspended: revoked (certificateHold) within a second → reinstated: good."""
from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
CUI = "12433636"
USER = f"{CUI}_CAS-B"


def openssl_ocsp(stack, pki, responder_pem, *extra: str) -> str:
    """Ask the responder with the real OpenSSL client; returns its combined output."""
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(pki.demo_provider_cert),
         "-url", stack.url("ocsp", "/"), "-VAfile", str(responder_pem), *extra],
        capture_output=True, text=True, timeout=15)
    return result.stdout + result.stderr


async def test_key_to_ocsp_answer(stack, pki, http, admin_headers, tmp_path):
    # A provider in house B, as the county clerk fills in the "Persoana juridica" form.
    async with http.post(stack.url("keygen", "/v1/providers"), headers=admin_headers, json={
        "cas": "B", "cui": CUI, "name": "SC DEMO MEDICAL SRL", "trade_register_no": "J40/10/3456",
        "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"},
    }) as r:
        assert r.status == 201, await r.text()
        provider_id = (await r.json())["id"]

    # "Generare parola": the key, and KeyIssued on its way to the users service.
    async with http.post(stack.url("keygen", f"/v1/providers/{provider_id}/activation-key"),
                         headers=admin_headers, json={"reset": False}) as r:
        assert r.status == 201, await r.text()
        issued = await r.json()
    assert issued["external_user"] == USER

    async def user_exists():
        async with http.get(stack.url("users", "/v1/users"), headers=admin_headers,
                            params={"type": "external", "q": CUI}) as r:
            body = await r.json()
            return body["total"] == 1 and body["items"][0]["username"] == USER and body

    listing = await eventually(user_exists, what="external user created from KeyIssued")
    assert listing["items"][0]["schema"] == "SIUIB" and listing["items"][0]["org_unit"] == "CAS-B"

    # The issuing authority (national), then the provider's certificate (county).
    async with http.post(stack.url("certs", "/v1/issuers"), headers=admin_headers,
                         json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status in (201, 409), await r.text()

    async def registered():
        async with http.post(stack.url("certs", "/v1/certificates"), headers=admin_headers,
                             json={"username": USER, "certificate_pem": pki.demo_provider_cert.read_text()}) as r:
            if r.status == 422:  # certs has not yet heard of the external user
                return None
            assert r.status == 201, await r.text()
            return await r.json()

    certificate = await eventually(registered, what="certificate registered")
    assert certificate["suspended"] is False and certificate["username"] == USER

    responder_pem = tmp_path / "responder.pem"
    async with http.get(stack.url("ocsp", "/v1/responder.pem")) as r:
        assert r.status == 200
        responder_pem.write_bytes(await r.read())

    async def status_is(expected: str):
        out = await asyncio.to_thread(openssl_ocsp, stack, pki, responder_pem)
        assert "Response verify OK" in out, out
        return f"demo-provider.pem: {expected}" in out and out

    await eventually(lambda: status_is("good"), what="OCSP good")

    # Suspend ("Suspendat"): within one second OCSP says revoked, certificateHold.
    async with http.patch(stack.url("certs", f"/v1/certificates/{certificate['id']}"),
                          headers=admin_headers, json={"suspended": True}) as r:
        assert r.status == 200, await r.text()
        suspended_at = time.monotonic()
        assert (await r.json())["suspended"] is True
    out = await eventually(lambda: status_is("revoked"), timeout=1.0, interval=0.05,
                           what="OCSP revoked within one second")
    assert "Reason: certificateHold" in out

    async with http.patch(stack.url("certs", f"/v1/certificates/{certificate['id']}"),
                          headers=admin_headers, json={"suspended": False}) as r:
        assert r.status == 200, await r.text()
    await eventually(lambda: status_is("good"), timeout=1.0, what="OCSP good again")
    assert time.monotonic() - suspended_at < 30
