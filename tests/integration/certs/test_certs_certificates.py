"""User certificates ("Certificate utilizatori") through the real certs app: uploads
made by openssl, the seed's form, refusals, and each house seeing only its own."""
from __future__ import annotations

import uuid
from datetime import timedelta

from services.certs.app import create_app
from shared.clock import utc_now
from tests.support.certs_api import add_external_user, problem_errors, register_issuer, register_upload, unique
from tests.support.clock import FrozenClock
from tests.support.identities import new_cui
from tests.support.openssl_ca import openssl_date, serial_20_octets


async def test_uploaded_rsa_and_ec_certificates_are_read_and_verified(certs, ossl, bus, db, auth_for):
    cn = unique("CERTSIGN QUALIFIED RSA CA ")
    rsa_ca = ossl.ca(f"/C=RO/O=CERTSIGN SA/CN={cn}/organizationIdentifier=VATRO-18288250", key="rsa")
    ec_ca = ossl.ca(f"/C=RO/O=Casa/CN={unique('EC CA ')}", key="ec")
    national = auth_for(cas="CNAS")
    rsa_issuer = await register_issuer(certs, rsa_ca, national)
    ec_issuer = await register_issuer(certs, ec_ca, national)
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui, name="SC DEMO MEDICAL SRL")
    operator = auth_for(cas="B")

    serial = serial_20_octets()
    ec_user = ossl.user(rsa_ca, f"/C=RO/O=SC DEMO MEDICAL SRL/CN={cui}", serial=serial, key="ec")
    rsa_user = ossl.user(ec_ca, f"/C=RO/O=SC DEMO MEDICAL SRL/CN={cui}", serial="4660", key="rsa")
    first = await register_upload(certs, username, ec_user, operator)
    assert first["serial"] == str(int(serial, 16)) and first["serial_hex"] == serial[2:]
    assert first["issuer"] == rsa_issuer["subject_dn"] and first["issuer_id"] == rsa_issuer["id"]
    assert first["subject"] == f"C=RO, O=SC DEMO MEDICAL SRL, CN={cui}"
    assert first["not_after"] == openssl_date(ec_user, "enddate").isoformat()
    assert first["not_before"] == openssl_date(ec_user, "startdate").isoformat()
    assert {k: first[k] for k in ("username", "provider_cui", "provider_name", "schema", "org_unit",
                                  "suspended", "last_used_at", "status", "cas")} == {
        "username": username, "provider_cui": cui, "provider_name": "SC DEMO MEDICAL SRL", "schema": "SIUIB",
        "org_unit": "CAS-B", "suspended": False, "last_used_at": None, "status": "active", "cas": "B"}

    # A renewal overlaps the old certificate: the same user holds both.
    second = await register_upload(certs, username, rsa_user, operator)
    assert second["serial"] == "4660" and second["issuer_id"] == ec_issuer["id"]

    response = await certs.get(f"/v1/certificates/{first['id']}", headers=operator)
    detail = await response.json()
    assert detail["certificate_pem"] == ec_user.pem
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [("registered", "operator.b")]
    event = await bus.one("certs.certificate_registered", certificate_id=first["id"])
    assert event.cas == "B"
    assert {k: event.data[k] for k in ("issuer_id", "serial", "username", "provider_cui", "status",
                                       "certificate_pem", "not_after")} == {
        "issuer_id": rsa_issuer["id"], "serial": str(int(serial, 16)), "username": username,
        "provider_cui": cui, "status": "active", "certificate_pem": ec_user.pem, "not_after": first["not_after"]}


async def test_seed_form_takes_decimal_or_hex_serial_and_issuer_by_id_or_dn(certs, ossl, bus, db, auth_for):
    cn = unique("SEED FORM CA ")
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/ST=ROMANIA/O=MINISTERUL SANATATII/CN={cn}"),
                                   auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator = auth_for(cas="B")

    async def register(**body):
        return await certs.post("/v1/certificates", json={"username": username, **body}, headers=operator)

    response = await register(serial="12", issuer_id=issuer["id"], provider=cui)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert (created["serial"], created["serial_hex"]) == ("12", "0C")
    assert created["subject"] is None and created["not_after"] is None
    assert response.headers["Location"] == f"/v1/certificates/{created['id']}"

    response = await register(serial="0x0d", issuer=f"cn={cn.lower()},  o=Ministerul Sanatatii, st=Romania, c=RO")
    assert response.status == 201, await response.text()
    assert (await response.json())["serial"] == "13"

    # 0x0C is serial 12 again: the same issuer and serial twice is a conflict.
    response = await register(serial="0x0C", issuer_id=issuer["id"])
    assert response.status == 409, await response.text()
    response = await register(serial=12, issuer_id=issuer["id"])
    assert response.status == 409


async def test_registration_refusals_name_what_is_wrong(certs, ossl, bus, db, auth_for):
    cn = unique("REFUSALS CA ")
    ca = ossl.ca(f"/C=RO/O=Casa/CN={cn}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator = auth_for(cas="B")

    async def refused(body, fields, status=422, headers=operator):
        response = await certs.post("/v1/certificates", json=body, headers=headers)
        text = await response.text()
        assert response.status == status, text
        assert response.content_type == "application/problem+json"
        assert set(problem_errors(text)) == set(fields), text
        return problem_errors(text)

    missing = str(uuid.uuid4())
    await refused({"username": f"{new_cui()}_CAS-B", "serial": "1", "issuer_id": issuer["id"]}, {"username"})
    await refused({"username": username, "serial": "1", "issuer_id": missing}, {"issuer_id"})
    await refused({"username": f"{new_cui()}_CAS-B", "serial": "1", "issuer_id": missing}, {"username", "issuer_id"})
    await refused({"username": username, "serial": "1", "issuer": "CN=NOBODY CA, C=RO"}, {"issuer"})
    errors = await refused({"username": "ion.popescu", "serial": "1", "issuer_id": issuer["id"]}, {"username"})
    assert "not an external user" in errors["username"]
    await refused({"username": username, "serial": "1", "issuer_id": issuer["id"], "provider": "999"}, {"provider"})
    for serial in ("12a", "-5", "0", "0x", "0x" + "F" * 41, "1.5"):
        await refused({"username": username, "serial": serial, "issuer_id": issuer["id"]}, {"serial"})
    await refused({"username": username, "issuer_id": issuer["id"]}, {"serial"})
    await refused({"username": username, "serial": "1"}, {"issuer_id"})
    await refused({"username": username, "serial": "1", "issuer_id": "x"}, {"issuer_id"})
    await refused({"username": username, "serial": "1", "issuer_id": issuer["id"], "colour": "red"}, {"colour"})
    user_cert = ossl.user(ca, f"/CN={cui}", serial="77")
    await refused({"username": username, "certificate_pem": user_cert.pem, "serial": "77"}, {"serial"})

    # Another house's user reads exactly like an unknown one to a county operator.
    other_house = await add_external_user(bus, db, cas="CJ")
    from_cj = await refused({"username": other_house, "serial": "1", "issuer_id": issuer["id"]}, {"username"},
                            headers=auth_for(cas="B"))
    unknown = await refused({"username": "1234_CAS-CJ", "serial": "1", "issuer_id": issuer["id"]}, {"username"},
                            headers=auth_for(cas="B"))
    assert from_cj["username"].replace(other_house, "X") == unknown["username"].replace("1234_CAS-CJ", "X")

    # Uploads: an unregistered issuer is named; a forged signature (same DN, other key) refused.
    stranger = ossl.ca(f"/C=RO/O=Elsewhere/CN={unique('UNREGISTERED CA ')}")
    errors = await refused({"username": username, "certificate_pem": ossl.user(stranger, "/CN=x", serial="5").pem},
                           {"certificate_pem"})
    assert "UNREGISTERED CA" in errors["certificate_pem"]
    impostor = ossl.ca(f"/C=RO/O=Casa/CN={cn}")
    errors = await refused({"username": username, "certificate_pem": ossl.user(impostor, "/CN=x", serial="6").pem},
                           {"certificate_pem"})
    assert "signature" in errors["certificate_pem"]
    await refused({"username": username, "certificate_pem": ca.pem}, {"certificate_pem"})
    await refused({"username": username, "certificate_pem": "garbage"}, {"certificate_pem"})

    response = await certs.post("/v1/certificates", json={"username": username, "serial": "1", "issuer_id": issuer["id"]},
                                headers=auth_for(cas="B", rights=("certificates:read",)))
    assert response.status == 403
    response = await certs.get("/v1/certificates", params={"username": username}, headers=operator)
    assert (await response.json())["total"] == 0


async def test_an_expired_certificate_is_refused(aiohttp_client, certs_config, ossl, bus, db, auth_for):
    later = await aiohttp_client(create_app(certs_config, clock=FrozenClock(utc_now() + timedelta(days=20))))
    ca = ossl.ca(f"/C=RO/CN={unique('EXPIRY CA ')}")
    await register_issuer(later, ca, auth_for(cas="CNAS"))
    username = await add_external_user(bus, db)
    response = await later.post("/v1/certificates", json={
        "username": username, "certificate_pem": ossl.user(ca, "/CN=x", serial="9", days=10).pem},
        headers=auth_for(cas="B"))
    assert response.status == 422 and "expired" in problem_errors(await response.text())["certificate_pem"]


async def test_each_house_sees_only_its_own(certs, ossl, bus, db, auth_for):
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/CN={unique('SCOPE CA ')}"), auth_for(cas="CNAS"))
    username = await add_external_user(bus, db, cas="B")
    # CNAS registers for any house; the certificate belongs to the user's house.
    response = await certs.post("/v1/certificates", json={"username": username, "serial": "0x01",
                                                          "issuer_id": issuer["id"]}, headers=auth_for(cas="CNAS"))
    assert response.status == 201
    created = await response.json()
    assert created["cas"] == "B"
    path = f"/v1/certificates/{created['id']}"

    cluj = auth_for(cas="CJ", username="operator.cj")
    assert (await certs.get(path, headers=cluj)).status == 404
    assert (await certs.patch(path, json={"suspended": True}, headers=cluj)).status == 404
    assert (await certs.post(path + "/revoke", json={"reason": "superseded"}, headers=cluj)).status == 404
    listing = await (await certs.get("/v1/certificates", params={"username": username, "cas": "B"},
                                     headers=cluj)).json()
    assert listing["total"] == 0 and listing["items"] == []
    listing = await (await certs.get("/v1/certificates", params={"username": username}, headers=auth_for(cas="B"))).json()
    assert [c["id"] for c in listing["items"]] == [created["id"]]
    national = auth_for(cas="CNAS")
    for cas, total in (("B", 1), ("CJ", 0)):
        listing = await (await certs.get("/v1/certificates", params={"username": username, "cas": cas},
                                         headers=national)).json()
        assert listing["total"] == total
    assert (await certs.get(path, headers=national)).status == 200
    assert (await certs.get("/v1/certificates/not-a-uuid", headers=national)).status == 404
