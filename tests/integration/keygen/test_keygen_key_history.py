"""GET /v1/providers/{id}/keys (issue 15, part 5): each key issued for a provider, who
issued or reset it and when, and "replaced" for the old ones; no secret in the answer;
house-scoped like every read."""
from __future__ import annotations

import uuid

from tests.support.keygen_api import issued_key, make_provider


async def test_the_key_history_names_who_and_when_and_never_a_secret(keygen, county, clock):
    first_clerk, second_clerk = county("B", username="clerk.first"), county("B", username="clerk.second")
    provider = await make_provider(keygen, first_clerk, cas="B")
    path = f"/v1/providers/{provider['id']}/keys"
    assert (await (await keygen.get(path, headers=first_clerk)).json()) == {"items": []}

    first = await issued_key(keygen, first_clerk, provider["id"])
    clock.advance(hours=2)
    second = await issued_key(keygen, second_clerk, provider["id"], reset=True)
    clock.advance(minutes=5)
    third = await issued_key(keygen, first_clerk, provider["id"], reset=True)

    response = await keygen.get(path, headers=county("B", username="viewer.b", rights=("providers:read",)))
    assert response.status == 200
    text = await response.text()
    items = (await response.json())["items"]
    assert [(k["key_id"], k["status"], k["reset"], k["issued_by"], k["replaced_by"]) for k in items] == [
        (first["key_id"], "replaced", False, "clerk.first", "clerk.second"),
        (second["key_id"], "replaced", True, "clerk.second", "clerk.first"),
        (third["key_id"], "current", True, "clerk.first", None)]
    assert [k["issued_at"] for k in items] == [first["issued_at"], second["issued_at"], third["issued_at"]]
    assert [k["replaced_at"] for k in items] == [second["issued_at"], third["issued_at"], None]
    for key in (first, second, third):
        serial = key["license_serial"]
        assert serial not in text and serial.replace("-", "") not in text
    assert "digest" not in text
    detail = await (await keygen.get(f"/v1/providers/{provider['id']}", headers=first_clerk)).json()
    assert detail["keys"] == items  # the detail carries the same history

    # Another house's provider is not found; no token, no right, a bad id: refused, never a 500.
    assert (await keygen.get(path, headers=county("CJ"))).status == 404
    assert (await keygen.get(path)).status == 401
    assert (await keygen.get(path, headers=county("B", rights=("users:read",)))).status == 403
    assert (await keygen.get(f"/v1/providers/{uuid.uuid4()}/keys", headers=first_clerk)).status == 404
    bad = await keygen.get("/v1/providers/not-an-id/keys", headers=first_clerk)
    assert bad.status in (404, 422) and bad.content_type == "application/problem+json"
    doc = await (await keygen.get("/openapi.json")).json()
    assert "/v1/providers/{id}/keys" in doc["paths"]
