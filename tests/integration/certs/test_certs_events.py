"""What certs consumes (external users, batched last uses) and whether what it publishes
is enough for an OCSP responder to answer an openssl client, through the real bus."""
from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta

from asn1crypto import x509 as asn1_x509

from shared.events import CertificateUsed, ExternalUserCreated, ExternalUserDeleted
from shared.clock import utc_now
from tests.support.certs_api import add_external_user, register_issuer, register_upload, unique
from tests.support.identities import new_cui
from tests.support.openssl_ca import openssl_cert_id
from tests.support.wait import eventually


async def _certificate(certs, issuer, username, serial, headers):
    response = await certs.post("/v1/certificates", json={"username": username, "serial": serial,
                                                          "issuer_id": issuer["id"]}, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_a_batch_of_uses_moves_last_used_at_forward_only(certs, ossl, bus, db, auth_for):
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/CN={unique('USAGE CA ')}"), auth_for(cas="CNAS"))
    username = await add_external_user(bus, db)
    operator = auth_for(cas="B")
    a = await _certificate(certs, issuer, username, "1", operator)
    b = await _certificate(certs, issuer, username, "2", operator)
    t0 = utc_now().replace(microsecond=0)
    t1, t2, t3 = (t0 + timedelta(seconds=s) for s in (1, 2, 3))

    async def last_used(certificate):
        body = await (await certs.get(f"/v1/certificates/{certificate['id']}", headers=operator)).json()
        return body["last_used_at"]

    # One event for many connects; a malformed entry does not spoil the rest.
    await bus.publish(CertificateUsed(usages=[
        {"certificate_id": a["id"], "last_used_at": t1.isoformat()},
        {"certificate_id": a["id"], "last_used_at": t2.isoformat()},
        {"certificate_id": b["id"], "last_used_at": t1.isoformat()},
        {"certificate_id": "not-an-id", "last_used_at": t3.isoformat()},
        {"certificate_id": str(uuid.uuid4()), "last_used_at": t3.isoformat()}]), "B")

    async def applied():
        return await last_used(a) == t2.isoformat() and await last_used(b) == t1.isoformat()

    await eventually(applied, what="last uses recorded")

    # An older use arriving late never moves last_used_at back (b's newer one shows it was applied).
    await bus.publish(CertificateUsed(usages=[{"certificate_id": a["id"], "last_used_at": t0.isoformat()},
                                              {"certificate_id": b["id"], "last_used_at": t3.isoformat()}]), "B")

    async def second_applied():
        return await last_used(b) == t3.isoformat()

    await eventually(second_applied, what="second batch recorded")
    assert await last_used(a) == t2.isoformat()


async def test_external_users_come_and_go_by_events(certs, ossl, bus, db, auth_for):
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/CN={unique('USERS CA ')}"), auth_for(cas="CNAS"))
    operator = auth_for(cas="B")
    cui = new_cui()
    username = f"{cui}_CAS-B"
    created = ExternalUserCreated(username=username, cui=cui, provider_code=cui, provider_name="SC ALFA SRL",
                                  schema="SIUIB", org_unit="CAS-B")
    envelope = await bus.publish(created, "B")
    await bus.publish(created, "B", id=envelope.id)  # delivered twice: one effect

    async def registrable():
        response = await certs.post("/v1/certificates", json={"username": username, "serial": "1",
                                                              "issuer_id": issuer["id"]}, headers=operator)
        return response.status == 201 and await response.json()

    certificate = await eventually(registrable, what="user known from ExternalUserCreated")
    assert certificate["provider_name"] == "SC ALFA SRL" and certificate["schema"] == "SIUIB"

    await bus.publish(ExternalUserDeleted(username=username), "B")

    async def gone():
        return await db.fetchval("select deleted_at is not null from external_users where username = $1", username)

    await eventually(gone, what="user deleted")
    response = await certs.post("/v1/certificates", json={"username": username, "serial": "2",
                                                          "issuer_id": issuer["id"]}, headers=operator)
    assert response.status == 422 and "username" in (await response.json())["errors"]
    # Its certificates and their history stay readable.
    assert (await certs.get(f"/v1/certificates/{certificate['id']}", headers=operator)).status == 200

    # A creation older than the deletion, delivered late, does not bring the user back.
    stale = await bus.publish(created, "B", occurred_at=(utc_now() - timedelta(hours=1)).isoformat())

    async def handled():
        return await db.fetchval("select 1 from inbox where event_id = $1", uuid.UUID(stale.id))

    await eventually(handled, what="stale event consumed")
    assert await gone()


async def test_events_let_an_ocsp_responder_answer_an_openssl_client(certs, ossl, bus, db, auth_for):
    """The CertID openssl sends is matched by what IssuerRegistered and CertificateSuspended carry."""
    ca = ossl.ca(f"/C=RO/O=CERTSIGN SA/CN={unique('OCSP CA ')}/organizationIdentifier=VATRO-18288250", key="rsa")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    user_cert = ossl.user(ca, f"/CN={cui}", serial="0x5A00000000000000000000000000000000000001")
    certificate = await register_upload(certs, username, user_cert, auth_for(cas="B"))
    response = await certs.patch(f"/v1/certificates/{certificate['id']}", json={"suspended": True},
                                 headers=auth_for(cas="B"))
    assert response.status == 200

    registered = await bus.one("certs.issuer_registered", issuer_id=issuer["id"])
    suspended = await bus.one("certs.certificate_suspended", certificate_id=certificate["id"])
    ca_der = asn1_x509.Certificate.load(_pem_der(registered.data["certificate_pem"]))
    name_der = ca_der["tbs_certificate"]["subject"].dump()
    key_bits = ca_der["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:]
    for digest in ("sha1", "sha256"):
        asked = openssl_cert_id(ca.cert, ["-cert", user_cert.cert], digest)
        assert asked["name"] == hashlib.new(digest, name_der).hexdigest()
        assert asked["key"] == hashlib.new(digest, key_bits).hexdigest()
        assert str(asked["serial"]) == suspended.data["serial"]
    assert suspended.data["issuer_id"] == registered.data["issuer_id"]
    assert suspended.data["status"] == "suspended" and suspended.data["changed_at"]


def _pem_der(pem: str) -> bytes:
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)
