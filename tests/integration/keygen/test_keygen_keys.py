"""keygen, activation keys through the real app, PostgreSQL and RabbitMQ: "Generare parola"
and "Resetare parola", KeyIssued on the exchange (never the key), simultaneous clicks, and
the signed agreement as pdftotext, pyHanko and pdfsig see it."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import subprocess

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from services.keygen.app import create_app
from services.keygen.agreement import load_signer
from shared import license
from tests.support.keygen_api import issue, issued_key, make_provider, problem
from tests.support.pdfsig import assert_valid_and_trusted

RESET_MSG = "this provider already has a key: use Resetare parola"
GENERATE_MSG = "this provider has no key yet: use Generare parola"


def pepper(pki) -> bytes:
    return bytes.fromhex(pki.license_pepper.read_text().strip())


async def activate(client, serial: str, cas: str, address: str):
    return await client.post("/v1/activations", json={"license_serial": serial, "cas": cas},
                             headers={"X-Forwarded-For": address})


async def test_generate_then_reset_and_the_key_history(keygen, county):
    b = county("B", username="clerk.keys")
    provider = await make_provider(keygen, b, cas="B")
    path = f"/v1/providers/{provider['id']}"

    assert (await problem(await issue(keygen, b, provider["id"], reset=True), 409))["detail"] == GENERATE_MSG
    response = await issue(keygen, b, provider["id"])
    assert response.status == 201
    assert response.headers["Cache-Control"] == "no-store"
    first = await response.json()
    assert set(first) == {"license_serial", "key_id", "external_user", "issued_at"}
    assert license.is_well_formed(first["license_serial"])
    assert license.normalize(first["license_serial"]) == first["license_serial"]
    assert first["external_user"] == f"{provider['cui']}_CAS-B"

    assert (await problem(await issue(keygen, b, provider["id"]), 409))["detail"] == RESET_MSG
    second = await issued_key(keygen, b, provider["id"], reset=True)
    assert second["license_serial"] != first["license_serial"]
    assert second["key_id"] != first["key_id"]

    response = await keygen.get(path, headers=b)
    text = await response.text()
    detail = await response.json()
    assert detail["has_key"] is True and detail["key_id"] == second["key_id"]
    assert detail["key_issued_at"] == second["issued_at"]
    assert detail["external_user"] == first["external_user"]
    assert detail["keys"] == [
        {"key_id": first["key_id"], "reset": False, "issued_at": first["issued_at"],
         "issued_by": "clerk.keys", "replaced_at": second["issued_at"], "replaced_by": "clerk.keys",
         "status": "replaced"},
        {"key_id": second["key_id"], "reset": True, "issued_at": second["issued_at"],
         "issued_by": "clerk.keys", "replaced_at": None, "replaced_by": None, "status": "current"}]
    assert "digest" not in text and first["license_serial"] not in text
    listed = await (await keygen.get("/v1/providers", headers=b, params={"q": provider["cui"]})).json()
    assert listed["items"][0]["has_key"] is True and listed["items"][0]["key_id"] == second["key_id"]


async def test_bad_requests_for_a_key(keygen, national, county):
    provider = await make_provider(keygen, national, cas="B")
    path = f"/v1/providers/{provider['id']}/activation-key"
    for body, field in (({}, "reset"), ({"reset": "no"}, "reset"), ({"reset": False, "x": 1}, "x")):
        response = await keygen.post(path, headers=national, json=body)
        assert field in (await problem(response, 422))["errors"]
    no_right = county("B", rights=("providers:read", "providers:write"))
    await problem(await issue(keygen, no_right, provider["id"]), 403)


async def test_key_issued_reaches_the_exchange_without_the_key(keygen, national, tap, pki):
    provider = await make_provider(keygen, national, cas="CJ", code="CJ-77", name="Spitalul Municipal Turda")
    key = await issued_key(keygen, national, provider["id"])

    event = await tap.first(key_id=key["key_id"])
    assert event.type == "KeyIssued" and event.cas == "CJ"
    serial = key["license_serial"]
    expected_digest = hmac.new(pepper(pki), serial.encode(), hashlib.sha256).hexdigest()
    assert event.data == {
        "provider_id": provider["id"], "cui": provider["cui"], "provider_code": "CJ-77",
        "provider_name": "Spitalul Municipal Turda", "key_id": key["key_id"],
        "key_digest": expected_digest, "reset": False, "issued_at": key["issued_at"],
        "issued_by": "cnas.admin", "external_user": f"{provider['cui']}_CAS-CJ"}
    body = tap.raw(key_id=key["key_id"])
    for form in (serial, serial.replace("-", ""), serial.lower(), serial.replace("-", "").lower()):
        assert form.encode() not in body

    reset = await issued_key(keygen, national, provider["id"], reset=True)
    assert (await tap.first(key_id=reset["key_id"])).data["reset"] is True


async def test_a_reset_kills_the_old_key_at_once(keygen, national):
    provider = await make_provider(keygen, national, cas="BV")
    old = await issued_key(keygen, national, provider["id"])
    assert (await activate(keygen, old["license_serial"], "BV", "10.3.0.1")).status == 200
    new = await issued_key(keygen, national, provider["id"], reset=True)
    await problem(await activate(keygen, old["license_serial"], "BV", "10.3.0.2"), 403)
    response = await activate(keygen, new["license_serial"], "BV", "10.3.0.3")
    assert response.status == 200, await response.text()


async def test_simultaneous_generate_issues_exactly_one_key(keygen, national, tap):
    provider = await make_provider(keygen, national, cas="B")
    responses = await asyncio.gather(*(issue(keygen, national, provider["id"], pdf=n % 2 == 0)
                                       for n in range(6)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409], statuses
    detail = await (await keygen.get(f"/v1/providers/{provider['id']}", headers=national)).json()
    assert len(detail["keys"]) == 1
    # The outbox publishes in commit order: once a later key's event is in, a second
    # event of the simultaneous clicks would be in too.
    later = await issued_key(keygen, national, provider["id"], reset=True)
    await tap.first(key_id=later["key_id"])
    announced = [b for b in tap.bodies if provider["id"].encode() in b]
    assert len(announced) == 2 and later["key_id"].encode() in announced[-1]


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


async def test_the_agreement_pdf_carries_the_serial_and_a_valid_signature(keygen, national, pki, tmp_path):
    provider = await make_provider(keygen, national, cas="GJ", name="CMI Dr. Ștefănescu Ioana",
                                   trade_register_no="J18/245/2009")
    response = await issue(keygen, national, provider["id"], pdf=True)
    assert response.status == 201, await response.text()
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="generatePassword.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    serial = response.headers["X-License-Serial"]
    assert license.is_well_formed(serial)
    assert response.headers["X-External-User"] == f"{provider['cui']}_CAS-GJ"
    detail = await (await keygen.get(f"/v1/providers/{provider['id']}", headers=national)).json()
    assert detail["key_id"] == response.headers["X-Key-Id"]
    pdf = await response.read()
    path = tmp_path / "generatePassword.pdf"
    path.write_bytes(pdf)

    text = " ".join(_run("pdftotext", "-enc", "UTF-8", str(path), "-").split())
    for expected in ("ROMÂNIA", "CASA NAȚIONALĂ DE ASIGURĂRI DE SĂNĂTATE", "Casa de Asigurări de Sănătate Gorj",
                     "CONVENȚIE", "CMI Dr. Ștefănescu Ioana", f"codul unic de identificare {provider['cui']}",
                     "J18/245/2009", "Ion Țărănescu", provider["legal_representative"]["cnp"],
                     f"Serie de licență: {serial}", "Semnătura"):
        assert expected in text, expected

    [signature] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(pki.root_ca_cert))])
    status = await async_validate_pdf_signature(signature, context)
    assert status.bottom_line, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_FILE"

    out = assert_valid_and_trusted(path, pki.root_ca_cert, tmp_path)
    assert "Total document signed" in out, out


class BreakableSigner(SimpleSigner):
    """Signs until told to fail: the agreement cannot be made (a lost HSM, a bad disk)."""

    broken = False

    async def async_sign_raw(self, data, digest_algorithm, dry_run=False):
        if self.broken:
            raise RuntimeError("the signing device is unreachable")
        return await super().async_sign_raw(data, digest_algorithm, dry_run)


async def test_no_key_is_issued_when_the_agreement_cannot_be_made(keygen_config, clock, national, tap, pki):
    good = load_signer(pki.docsign_cert, pki.docsign_key)
    signer = BreakableSigner(signing_cert=good.signing_cert, signing_key=good.signing_key,
                             cert_registry=good.cert_registry)
    async with TestClient(TestServer(create_app(keygen_config, clock=clock, signer=signer))) as client:
        provider = await make_provider(client, national, cas="AB")
        old = await issued_key(client, national, provider["id"])
        signer.broken = True
        for reset in (True, True):
            await problem(await issue(client, national, provider["id"], reset=reset, pdf=True), 500)
        detail = await (await client.get(f"/v1/providers/{provider['id']}", headers=national)).json()
        assert [k["key_id"] for k in detail["keys"]] == [old["key_id"]]
        response = await activate(client, old["license_serial"], "AB", "10.4.0.1")
        assert response.status == 200, "the old key must still work"
        signer.broken = False
        new = await issue(client, national, provider["id"], reset=True, pdf=True)
        assert new.status == 201
    await tap.first(key_id=new.headers["X-Key-Id"])
    events = [b for b in tap.bodies if provider["id"].encode() in b]
    assert len(events) == 2, "only the two keys issued were announced"


async def test_a_provider_stored_with_bidi_or_invisible_characters_gets_no_agreement(keygen, national,
                                                                                     database_url):
    # Rows stored before the field rules refused these characters: written straight to
    # the table, as an old release or a manual fix could have left them.
    provider = await make_provider(keygen, national, cas="HD", name="SC ALFA SRL")
    keyed = await make_provider(keygen, national, cas="HD")
    old = await issued_key(keygen, national, keyed["id"])
    conn = await asyncpg.connect(database_url)
    try:
        for pid in (provider["id"], keyed["id"]):
            await conn.execute(
                """update keygen.providers set name = 'SC \u202eLRS AFLA', trade_register_no = 'J20/1\u200b/2001',
                   legal_representative_name = 'Ion\u2066 Pop' where id = $1""", pid)
    finally:
        await conn.close()
    for pid, reset in ((provider["id"], False), (keyed["id"], True)):
        for pdf in (True, False):
            body = await problem(await issue(keygen, national, pid, reset=reset, pdf=pdf), 422)
            assert "correct the provider" in body["detail"]
            assert set(body["errors"]) == {"name", "trade_register_no", "legal_representative.name"}
            assert "text-direction" in body["errors"]["name"] and "invisible" in body["errors"]["trade_register_no"]
    detail = await (await keygen.get(f"/v1/providers/{keyed['id']}", headers=national)).json()
    assert [k["key_id"] for k in detail["keys"]] == [old["key_id"]]  # nothing issued, nothing replaced

    # An edit of another field is refused too, naming what to correct ...
    path = f"/v1/providers/{provider['id']}"
    refused = await keygen.patch(path, headers=national, json={"locality": "Deva"})
    assert set((await problem(refused, 422))["errors"]) == {"name", "trade_register_no", "legal_representative.name"}
    # ... and once corrected, the agreement is made.
    fixed = await keygen.patch(path, headers=national, json={
        "name": "SC ALFA SRL", "trade_register_no": "J20/1/2001",
        "legal_representative": {"name": "Ion Pop", "cnp": provider["legal_representative"]["cnp"]}})
    assert fixed.status == 200, await fixed.text()
    response = await issue(keygen, national, provider["id"], pdf=True)
    assert response.status == 201 and response.content_type == "application/pdf"
