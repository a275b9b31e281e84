"""Panou operational's numbers against the running stack: the admin logs in through the
console's form, a house-B certificate is registered and asked about, then suspended
through the certs API; /panou/date shows the registration, the suspension and the OCSP
answers (good, then revoked) of both ocsp workers."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.support.identities import new_cui
from tests.support.pki import client, demo_issuer
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
ANSWERS = 12


async def _json(response: aiohttp.ClientResponse, *statuses: int) -> dict:
    assert response.status in statuses, await response.text()
    return await response.json()


async def _console_login(stack) -> aiohttp.ClientSession:
    """A session logged in as admin through the login form (CSRF token and all)."""
    # unsafe=True: the console is on 127.0.0.1, and aiohttp keeps no cookies of an IP otherwise.
    console = aiohttp.ClientSession(base_url=stack.url("console"), cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with console.get("/") as page:
        csrf = re.search(r'name="csrf" value="([^"]*)"', await page.text()).group(1)
    async with console.post("/", data={"csrf": csrf, "next": "", "username": "admin",
                                       "password": stack.admin_password}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    return console


async def _dashboard(console: aiohttp.ClientSession) -> dict:
    async with console.get("/panou/date") as r:
        return await _json(r, 200)


async def _ask_ocsp(http: aiohttp.ClientSession, stack, request_der: bytes) -> ocsp.OCSPResponse:
    # A new connection each time: the kernel spreads them over the ocsp workers.
    async with http.post(stack.url("ocsp", "/"), data=request_der, headers={
            "Content-Type": "application/ocsp-request", "Connection": "close"}) as r:
        assert r.status == 200
        return ocsp.load_der_ocsp_response(await r.read())


async def test_a_suspension_shows_on_the_dashboard(stack, pki, http, admin_headers):
    console = await _console_login(stack)
    try:
        await _run(stack, pki, http, admin_headers, console)
    finally:
        await console.close()


async def _run(stack, pki, http, admin_headers, console):
    before = await _dashboard(console)
    assert before["suspension_source"] == "siui_certs_state_changes_total" and not before["unreachable"]

    # A house-B provider, its external user, and a certificate registered to it.
    cui = new_cui()
    async with http.post(stack.url("keygen", "/v1/providers"), headers=admin_headers,
                         json={"cas": "B", "cui": cui, "name": "CABINET PANOU SRL"}) as r:
        provider = await _json(r, 201)
    async with http.post(stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key"),
                         headers=admin_headers, json={"reset": False}) as r:
        external = (await _json(r, 201))["external_user"]
    async with http.post(stack.url("certs", "/v1/issuers"), headers=admin_headers,
                         json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status in (201, 409), await r.text()
    issuer = demo_issuer(pki)
    provider_certificate = client(issuer, cui, now=datetime.now(timezone.utc))
    pem = provider_certificate.pem

    async def register():  # the external user reaches certs by event
        async with http.post(stack.url("certs", "/v1/certificates"), headers=admin_headers,
                             json={"username": external, "certificate_pem": pem}) as r:
            return await r.json() if r.status == 201 else None

    registered = await eventually(register, what="certificate registered")
    request_der = (ocsp.OCSPRequestBuilder().add_certificate(provider_certificate.cert, issuer.cert, hashes.SHA1())
                   .build().public_bytes(serialization.Encoding.DER))

    async def answered(status: ocsp.OCSPCertStatus):
        async def probe():
            answer = await _ask_ocsp(http, stack, request_der)
            return answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL and answer.certificate_status == status
        # Several in a row: every worker has the news, not just the one asked first.
        return all([await probe() for _ in range(6)])

    await eventually(lambda: answered(ocsp.OCSPCertStatus.GOOD), timeout=15, what="ocsp answers good")
    good_before = (await _dashboard_fresh(console))["ocsp"]["by_status"].get("good", 0)
    for _ in range(ANSWERS):
        assert (await _ask_ocsp(http, stack, request_der)).certificate_status == ocsp.OCSPCertStatus.GOOD

    async def counted_good():
        sample = await _dashboard(console)
        # Exactly: a scrape that saw one worker only would be short by the other's share.
        return sample["ocsp"]["by_status"].get("good", 0) == good_before + ANSWERS and sample

    sample = await eventually(counted_good, what="the good answers on the dashboard")
    assert sample["ocsp"]["by_house"]["B"] >= before["ocsp"]["by_house"].get("B", 0) + ANSWERS
    assert sample["state_changes"]["registered"] == before["state_changes"].get("registered", 0) + 1

    # The Suspendat box, through the certs API.
    async with http.patch(stack.url("certs", f"/v1/certificates/{registered['id']}"), headers=admin_headers,
                          json={"suspended": True, "reason": "panou e2e"}) as r:
        assert (await _json(r, 200))["suspended"] is True

    async def counted_suspension():
        sample = await _dashboard(console)
        return sample["suspensions"] == before["suspensions"] + 1 and sample

    sample = await eventually(counted_suspension, what="the suspension on the dashboard")
    assert sample["state_changes"]["suspended"] == before["suspensions"] + 1

    # Its OCSP answers now say revoked, and the dashboard counts them as such.
    await eventually(lambda: answered(ocsp.OCSPCertStatus.REVOKED), timeout=15, what="ocsp answers revoked")
    revoked_before = before["ocsp"]["by_status"].get("revoked", 0)
    await eventually(lambda: _more_revoked(console, revoked_before + 6), what="revoked answers on the dashboard")


async def _dashboard_fresh(console: aiohttp.ClientSession) -> dict:
    """A sample taken after this moment (the console reuses one for a second)."""
    first = await _dashboard(console)

    async def newer():
        sample = await _dashboard(console)
        return sample["at"] > first["at"] and sample

    return await eventually(newer, timeout=5, what="a fresh dashboard sample")


async def _more_revoked(console, at_least: float) -> bool:
    return (await _dashboard(console))["ocsp"]["by_status"].get("revoked", 0) >= at_least
