"""The renewal hand-over through the real certs app and bus (issue 15): a renewal the
online channel reports (RenewalPresented, published as ocsp) becomes a pending renewal of
its house; approval registers it (201, the old one stays), rejection keeps a reason and
tells the channel; a house may approve automatically; and one certificate may be
registered for the same provider in several houses, never for another provider."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from cryptography import x509

from shared.events import RenewalPresented
from tests.support.certs_api import add_external_user, problem_errors, register_issuer, register_upload, unique
from tests.support.identities import new_cui
from tests.support.wait import eventually


async def _present(bus, username: str, issuer: dict, made, cas: str = "B", client: str = "203.0.113.7"):
    serial = x509.load_pem_x509_certificate(made.pem.encode()).serial_number
    await bus.publish(RenewalPresented(username=username, issuer_id=issuer["id"], serial=str(serial),
                                       certificate_pem=made.pem, presented_at=datetime.now(timezone.utc).isoformat(),
                                       presented_from=client), cas)
    return serial


async def _renewal_of(certs, headers, serial: int, status: str | None = None):
    async def found():
        response = await certs.get("/v1/renewals", params={"status": status} if status else {}, headers=headers)
        assert response.status == 200, await response.text()
        return next((r for r in (await response.json())["items"] if r["serial"] == str(serial)), None)

    return await eventually(found, what=f"renewal of serial {serial}")


async def test_a_presented_renewal_waits_for_its_house_and_one_click_registers_it(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('RENEW CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator_b = auth_for(cas="B", username="ana.operator")
    old = await register_upload(certs, username, ossl.user(ca, f"/C=RO/O=Cabinet {cui}/CN=Dr {cui}",
                                                          serial="0x0A0A01"), operator_b)
    # Another holder's certificate of the same CA is not a renewal: nothing recorded.
    stranger = ossl.user(ca, f"/C=RO/CN=Altcineva {cui}", serial="0x0A0A02")
    stranger_event = await bus.publish(RenewalPresented(
        username=username, issuer_id=issuer["id"], serial=str(0x0A0A02), certificate_pem=stranger.pem,
        presented_at=datetime.now(timezone.utc).isoformat()), "B")
    renewed = ossl.user(ca, f"/C=RO/O=Cabinet {cui}/CN=Dr {cui}", serial="0x0A0A03")
    serial = await _present(bus, username, issuer, renewed)
    await _present(bus, username, issuer, renewed, client="203.0.113.8")  # the desktop retried

    pending = await _renewal_of(certs, operator_b, serial, "pending")
    assert {k: pending[k] for k in ("username", "cas", "serial", "replaces", "status")} == {
        "username": username, "cas": "B", "serial": str(0x0A0A03), "replaces": old["id"], "status": "pending"}
    assert pending["issuer"] == old["issuer"] and pending["not_after"] and pending["presented_at"]
    assert pending["replaced"]["serial"] == old["serial"]

    async def both_presentations():  # handled in either order: the earliest is the request
        row = await db.fetchrow("select presented_from, presented_at < last_presented_at as twice from renewals "
                                "where username = $1", username)
        return row["twice"] and row

    assert (await eventually(both_presentations, what="both presentations"))["presented_from"] == "203.0.113.7"
    async def stranger_handled():  # its inbox row is written with its (absent) effect
        return await db.fetchval("select true from inbox where event_id = $1", uuid.UUID(stranger_event.id))

    await eventually(stranger_handled, what="the stranger's presentation handled")
    assert await db.fetchval("select count(*) from renewals where username = $1", username) == 1
    # Another house does not see it, nor may it decide it; CNAS sees it under B.
    response = await certs.get("/v1/renewals", params={"cas": "B"}, headers=auth_for(cas="CJ"))
    assert all(r["cas"] == "CJ" for r in (await response.json())["items"])
    response = await certs.post(f"/v1/renewals/{pending['id']}/approve", headers=auth_for(cas="CJ"))
    assert response.status == 404
    response = await certs.get("/v1/renewals", params={"cas": "B", "status": "pending"},
                               headers=auth_for(cas="CNAS"))
    assert pending["id"] in [r["id"] for r in (await response.json())["items"]]
    response = await certs.get("/v1/renewals", params={"status": "maybe"}, headers=operator_b)
    assert response.status == 422 and "status" in problem_errors(await response.text())

    response = await certs.post(f"/v1/renewals/{pending['id']}/approve", headers=operator_b)
    assert response.status == 201, await response.text()
    new = await response.json()
    assert new["username"] == username and new["serial"] == str(0x0A0A03) and new["status"] == "active"
    registered = await bus.one("certs.certificate_registered", certificate_id=new["id"])
    assert registered.data["changed_by"] == "ana.operator" and registered.data["certificate_pem"] == renewed.pem
    response = await certs.get(f"/v1/certificates/{old['id']}", headers=operator_b)
    kept = await response.json()
    assert kept["status"] == "active" and kept["history"][-1]["action"] == "renewed"
    approved = await _renewal_of(certs, operator_b, serial, "approved")
    assert approved["certificate_id"] == new["id"] and approved["decided_by"] == "ana.operator"
    response = await certs.post(f"/v1/renewals/{pending['id']}/approve", headers=operator_b)
    assert response.status == 409
    audit = await db.fetch("select action, target_id, actor from audit_log where target_kind = 'renewal' "
                           "and target_id = $1", pending["id"])
    assert {(a["action"], a["actor"]) for a in audit} >= {("renewal_presented", "ocsp:online"),
                                                          ("POST /v1/renewals/{id}/approve", "ana.operator")}


async def test_a_rejection_keeps_its_reason_and_tells_the_online_channel(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('REJECT CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator_b = auth_for(cas="B", username="ion.operator")
    await register_upload(certs, username, ossl.user(ca, f"/CN={cui}", serial="0x0B0B01"), operator_b)
    serial = await _present(bus, username, issuer, ossl.user(ca, f"/CN={cui}", serial="0x0B0B02"))
    pending = await _renewal_of(certs, operator_b, serial, "pending")
    path = f"/v1/renewals/{pending['id']}/reject"
    for body in ({}, {"reason": "   "}, {"reason": "x" * 501}):
        response = await certs.post(path, json=body, headers=operator_b)
        assert response.status == 422, body
        assert response.headers["Content-Type"].startswith("application/problem+json")
    response = await certs.post(path, json={"reason": "Certificatul nu este al reprezentantului legal"},
                                headers=operator_b)
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "rejected"
    event = await bus.one("certs.renewal_rejected", renewal_id=pending["id"])
    assert event.data["reason"] == "Certificatul nu este al reprezentantului legal"
    assert event.data["serial"] == str(0x0B0B02) and event.cas == "B"
    response = await certs.post(f"/v1/renewals/{pending['id']}/approve", headers=operator_b)
    assert response.status == 409


async def test_a_house_that_approves_automatically_registers_a_renewal_of_a_live_certificate(
        certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('AUTO CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cas="TM", cui=cui)
    response = await certs.get("/v1/renewal-settings/TM", headers=auth_for(cas="TM"))
    assert (await response.json()) == {"cas": "TM", "auto_approve": False}  # the national default
    operator = auth_for(cas="TM", rights=("certificates:read", "certificates:write"), roles=("house-operator",))
    response = await certs.put("/v1/renewal-settings/TM", json={"auto_approve": True}, headers=operator)
    assert response.status == 403
    response = await certs.put("/v1/renewal-settings/TM", json={"auto_approve": True},
                               headers=auth_for(cas="B"))
    assert response.status == 403
    response = await certs.put("/v1/renewal-settings/TM", json={"auto_approve": True},
                               headers=auth_for(cas="TM", username="admin.tm"))
    assert response.status == 200, await response.text()
    admin = auth_for(cas="TM")
    await register_upload(certs, username, ossl.user(ca, f"/CN={cui}", serial="0x0C0C01"), admin)
    serial = await _present(bus, username, issuer, ossl.user(ca, f"/CN={cui}", serial="0x0C0C02"), cas="TM")
    approved = await _renewal_of(certs, admin, serial, "approved")
    assert approved["decided_by"] == "system:auto-renewal" and approved["certificate_id"]
    event = await bus.one("certs.certificate_registered", certificate_id=approved["certificate_id"])
    assert event.data["changed_by"] == "system:auto-renewal" and event.cas == "TM"


async def test_one_certificate_is_registered_in_several_houses_of_one_provider_only(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('HOUSES CA ')}")
    await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    in_b = await add_external_user(bus, db, cas="B", cui=cui)
    in_cj = await add_external_user(bus, db, cas="CJ", cui=cui)
    other = await add_external_user(bus, db, cas="CJ")
    made = ossl.user(ca, f"/CN={cui}", serial="0x0D0D01")
    first = await register_upload(certs, in_b, made, auth_for(cas="B"))
    second = await register_upload(certs, in_cj, made, auth_for(cas="CJ"))
    assert first["serial"] == second["serial"] and first["id"] != second["id"] and second["cas"] == "CJ"
    for username, house in ((in_b, "B"), (other, "CJ")):
        response = await certs.post("/v1/certificates", json={"username": username, "certificate_pem": made.pem},
                                    headers=auth_for(cas=house))
        assert response.status == 409, (username, await response.text())
    # Each house decides for itself: CJ's suspension leaves B's registration active.
    response = await certs.patch(f"/v1/certificates/{second['id']}", json={"suspended": True},
                                 headers=auth_for(cas="CJ"))
    assert (await response.json())["status"] == "suspended"
    response = await certs.get(f"/v1/certificates/{first['id']}", headers=auth_for(cas="B"))
    assert (await response.json())["status"] == "active"


async def test_an_automatic_approval_a_registration_rule_refuses_waits_for_a_person(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('AUTO NO CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    admin = auth_for(cas="TM", username="admin.tm")
    response = await certs.put("/v1/renewal-settings/TM", json={"auto_approve": True}, headers=admin)
    assert response.status == 200
    cui = new_cui()
    username = await add_external_user(bus, db, cas="TM", cui=cui)
    stranger = await add_external_user(bus, db, cas="TM")
    await register_upload(certs, username, ossl.user(ca, f"/CN={cui}", serial="0x0E0E01"), admin)
    renewed = ossl.user(ca, f"/CN={cui}", serial="0x0E0E02")
    await register_upload(certs, stranger, renewed, admin)  # another provider holds that serial
    serial = await _present(bus, username, issuer, renewed, cas="TM")
    pending = await _renewal_of(certs, admin, serial, "pending")
    assert pending["decided_by"] is None and pending["certificate_id"] is None
    response = await certs.post(f"/v1/renewals/{pending['id']}/approve", headers=admin)
    assert response.status == 409  # a person is told why
