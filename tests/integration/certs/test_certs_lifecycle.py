"""Suspend ("Suspendat"), reinstate, revoke, and the listings a house works from
(filters, pages, certificates about to expire), through the real certs app and bus."""
from __future__ import annotations

import asyncio
import json
import uuid

from tests.support.certs_api import add_external_user, register_issuer, register_upload, unique
from tests.support.identities import new_cui
from tests.support.wait import eventually


async def test_suspend_reinstate_and_revoke_are_events_and_history(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('LIFECYCLE CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    user_cert = ossl.user(ca, f"/CN={cui}", serial="0x00FF00FF00FF")
    certificate = await register_upload(certs, username, user_cert, auth_for(cas="B"))
    path = f"/v1/certificates/{certificate['id']}"
    operator = auth_for(cas="B", username="ana.operator")

    response = await certs.patch(path, json={"suspended": True, "reason": "contract suspendat"}, headers=operator)
    assert response.status == 200, await response.text()
    suspended = await response.json()
    assert suspended["suspended"] is True and suspended["status"] == "suspended" and suspended["suspended_at"]
    event = await bus.one("certs.certificate_suspended", certificate_id=certificate["id"])
    assert event.cas == "B" and event.type == "CertificateSuspended"
    assert event.data == {
        "certificate_id": certificate["id"], "issuer_id": issuer["id"], "serial": str(0x00FF00FF00FF),
        "username": username, "provider_cui": cui, "status": "suspended", "changed_at": suspended["suspended_at"],
        "not_before": certificate["not_before"], "not_after": certificate["not_after"],
        "certificate_pem": user_cert.pem, "reason": "contract suspendat", "changed_by": "ana.operator",
        "issuer_revoked_at": None, "issuer_revocation_reason": None}

    # Ticking the box again changes nothing and publishes nothing.
    response = await certs.patch(path, json={"suspended": True}, headers=operator)
    assert response.status == 200 and (await response.json())["suspended_at"] == suspended["suspended_at"]

    response = await certs.patch(path, json={"suspended": False}, headers=operator)
    reinstated = await response.json()
    assert reinstated["suspended"] is False and reinstated["status"] == "active"
    event = await bus.one("certs.certificate_reinstated", certificate_id=certificate["id"])
    assert event.data["status"] == "active" and event.data["reason"] is None

    response = await certs.post(path + "/revoke", json={"reason": "keyCompromise", "comment": "token pierdut"},
                                headers=operator)
    assert response.status == 200, await response.text()
    revoked = await response.json()
    assert (revoked["status"], revoked["revocation_reason"], revoked["suspended"]) == ("revoked", "key_compromise", False)
    event = await bus.one("certs.certificate_revoked", certificate_id=certificate["id"])
    assert (event.data["status"], event.data["reason"], event.data["changed_at"]) == (
        "revoked", "key_compromise", revoked["revoked_at"])

    # A revocation is final.
    for method, url, body in (("PATCH", path, {"suspended": False}), ("PATCH", path, {"suspended": True}),
                              ("POST", path + "/revoke", {"reason": "superseded"})):
        response = await certs.request(method, url, json=body, headers=operator)
        assert response.status == 409, await response.text()

    detail = await (await certs.get(path, headers=operator)).json()
    assert [(h["action"], h["actor"], h["reason"], h["comment"]) for h in detail["history"]] == [
        ("registered", "operator.b", None, None), ("suspended", "ana.operator", "contract suspendat", None),
        ("reinstated", "ana.operator", None, None), ("revoked", "ana.operator", "key_compromise", "token pierdut")]
    assert len(bus.events("certs.certificate_suspended", certificate_id=certificate["id"])) == 1


async def test_a_suspension_persists_when_the_client_hangs_up(certs, ossl, bus, db, auth_for):
    """The test server cancels a handler whose client leaves: the suspension must still commit."""
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/CN={unique('HANG UP CA ')}"), auth_for(cas="CNAS"))
    username = await add_external_user(bus, db)
    headers = auth_for(cas="B")
    response = await certs.post("/v1/certificates", json={"username": username, "serial": "7",
                                                          "issuer_id": issuer["id"]}, headers=headers)
    certificate_id = (await response.json())["id"]
    server = certs.server.runner.server
    body = json.dumps({"suspended": True}).encode()
    request = (f"PATCH /v1/certificates/{certificate_id} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: {headers['Authorization']}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def waiting_on_our_lock():
        return await db.fetchval("""select count(*) from pg_stat_activity
                                    where datname = current_database() and wait_event_type = 'Lock'""")

    # Hold the row so that the handler is mid-transaction when its client hangs up.
    async with db.transaction():
        await db.execute("select 1 from certificates where id = $1 for update", uuid.UUID(certificate_id))
        reader, writer = await asyncio.open_connection(certs.host, certs.port)
        writer.write(request)
        await writer.drain()
        await eventually(waiting_on_our_lock, what="the PATCH waiting on the row lock")
        connections = len(server.connections)
        writer.close()

        async def handler_gone():
            return len(server.connections) < connections

        await eventually(handler_gone, what="the handler cancelled")
    event = await bus.one("certs.certificate_suspended", certificate_id=certificate_id)
    assert event.data["status"] == "suspended"
    detail = await (await certs.get(f"/v1/certificates/{certificate_id}", headers=headers)).json()
    assert detail["suspended"] is True and [h["action"] for h in detail["history"]] == ["registered", "suspended"]


async def test_state_changes_need_the_right_and_valid_bodies(certs, ossl, bus, db, auth_for):
    issuer = await register_issuer(certs, ossl.ca(f"/C=RO/CN={unique('RIGHTS CA ')}"), auth_for(cas="CNAS"))
    username = await add_external_user(bus, db)
    response = await certs.post("/v1/certificates", json={"username": username, "serial": "5",
                                                          "issuer_id": issuer["id"]}, headers=auth_for(cas="B"))
    path = f"/v1/certificates/{(await response.json())['id']}"
    viewer = auth_for(cas="B", rights=("certificates:read", "certificates:write"))
    assert (await certs.patch(path, json={"suspended": True}, headers=viewer)).status == 403
    assert (await certs.post(path + "/revoke", json={"reason": "superseded"}, headers=viewer)).status == 403
    operator = auth_for(cas="B")
    for body in ({"suspended": "yes"}, {}, {"suspended": True, "reason": "x" * 501}, {"suspended": True, "x": 1}):
        assert (await certs.patch(path, json=body, headers=operator)).status == 422, body
    for body in ({"reason": "certificateHold"}, {"reason": "because"}, {}):
        assert (await certs.post(path + "/revoke", json=body, headers=operator)).status == 422, body
    assert (await certs.patch("/v1/certificates/00000000-0000-0000-0000-000000000000",
                              json={"suspended": True}, headers=operator)).status == 404


async def test_listing_filters_and_pages(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('LISTING CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator = auth_for(cas="B")
    ids = []
    for serial in range(1, 6):
        response = await certs.post("/v1/certificates", json={"username": username, "serial": str(serial),
                                                              "issuer_id": issuer["id"]}, headers=operator)
        ids.append((await response.json())["id"])
    await certs.patch(f"/v1/certificates/{ids[0]}", json={"suspended": True}, headers=operator)
    await certs.post(f"/v1/certificates/{ids[1]}/revoke", json={"reason": "superseded"}, headers=operator)

    async def listing(**params):
        response = await certs.get("/v1/certificates", params=params, headers=operator)
        assert response.status == 200, await response.text()
        return await response.json()

    page = await listing(provider=cui, per_page="2")
    assert (page["total"], page["pages"], page["page"], page["per_page"], len(page["items"])) == (5, 3, 1, 2, 2)
    last = await listing(provider=cui, per_page="2", page="3")
    assert len(last["items"]) == 1
    seen = {c["id"] for p in range(1, 4) for c in (await listing(provider=cui, per_page="2", page=str(p)))["items"]}
    assert seen == set(ids)
    assert [c["id"] for c in (await listing(provider=cui, suspended="true"))["items"]] == [ids[0]]
    assert (await listing(provider=cui, suspended="false"))["total"] == 4
    assert [c["id"] for c in (await listing(provider=cui, status="revoked"))["items"]] == [ids[1]]
    assert (await listing(username=username, issuer_id=issuer["id"]))["total"] == 5
    assert (await listing(provider="0"))["total"] == 0
    for bad in ({"status": "gone"}, {"suspended": "maybe"}, {"per_page": "1000"}, {"page": "0"},
                {"expiring_within_days": "-1"}, {"issuer_id": "x"}):
        response = await certs.get("/v1/certificates", params=bad, headers=operator)
        assert response.status == 422, bad


async def test_expiring_within_days_lists_what_runs_out_soonest_first(certs, ossl, bus, db, auth_for):
    ca = ossl.ca(f"/C=RO/CN={unique('EXPIRING CA ')}")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    cui = new_cui()
    username = await add_external_user(bus, db, cui=cui)
    operator = auth_for(cas="B")
    made = {days: await register_upload(certs, username, ossl.user(ca, f"/CN={cui}", serial=str(days), days=days),
                                        operator) for days in (25, 10, 400)}
    revoked_soon = await register_upload(certs, username, ossl.user(ca, f"/CN={cui}", serial="5", days=5), operator)
    await certs.post(f"/v1/certificates/{revoked_soon['id']}/revoke", json={"reason": "superseded"}, headers=operator)
    # Registered by serial only: its validity is unknown, so it is never "expiring".
    await certs.post("/v1/certificates", json={"username": username, "serial": "999", "issuer_id": issuer["id"]},
                     headers=operator)

    response = await certs.get("/v1/certificates", params={"provider": cui, "expiring_within_days": "30"},
                               headers=operator)
    body = await response.json()
    assert [c["id"] for c in body["items"]] == [made[10]["id"], made[25]["id"]]
    response = await certs.get("/v1/certificates", params={"provider": cui, "expiring_within_days": "15"},
                               headers=operator)
    assert [c["id"] for c in (await response.json())["items"]] == [made[10]["id"]]
