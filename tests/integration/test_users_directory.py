"""users service, the directory: the users list, staff accounts, roles, county scope.

Its own PostgreSQL database and RabbitMQ exchange; external users arrive as KeyIssued
events on the real exchange, staff are created through the API.
"""
from __future__ import annotations

import math
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users.app import create_app
from services.users.config import Config
from shared.auth import ALL_RIGHTS, Right
from shared.broker import connect
from shared.events import KeyIssued, new_envelope
from tests.support import infra
from tests.support.wait import eventually

PASSWORD = "munte-si-mare-2026"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
OPERATOR_RIGHTS = (Right.PROVIDERS_READ, Right.PROVIDERS_WRITE, Right.KEYS_ISSUE, Right.USERS_READ,
                   Right.CERTIFICATES_READ, Right.CERTIFICATES_WRITE, Right.CERTIFICATES_SUSPEND,
                   Right.ISSUERS_READ, Right.OCSP_LOG_READ, Right.OCSP_LOG_PERSONAL)
HOUSE_ADMIN_RIGHTS = tuple(r for r in ALL_RIGHTS if r != Right.ISSUERS_WRITE)
# External users: 23 in B (one the seed's, one whose provider code is not its CUI), 3 in CJ.
B_CUIS = ["12433636"] + [str(30000000 + i) for i in range(22)]
CJ_CUIS = [str(40000000 + i) for i in range(3)]
B_STAFF = ["ana.ionescu", "mihai.popa", "elena.popescu"]
CJ_STAFF = ["ioana.muresan"]


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_users_directory") as config:
        yield config


@pytest.fixture(scope="module")
def cnas(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


@pytest.fixture(scope="module")
def b_admin(auth_for):
    return auth_for(username="admin.b", cas="B", rights=HOUSE_ADMIN_RIGHTS, roles=("house-admin",))


@pytest.fixture(scope="module")
def b_operator(auth_for):
    return auth_for(username="operator.b", cas="B", rights=OPERATOR_RIGHTS, roles=("house-operator",))


def key_issued(cui: str, cas: str) -> KeyIssued:
    code = "P-777" if cui == B_CUIS[1] else cui
    return KeyIssued(provider_id=cui, cui=cui, provider_code=code, provider_name=f"SC FURNIZOR {cui} SRL",
                     key_id=str(uuid.uuid4()), key_digest="00", reset=False,
                     issued_at="2026-01-05T10:00:00+00:00", issued_by=f"operator.{cas.lower()}",
                     external_user=f"{cui}_CAS-{cas}")


@pytest.fixture(scope="module")
async def client(common, cnas):
    config = Config(common=common, port=0, admin_password="parola-de-test-2026")
    async with TestClient(TestServer(create_app(config, hasher=FAST))) as client:
        broker = await connect(infra.amqp_url_for("keygen"), common.events_exchange)
        try:
            for cas, cuis in (("B", B_CUIS), ("CJ", CJ_CUIS)):
                for cui in cuis:
                    await broker.publish(new_envelope(key_issued(cui, cas), cas))
        finally:
            await broker.close()
        for cas, names in (("B", B_STAFF), ("CJ", CJ_STAFF)):
            for name in names:
                response = await client.post("/v1/users", headers=cnas, json={
                    "username": name, "password": PASSWORD, "cas": cas, "employee_code": f"E-{name[:3]}",
                    "employee_name": name.replace(".", " ").title(), "roles": ["house-viewer"]})
                assert response.status == 201, await response.text()

        async def all_external_users():
            body = await (await client.get("/v1/users", headers=cnas, params={"type": "external"})).json()
            return body["total"] == len(B_CUIS) + len(CJ_CUIS)

        await eventually(all_external_users, what="external users from KeyIssued")
        yield client


async def page(client, headers, **params):
    response = await client.get("/v1/users", headers=headers, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_list_filters_by_type(client, cnas):
    external = await page(client, cnas, type="external", cas="B")
    internal = await page(client, cnas, type="internal", cas="B")
    both = await page(client, cnas, cas="B", per_page=100)
    assert external["total"] == len(B_CUIS) and {i["type"] for i in external["items"]} == {"external"}
    assert internal["total"] == len(B_STAFF) and {i["type"] for i in internal["items"]} == {"internal"}
    assert both["total"] == len(B_CUIS) + len(B_STAFF)


async def test_search_by_provider_code_finds_the_external_user(client, b_operator):
    found = await page(client, b_operator, q="12433636")
    assert (found["total"], found["pages"]) == (1, 1)  # "Numarul total: 1 (1 pagina)"
    assert found["items"] == [{"username": "12433636_CAS-B", "employee_code": None, "employee_name": None,
                               "type": "external", "cas": "B", "schema": "SIUIB", "org_unit": "CAS-B"}]
    # A provider code that is not the CUI is found too, and so is a staff member's name.
    assert [i["username"] for i in (await page(client, b_operator, q="p-777"))["items"]] == [f"{B_CUIS[1]}_CAS-B"]
    assert [i["username"] for i in (await page(client, b_operator, q="POPESCU"))["items"]] == ["elena.popescu"]
    # '_' is matched literally, not as a wildcard.
    assert (await page(client, b_operator, q="36_cas-b"))["total"] == 1
    assert (await page(client, b_operator, q="a_ionescu"))["total"] == 0  # not "ana.ionescu"
    assert (await page(client, b_operator, q="nimeni"))["total"] == 0
    # One or two characters search too (without the trigram index).
    assert [i["username"] for i in (await page(client, b_operator, q="An"))["items"]] == ["ana.ionescu"]
    # Past the last page: no items, the total still said.
    past = await page(client, b_operator, q="popescu", page=5)
    assert (past["items"], past["total"], past["pages"]) == ([], 1, 1)


async def test_paging_totals_and_stable_order(client, b_operator):
    total = len(B_CUIS) + len(B_STAFF)
    first = await page(client, b_operator, per_page=10)
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (total, math.ceil(total / 10), 1, 10)
    seen = []
    for number in range(1, first["pages"] + 1):
        seen += [i["username"] for i in (await page(client, b_operator, per_page=10, page=number))["items"]]
    assert len(seen) == total == len(set(seen)) and seen == sorted(seen)
    assert (await page(client, b_operator, per_page=10, page=first["pages"] + 1))["items"] == []


async def test_bad_list_parameters_are_named(client, b_operator):
    response = await client.get("/v1/users", headers=b_operator, params={"per_page": "25", "type": "both"})
    assert response.status == 422 and response.content_type == "application/problem+json"
    assert set((await response.json())["errors"]) == {"per_page", "type"}


async def test_county_operator_sees_only_their_house(client, b_operator):
    listed = await page(client, b_operator, cas="CJ", per_page=100)  # asking for CJ changes nothing
    assert {i["cas"] for i in listed["items"]} == {"B"}
    for name in ("ioana.muresan", f"{CJ_CUIS[0]}_CAS-CJ", "admin"):
        response = await client.get(f"/v1/users/{name}", headers=b_operator)
        assert response.status == 404 and response.content_type == "application/problem+json"


async def test_cnas_sees_every_house_and_filters_by_one(client, cnas):
    everyone = await page(client, cnas, per_page=100)
    assert {"B", "CJ", "CNAS"} <= {i["cas"] for i in everyone["items"]}
    cj = await page(client, cnas, cas="cj", per_page=100)
    assert cj["total"] == len(CJ_CUIS) + len(CJ_STAFF) and {i["cas"] for i in cj["items"]} == {"CJ"}
    assert (await client.get("/v1/users/ioana.muresan", headers=cnas)).status == 200


async def test_user_detail_internal_and_external(client, cnas):
    staff = await (await client.get("/v1/users/ana.ionescu", headers=cnas)).json()
    assert staff["roles"] == ["house-viewer"] and Right.USERS_READ in staff["rights"]
    assert "password_hash" not in staff and staff["enabled"] is True
    external = await (await client.get("/v1/users/12433636_CAS-B", headers=cnas)).json()
    assert (external["provider_cui"], external["provider_code"], external["schema"]) == ("12433636", "12433636", "SIUIB")
    assert "roles" not in external and len(external["key_changes"]) == 1


async def test_roles_list(client, b_operator):
    roles = {r["name"]: r for r in (await (await client.get("/v1/roles", headers=b_operator)).json())["items"]}
    assert set(roles) == {"national-admin", "house-admin", "house-operator", "house-viewer"}
    assert set(roles["national-admin"]["rights"]) == set(ALL_RIGHTS) and roles["national-admin"]["national"]
    assert set(roles["house-admin"]["rights"]) == set(HOUSE_ADMIN_RIGHTS)
    assert set(roles["house-operator"]["rights"]) == set(OPERATOR_RIGHTS)
    assert all(r.endswith(":read") for r in roles["house-viewer"]["rights"])
    assert Right.OCSP_LOG_PERSONAL not in roles["house-viewer"]["rights"]  # the log masked for them


async def test_house_admin_manages_staff_of_their_house(client, b_admin):
    created = await client.post("/v1/users", headers=b_admin, json={
        "username": "Radu.Stan", "password": PASSWORD, "cas": "B", "employee_code": "E77",
        "employee_name": "Radu Stan", "roles": ["house-operator"], "enabled": True})
    assert created.status == 201 and created.headers["Location"] == "/v1/users/radu.stan"
    assert (await created.json())["org_unit"] == "CAS-B"
    changed = await client.patch("/v1/users/radu.stan", headers=b_admin, json={"employee_name": "Radu Stănescu"})
    assert (await changed.json())["employee_name"] == "Radu Stănescu"
    roles = await client.put("/v1/users/radu.stan/roles", headers=b_admin, json={"roles": ["house-viewer"]})
    assert roles.status == 200 and (await roles.json())["roles"] == ["house-viewer"]
    assert (await client.delete("/v1/users/radu.stan", headers=b_admin)).status == 204
    assert (await client.get("/v1/users/radu.stan", headers=b_admin)).status == 404


async def test_house_admin_cannot_act_in_another_house(client, b_admin):
    other = await client.post("/v1/users", headers=b_admin, json={
        "username": "x.cluj", "password": PASSWORD, "cas": "CJ", "employee_name": "X"})
    assert other.status == 403
    for method, body in (("PATCH", {"enabled": False}), ("DELETE", None), ("PUT", {"roles": []})):
        path = "/v1/users/ioana.muresan" + ("/roles" if method == "PUT" else "")
        response = await client.request(method, path, headers=b_admin, json=body)
        assert response.status == 404, method


async def test_role_rules(client, cnas):
    external = await client.put("/v1/users/12433636_CAS-B/roles", headers=cnas, json={"roles": ["house-viewer"]})
    assert external.status == 422 and "external users have no roles or rights" in (await external.json())["detail"]
    national = await client.put("/v1/users/ana.ionescu/roles", headers=cnas, json={"roles": ["national-admin"]})
    assert national.status == 422 and "roles" in (await national.json())["errors"]
    unknown = await client.put("/v1/users/ana.ionescu/roles", headers=cnas, json={"roles": ["root"]})
    assert unknown.status == 422
    new_national = await client.post("/v1/users", headers=cnas, json={
        "username": "b.boss", "password": PASSWORD, "cas": "B", "employee_name": "B", "roles": ["national-admin"]})
    assert new_national.status == 422



async def test_nobody_manages_an_account_with_more_rights(client, auth_for):
    # A CNAS house admin lacks issuers:write: resetting the national admin's password
    # would be a way to get it.
    cnas_house_admin = auth_for(username="cnas.staff", cas="CNAS", rights=HOUSE_ADMIN_RIGHTS)
    for method, path, body in (("PATCH", "/v1/users/admin", {"password": "o-parola-noua-2026"}),
                               ("DELETE", "/v1/users/admin", None),
                               ("PUT", "/v1/users/admin/roles", {"roles": ["house-admin"]})):
        response = await client.request(method, path, headers=cnas_house_admin, json=body)
        assert response.status == 403, method
        assert "issuers:write" in (await response.json())["detail"]


async def test_rights_are_enforced(client, b_operator):
    response = await client.post("/v1/users", headers=b_operator, json={
        "username": "no.rights", "password": PASSWORD, "cas": "B", "employee_name": "N"})
    assert response.status == 403 and response.content_type == "application/problem+json"


async def test_missing_token_is_401_everywhere(client):
    for method, path in (("GET", "/v1/users"), ("GET", "/v1/users/admin"), ("POST", "/v1/users"),
                         ("PATCH", "/v1/users/admin"), ("DELETE", "/v1/users/admin"),
                         ("PUT", "/v1/users/admin/roles"), ("GET", "/v1/roles"),
                         ("DELETE", "/v1/sessions/current")):
        response = await client.request(method, path)
        assert response.status == 401, (method, path)
        assert response.content_type == "application/problem+json"
    bad = await client.get("/v1/users", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status == 401


async def test_bad_bodies(client, cnas):
    garbage = await client.post("/v1/users", headers={**cnas, "Content-Type": "application/json"}, data=b"{oops")
    assert garbage.status == 400 and garbage.content_type == "application/problem+json"
    typed = await client.post("/v1/users", headers=cnas, json={
        "username": 5, "password": PASSWORD, "cas": "B", "employee_name": "X", "roles": "house-admin",
        "enabled": "yes", "colour": "blue"})
    assert typed.status == 422
    assert set((await typed.json())["errors"]) == {"username", "roles", "enabled", "colour"}
    weak = await client.post("/v1/users", headers=cnas, json={
        "username": "weak.one", "password": "weak.one-2026-x", "cas": "B", "employee_name": "W"})
    assert weak.status == 422 and "password" in (await weak.json())["errors"]
    patch = await client.patch("/v1/users/ana.ionescu", headers=cnas, json={"enabled": "no"})
    assert patch.status == 422 and "enabled" in (await patch.json())["errors"]
    roles = await client.put("/v1/users/ana.ionescu/roles", headers=cnas, json={"roles": [1, 2]})
    assert roles.status == 422


async def test_taken_user_name_is_a_conflict(client, cnas):
    response = await client.post("/v1/users", headers=cnas, json={
        "username": "ANA.IONESCU", "password": PASSWORD, "cas": "B", "employee_name": "Alta Ana"})
    assert response.status == 409


async def test_nobody_deletes_or_disables_themselves(client, auth_for):
    me = auth_for(username="mihai.popa", cas="B", rights=HOUSE_ADMIN_RIGHTS, roles=("house-admin",))
    assert (await client.delete("/v1/users/mihai.popa", headers=me)).status == 409
    assert (await client.patch("/v1/users/mihai.popa", headers=me, json={"enabled": False})).status == 409


async def test_writes_are_audited_with_the_record(client, cnas):
    await client.patch("/v1/users/elena.popescu", headers=cnas, json={"employee_code": "E-900"})
    entries = (await (await client.get("/v1/audit", headers=cnas, params={"cas": "B"})).json())["items"]
    assert any(e["action"] == "PATCH /v1/users/{username}" and e["target_id"] == "elena.popescu"
               and e["target_kind"] == "user" and e["result"] == "ok" for e in entries)


async def test_openapi_documents_every_route(client):
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert {"/v1/sessions", "/v1/sessions/current", "/v1/users", "/v1/users/{username}",
            "/v1/users/{username}/roles", "/v1/roles"} <= set(doc["paths"])
