"""keygen, providers ("Furnizori / Persoane juridice") through the real app on PostgreSQL:
the form's fields, check digits, duplicates, house scoping, the list, edits and history."""
from __future__ import annotations

import json

from yarl import URL

from tests.support.identities import bad_check_digit, new_cnp, new_cui
from tests.support.keygen_api import issued_key, make_provider, problem, provider_body

FULL = {
    "description": "Clinică de familie",
    "cui_date": "2004-03-15",
    "org_type": "cmi",
    "fiscal_attribute_date": "2005-01-01",
    "trade_register_no": "J40/10/3456",
    "registered_on": "2004-03-20",
    "country": "ROM",
    "locality": "17913 București",
    "currency": "RON",
    "print_order": 7,
    "valid_from": "2024-01-01",
    "valid_to": "2026-12-31",
    "work_point": "Str. Știrbei Vodă 12",
    "location_type": "urban",
}


async def test_every_field_of_the_form_is_kept(keygen, national):
    cui = new_cui()
    cnp = new_cnp()
    response = await keygen.post("/v1/providers", headers=national, json={
        "cas": "b", "cui": f"RO {cui}", "name": "CMI Dr. Țărănescu Ana", **FULL,
        "legal_representative": {"name": "Ana Țărănescu", "cnp": cnp}})
    assert response.status == 201, await response.text()
    created = await response.json()
    assert response.headers["Location"] == f"/v1/providers/{created['id']}"

    response = await keygen.get(f"/v1/providers/{created['id']}", headers=national)
    assert response.status == 200
    provider = await response.json()
    assert provider == created
    assert provider["cas"] == "B"
    assert provider["cui"] == cui and provider["code"] == cui  # RO prefix off; code defaults to it
    assert provider["fiscal_attribute"] == "RO"  # "RO…" is a VAT payer's CUI
    assert provider["org_type"] == "CMI"
    assert provider["legal_representative"] == {"name": "Ana Țărănescu", "cnp": cnp}
    for field, value in FULL.items():
        if field != "org_type":
            assert provider[field] == value, field
    assert provider["has_key"] is False and provider["key_id"] is None and provider["keys"] == []
    assert provider["external_user"] is None
    assert provider["created_by"] == "cnas.admin" and provider["updated_by"] == "cnas.admin"


async def test_defaults_and_a_person_identified_by_cnp(keygen, county):
    cnp = new_cnp()
    response = await keygen.post("/v1/providers", headers=county("B"),
                                 json={"cas": "B", "cui": cnp, "name": "Ion Popescu PFA"})
    assert response.status == 201, await response.text()
    provider = await response.json()
    assert (provider["cui"], provider["code"], provider["country"], provider["currency"]) == \
        (cnp, cnp, "ROM", "RON")
    assert provider["legal_representative"] is None


async def test_wrong_check_digits_are_422_naming_the_field(keygen, national):
    cases = [
        ({"cui": bad_check_digit(new_cui())}, "cui", "check digit"),
        ({"cui": bad_check_digit(new_cnp())}, "cui", "check digit"),
        ({"legal_representative": {"name": "Ion Pop", "cnp": bad_check_digit(new_cnp())}},
         "legal_representative.cnp", "check digit"),
        ({"name": ""}, "name", "required"),
        ({"valid_from": "2026-01-01", "valid_to": "2025-01-01"}, "valid_to", "valid_from"),
        ({"cui_date": "15.03.2004"}, "cui_date", "YYYY-MM-DD"),
        ({"cas": "CNAS"}, "cas", "county house"),
        ({"colour": "blue"}, "colour", "unknown"),
    ]
    for fields, name, words in cases:
        response = await keygen.post("/v1/providers", headers=national, json=provider_body(**fields))
        body = await problem(response, 422)
        assert words in body["errors"][name], (fields, body)


async def test_unreadable_bodies_are_400(keygen, national):
    for data, content_type in ((b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                               (b"cas=B", "application/x-www-form-urlencoded")):
        response = await keygen.post("/v1/providers", headers={**national, "Content-Type": content_type},
                                     data=data)
        await problem(response, 400)


async def test_same_cui_twice_in_a_house_is_409_but_another_house_may_have_it(keygen, national):
    first = await make_provider(keygen, national, cas="CJ")
    again = await keygen.post("/v1/providers", headers=national,
                              json=provider_body(cas="CJ", cui=f"RO{first['cui']}", name="Alt nume"))
    body = await problem(again, 409)
    assert body["errors"] == {"cui": "already registered at this house"}
    assert body["provider_id"] == first["id"]
    elsewhere = await keygen.post("/v1/providers", headers=national,
                                  json=provider_body(cas="SB", cui=first["cui"]))
    assert elsewhere.status == 201, await elsewhere.text()


async def test_a_county_operator_sees_and_changes_only_their_house(keygen, national, county):
    theirs = await make_provider(keygen, national, cas="CJ")
    mine = await make_provider(keygen, county("B"), cas="B")
    b = county("B")

    refused = await keygen.post("/v1/providers", headers=b, json=provider_body(cas="CJ"))
    assert "only act for house B" in (await problem(refused, 403))["detail"]
    for method, path, body in (
        ("GET", f"/v1/providers/{theirs['id']}", None),
        ("PATCH", f"/v1/providers/{theirs['id']}", {"name": "Schimbat"}),
        ("GET", f"/v1/providers/{theirs['id']}/history", None),
        ("POST", f"/v1/providers/{theirs['id']}/activation-key", {"reset": False}),
        ("GET", "/v1/providers/not-a-uuid", None),
        ("GET", "/v1/providers/00000000-0000-4000-8000-000000000000", None),
    ):
        response = await keygen.request(method, path, headers=b, json=body)
        assert (await problem(response, 404))["detail"] == "no such provider", path

    listing = await (await keygen.get("/v1/providers", headers=b, params={"cas": "CJ"})).json()
    assert {p["cas"] for p in listing["items"]} == {"B"}
    assert mine["id"] in {p["id"] for p in listing["items"]}
    for cas in ("CJ", "B"):  # CNAS sees every house
        response = await keygen.get("/v1/providers", headers=national, params={"cas": cas, "per_page": 100})
        assert {p["cas"] for p in (await response.json())["items"]} == {cas}

    assert (await keygen.get("/v1/providers")).status == 401
    viewer = county("B", rights=("providers:read",))
    assert (await keygen.get(f"/v1/providers/{mine['id']}", headers=viewer)).status == 200
    for method, path, body in (("POST", "/v1/providers", provider_body()),
                               ("PATCH", f"/v1/providers/{mine['id']}", {"name": "X"}),
                               ("POST", f"/v1/providers/{mine['id']}/activation-key", {"reset": False})):
        await problem(await keygen.request(method, path, headers=viewer, json=body), 403)


async def test_list_searches_pages_and_counts(keygen, national, county):
    # House TL is used only by this test in the session's database.
    made = []
    for n in range(25):
        made.append(await make_provider(keygen, national, cas="TL",
                                        name=f"Farmacia Dunărea {n:02d}", code=f"TL-F{n:02d}"))
    tl = county("TL")
    response = await keygen.get("/v1/providers", headers=tl, params={"per_page": 10, "page": 3})
    page = await response.json()
    assert (page["total"], page["pages"], page["page"], page["per_page"]) == (25, 3, 3, 10)
    assert [p["name"] for p in page["items"]] == [f"Farmacia Dunărea {n:02d}" for n in range(20, 25)]
    assert page["items"][0]["has_key"] is False

    async def found(q: str) -> list[str]:
        body = await (await keygen.get("/v1/providers", headers=tl, params={"q": q, "per_page": 100})).json()
        assert body["total"] == len(body["items"])
        return [p["id"] for p in body["items"]]

    assert len(await found("dunarea")) == 25  # without diacritics, any case
    assert await found(made[7]["cui"]) == [made[7]["id"]]
    assert await found("tl-f13") == [made[13]["id"]]
    assert await found("100%") == []  # LIKE wildcards are plain characters
    assert await found("nimic de acest fel") == []

    beyond = await (await keygen.get("/v1/providers", headers=tl, params={"page": 9})).json()
    assert beyond["items"] == [] and beyond["total"] == 25 and beyond["pages"] == 2
    for params, name in (({"per_page": 7}, "per_page"), ({"page": 0}, "page"),
                         ({"page": "x"}, "page"), ({"cas": "XX"}, "cas"), ({"q": "a" * 101}, "q")):
        body = await problem(await keygen.get("/v1/providers", headers=tl, params=params), 422)
        assert name in body["errors"]


async def test_edits_are_validated_and_kept_in_the_history(keygen, national, county):
    b = county("B", username="clerk.b")
    provider = await make_provider(keygen, b, cas="B", name="SC Alfa SRL", locality="Otopeni")
    path = f"/v1/providers/{provider['id']}"

    response = await keygen.patch(path, headers=b, json={"name": "SC Alfa Med SRL", "locality": None,
                                                         "print_order": 3})
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert (changed["name"], changed["locality"], changed["print_order"]) == ("SC Alfa Med SRL", None, 3)
    assert changed["updated_by"] == "clerk.b" and changed["cui"] == provider["cui"]

    unchanged = await keygen.patch(path, headers=b, json={"name": "SC Alfa Med SRL"})
    assert unchanged.status == 200

    for body, field, status in (({"cas": "CJ"}, "cas", 422), ({"cui": bad_check_digit(new_cui())}, "cui", 422),
                                ({"valid_from": "2027-01-01", "valid_to": "2026-01-01"}, "valid_to", 422),
                                ({"legal_representative": {"name": "Fără CNP"}}, "legal_representative.cnp", 422)):
        assert field in (await problem(await keygen.patch(path, headers=b, json=body), status))["errors"]

    other = await make_provider(keygen, b, cas="B")
    taken = await keygen.patch(path, headers=b, json={"cui": other["cui"]})
    assert (await problem(taken, 409))["provider_id"] == other["id"]
    fixed_cui = new_cui()
    response = await keygen.patch(path, headers=b, json={"cui": fixed_cui})
    assert response.status == 200 and (await response.json())["cui"] == fixed_cui

    history = await (await keygen.get(f"{path}/history", headers=b)).json()
    assert [h["action"] for h in history["items"]] == ["created", "updated", "updated"]
    first_edit = history["items"][1]
    assert first_edit["by"] == "clerk.b"
    assert first_edit["changes"] == {"name": {"old": "SC Alfa SRL", "new": "SC Alfa Med SRL"},
                                     "locality": {"old": "Otopeni", "new": None},
                                     "print_order": {"old": None, "new": 3}}
    assert history["items"][2]["changes"]["cui"] == {"old": provider["cui"], "new": fixed_cui}

    # Once a key was issued, the external user is named after the CUI: it stays.
    key = await issued_key(keygen, b, provider["id"])
    refused = await keygen.patch(path, headers=b, json={"cui": new_cui()})
    assert "cui" in (await problem(refused, 409))["errors"]

    # Every write is in the audit trail, refusals included, and never the serial.
    response = await keygen.get("/v1/audit", headers=national, params={"actor": "clerk.b", "cas": "B"})
    audit = [e for e in (await response.json())["items"] if e["target_id"] == provider["id"]]
    assert [(e["action"], e["result"]) for e in audit] == [
        ("POST /v1/providers", "ok"), ("PATCH /v1/providers/{id}", "ok"),
        ("PATCH /v1/providers/{id}", "ok"), *[("PATCH /v1/providers/{id}", "invalid")] * 4,
        ("PATCH /v1/providers/{id}", "conflict"), ("PATCH /v1/providers/{id}", "ok"),
        ("POST /v1/providers/{id}/activation-key", "ok"), ("PATCH /v1/providers/{id}", "conflict")]
    assert all(e["target_kind"] == "provider" and e["cas"] == "B" for e in audit)
    assert audit[-2]["details"] == {"key_id": key["key_id"], "reset": False}
    assert key["license_serial"] not in repr(audit)


async def test_openapi_documents_every_endpoint(keygen):
    doc = await (await keygen.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/providers", "/v1/providers/{id}", "/v1/providers/{id}/history",
            "/v1/providers/{id}/activation-key", "/v1/activations"} <= set(doc["paths"])
    key = doc["paths"]["/v1/providers/{id}/activation-key"]["post"]["responses"]["201"]
    assert {"X-License-Serial", "X-Key-Id", "X-External-User", "Cache-Control"} <= set(key["headers"])
    assert {"application/json", "application/pdf"} <= set(key["content"])


async def raw_request(keygen, headers, method: str, path: str, body: dict, **raw_fields):
    """``body`` as JSON with ``raw_fields`` spliced in as they are written (a 5,000-digit
    number, an escaped lone surrogate): what a client may send, not what json.dumps makes."""
    text = json.dumps(body)
    extra = "".join(f', "{name}": {literal}' for name, literal in raw_fields.items())
    data = (text[:-1] + extra + "}") if body else "{" + extra[2:] + "}"
    return await keygen.request(method, path, data=data.encode(),
                                headers={**headers, "Content-Type": "application/json"})


async def test_a_number_too_long_to_read_is_422_naming_its_field(keygen, national):
    provider = await make_provider(keygen, national, cas="B")
    huge = "1" + "0" * 5000
    for method, path, body in (("POST", "/v1/providers", provider_body()),
                               ("PATCH", f"/v1/providers/{provider['id']}", {})):
        response = await raw_request(keygen, national, method, path, body, print_order=huge)
        assert (await problem(response, 422))["errors"] == {"print_order": "must be between 0 and 1000000"}
        response = await raw_request(keygen, national, method, path, body, print_order="-" + huge)
        assert (await problem(response, 422))["errors"] == {"print_order": "must be between 0 and 1000000"}
        response = await raw_request(keygen, national, method, path, body, print_order=1_000_001)
        assert "print_order" in (await problem(response, 422))["errors"]
    response = await raw_request(keygen, national, "POST", "/v1/providers", provider_body(name=None), name=huge)
    assert (await problem(response, 422))["errors"] == {"name": "must be a string, not number"}
    response = await raw_request(keygen, national, "POST", f"/v1/providers/{provider['id']}/activation-key",
                                 {}, reset=huge)
    assert list((await problem(response, 422))["errors"]) == ["reset"]
    response = await raw_request(keygen, national, "POST", "/v1/providers", {}, cas='"B", "x": 1' + "0" * 5000 + "]")
    await problem(response, 400)  # not JSON even so: still unreadable


async def test_dates_beyond_1900_2199_are_422_naming_the_field(keygen, national):
    provider = await make_provider(keygen, national, cas="B")
    for field in ("cui_date", "fiscal_attribute_date", "registered_on", "valid_from", "valid_to"):
        for bad, words in (("9999-12-31", "after 2199"), ("0001-01-01", "before 1900")):
            for method, path, body in (("POST", "/v1/providers", provider_body(**{field: bad})),
                                       ("PATCH", f"/v1/providers/{provider['id']}", {field: bad})):
                response = await keygen.request(method, path, headers=national, json=body)
                errors = (await problem(response, 422))["errors"]
                assert list(errors) == [field] and words in errors[field], (method, field, errors)


BAD_TEXT = {"NUL": ("\x00", "control characters"), "C0": ("\x1b", "control characters"),
            "lone surrogate": ("\ud800", "lone surrogate"), "bidi override": ("\u202e", "text-direction"),
            "bidi isolate": ("\u2067", "text-direction"), "zero-width": ("\u200b", "invisible"),
            "BOM": ("\ufeff", "invisible"), "soft hyphen": ("\u00ad", "invisible")}


async def test_controls_surrogates_bidi_and_invisible_characters_are_422_naming_the_field(keygen, national):
    provider = await make_provider(keygen, national, cas="B")
    for kind, (bad, words) in BAD_TEXT.items():
        cnp = new_cnp()
        for field, body in (("name", {"name": f"SC ALFA{bad} SRL"}),
                            ("trade_register_no", {"trade_register_no": f"J40/10{bad}/3456"}),
                            ("locality", {"locality": f"Otopeni{bad}"}),
                            ("description", {"description": f"{bad}Clinică"}),
                            ("code", {"code": f"P{bad}1"}),
                            ("legal_representative.name", {"legal_representative": {"name": f"Ion{bad} Pop", "cnp": cnp}}),
                            ("legal_representative.cnp", {"legal_representative": {"name": "Ion Pop", "cnp": cnp + bad}}),
                            ("cui", {"cui": new_cui() + bad})):
            for method, path, json_body in (("POST", "/v1/providers", provider_body(**body)),
                                            ("PATCH", f"/v1/providers/{provider['id']}", body)):
                response = await keygen.request(method, path, headers=national, json=json_body)
                errors = (await problem(response, 422))["errors"]
                assert list(errors) == [field] and words in errors[field], (kind, method, field, errors)
    response = await keygen.post("/v1/providers", headers=national, json={**provider_body(), "\ud800\x00": 1})
    assert (await problem(response, 422))["errors"] == {"\\ud800\\x00": "unknown field"}
    unchanged = await (await keygen.get(f"/v1/providers/{provider['id']}", headers=national)).json()
    assert unchanged == provider


async def test_path_ids_that_are_not_uuids_are_404_problems(keygen, national):
    for raw_id in ("not-a-uuid", "1" * 5000, "%00", "%ED%A0%80", "%E2%80%AE", "12345678-1234-5678-1234-56781234567"):
        for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "X"}), ("GET", "/history", None),
                                     ("POST", "/activation-key", {"reset": False})):
            url = URL(f"/v1/providers/{raw_id}{suffix}", encoded=True)
            response = await keygen.request(method, url, headers=national, json=body)
            if raw_id == "%00":  # NUL is not text: the shared input layer answers 400
                assert "id" in (await problem(response, 400))["errors"], (method, raw_id, suffix)
                continue
            assert (await problem(response, 404))["detail"] == "no such provider", (method, raw_id[:20], suffix)
