"""GET /v1/certificates/expiring (issue 15, part 4): how many certificates of each house
expire within 30 / 15 / 7 days, on the app's injected clock, counted like the listing's
expiring_within_days, house-scoped, bad input a 422."""
from __future__ import annotations

from datetime import timedelta

from services.certs.app import create_app
from shared.clock import utc_now
from tests.support.certs_api import add_external_user, register_issuer, register_upload, unique
from tests.support.clock import FrozenClock


async def _counts(certs, headers, **params) -> dict:
    response = await certs.get("/v1/certificates/expiring", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def _house(body: dict, cas: str) -> dict:
    return next((item for item in body["items"] if item["cas"] == cas),
                {"within_30": 0, "within_15": 0, "within_7": 0})


async def test_counts_per_house_and_window(aiohttp_client, certs_config, ossl, bus, db, auth_for):
    clock = FrozenClock(utc_now())
    certs = await aiohttp_client(create_app(certs_config, clock=clock))
    national, bucharest, cluj = auth_for(cas="CNAS"), auth_for(cas="B"), auth_for(cas="CJ", username="operator.cj")
    ca = ossl.ca(f"/C=RO/CN={unique('EXPIRING CA ')}")
    await register_issuer(certs, ca, national)
    before = await _counts(certs, national)
    before_cj = await _counts(certs, cluj)
    clock.advance(days=10, hours=1)
    before_later = _house(await _counts(certs, national), "B")
    clock.advance(days=-10, hours=-1)
    listed_before = await (await certs.get("/v1/certificates", params={"expiring_within_days": "30", "cas": "B"},
                                           headers=national)).json()

    username = await add_external_user(bus, db, cas="B")
    made = {days: register_upload(certs, username, ossl.user(ca, f"/CN=exp{days}", serial=str(1000 + days),
                                                             days=days), bucharest)
            for days in (5, 10, 20, 40, 25)}
    rows = {days: await pending for days, pending in made.items()}
    # A suspended certificate still counts (the house may reinstate it); a revoked one not.
    response = await certs.patch(f"/v1/certificates/{rows[20]['id']}", json={"suspended": True}, headers=bucharest)
    assert response.status == 200
    response = await certs.post(f"/v1/certificates/{rows[25]['id']}/revoke", json={"reason": "superseded"},
                                headers=bucharest)
    assert response.status == 200

    after = await _counts(certs, national)
    assert after["windows"] == [30, 15, 7] and after["as_of"] == clock.now.isoformat()
    grew = {name: _house(after, "B")[name] - _house(before, "B")[name] for name in ("within_30", "within_15", "within_7")}
    assert grew == {"within_30": 3, "within_15": 2, "within_7": 1}
    assert after["total"]["within_30"] - before["total"]["within_30"] == 3
    listed = await (await certs.get("/v1/certificates", params={"expiring_within_days": "30", "cas": "B"},
                                    headers=national)).json()
    assert listed["total"] - listed_before["total"] == 3  # the count and the list it links to agree

    # Ten days on, the 5-day one has expired and the 40-day one is within 30.
    clock.advance(days=10, hours=1)
    later = _house(await _counts(certs, national, cas="b"), "B")
    assert {name: later[name] - before_later[name] for name in ("within_30", "within_15", "within_7")} == {
        "within_30": 2, "within_15": 1, "within_7": 0}  # 40 days is now 30, 20 (suspended) is 10

    # A county sees its own house only, zeros included, whatever it asks for.
    mine = await _counts(certs, cluj, cas="B")
    assert [item["cas"] for item in mine["items"]] == ["CJ"] and mine["items"][0] == {"cas": "CJ", **before_cj["total"]}
    assert _house(await _counts(certs, bucharest), "B") == later

    for bad in ("XX", "B" * 40, "CAS-B"):
        response = await certs.get("/v1/certificates/expiring", params={"cas": bad}, headers=national)
        assert response.status == 422 and response.content_type == "application/problem+json"
    assert (await certs.get("/v1/certificates/expiring")).status == 401
    no_right = auth_for(cas="B", rights=("providers:read",))
    assert (await certs.get("/v1/certificates/expiring", headers=no_right)).status == 403
    doc = await (await certs.get("/openapi.json")).json()
    assert "/v1/certificates/expiring" in doc["paths"] and "ExpiringCounts" in doc["components"]["schemas"]
