"""Issuing authorities from the national Trusted List (ETSI TS 119 612): a list built in the
test and signed with signxml as the list operator, uploaded (verified, its difference
shown), applied in one action; the same list twice changes nothing; a withdrawn service is
flagged, not deleted; a tampered or foreign-signed copy, a DTD and an oversized body are refused."""
from __future__ import annotations

import pytest

from services.certs.app import create_app
from services.certs.config import Config
from services.certs.pki import issuer_facts
from shared.clock import utc_now
from tests.support import pki
from tests.support.certs_api import register_issuer, unique
from tests.support.trusted_list import TSA_QTST, WITHDRAWN, Service, signed

XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def operator():
    return pki.certificate("Autoritatea pentru Digitalizarea Romaniei TL Signer", now=utc_now())


@pytest.fixture
async def certs(aiohttp_client, common_config, operator, tmp_path):
    path = tmp_path / "tl-operator.pem"
    path.write_text(operator.pem)
    config = Config(common=common_config, port=0, crl_fetch=False, trusted_list_operator_cert=path,
                    trusted_list_max_bytes=200_000)
    return await aiohttp_client(create_app(config))


def dn(ca) -> str:
    """The DN as certs shows it (C=RO, CN=...: the encoded order)."""
    return issuer_facts(ca.pem).subject_dn


def _ca(name: str):
    return pki.root_ca(name, now=utc_now())


async def _upload(certs, body: bytes, headers, status: int = 200) -> dict:
    response = await certs.post("/v1/trusted-list", data=body, headers={**headers, **XML})
    assert response.status == status, await response.text()
    return await response.json()


async def _apply(certs, headers, **body) -> dict:
    response = await certs.post("/v1/trusted-list/apply", json=body, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def _dns(items: list[dict]) -> set[str]:
    return {item["subject_dn"] for item in items}


async def test_import_diff_apply_idempotent_and_withdrawn(certs, bus, operator, auth_for):
    national = auth_for(cas="CNAS", username="admin")
    by_hand, g4, digisign = _ca(unique("certSIGN Qualified CA ")), _ca(unique("certSIGN G4 ")), \
        _ca(unique("DigiSign Qualified CA "))
    gone, later = _ca(unique("Old CA ")), _ca(unique("Trans Sped Qualified CA "))
    registered = await register_issuer(certs, by_hand, national)  # typed in by CNAS before
    first = [Service("CERTSIGN SA", "certSIGN Qualified CA Class 3", by_hand),
             Service("CERTSIGN SA", "certSIGN Qualified CA G4", g4),
             Service("DIGISIGN SA", "DigiSign Qualified CA", digisign),
             Service("OLD SA", "Old CA", gone, status=WITHDRAWN),   # not granted: not offered
             Service("CERTSIGN SA", "certSIGN Qualified TSA", g4, type=TSA_QTST)]  # not a CA/QC service
    document = signed(first, operator, sequence=41)

    diff = await _upload(certs, document, national)
    assert diff["sequence_number"] == 41 and diff["territory"] == "RO"
    assert _dns(diff["new"]) == {dn(g4), dn(digisign)}
    assert [(c["issuer_id"], c["changes"]) for c in diff["changed"]] == [(registered["id"], ["listed"])]
    assert diff["withdrawn"] == [] and diff["unchanged"] == 0

    result = await _apply(certs, national, import_id=diff["import_id"])
    assert _dns(result["added"]) == {dn(g4), dn(digisign)}
    assert [u["issuer_id"] for u in result["updated"]] == [registered["id"]] and result["flagged"] == []
    for added in result["added"]:
        await bus.one("certs.issuer_registered", issuer_id=added["issuer_id"])
    issuers = {i["subject_dn"]: i for i in (await (await certs.get("/v1/issuers", headers=national)).json())["items"]}
    assert issuers[dn(g4)]["trusted_list"]["service_name"] == "certSIGN Qualified CA G4"
    assert issuers[dn(g4)]["trusted_list"]["tsp_name"] == "CERTSIGN SA"
    assert issuers[dn(by_hand)]["trusted_list"]["status"].endswith("/granted")
    assert dn(gone) not in issuers

    # The same list again: nothing new, nothing applied.
    again = await _upload(certs, document, national)
    assert (again["new"], again["changed"], again["withdrawn"], again["unchanged"]) == ([], [], [], 3)
    nothing = await _apply(certs, national)
    assert (nothing["added"], nothing["updated"], nothing["flagged"]) == ([], [], [])

    # The next list: DigiSign withdrawn, a name changed, a new authority.
    second = [Service("CERTSIGN SA", "certSIGN Qualified CA Class 3 (2026)", by_hand),
              Service("CERTSIGN SA", "certSIGN Qualified CA G4", g4),
              Service("DIGISIGN SA", "DigiSign Qualified CA", digisign, status=WITHDRAWN),
              Service("TRANS SPED SRL", "Trans Sped Qualified CA", later)]
    diff = await _upload(certs, signed(second, operator, sequence=42), national)
    assert _dns(diff["new"]) == {dn(later)}
    assert [(c["subject_dn"], c["changes"]) for c in diff["changed"]] == [(dn(by_hand), ["names"])]
    assert [(w["subject_dn"], w["reason"]) for w in diff["withdrawn"]] == [(dn(digisign), f"status {WITHDRAWN}")]
    result = await _apply(certs, national)
    assert _dns(result["flagged"]) == {dn(digisign)}
    issuers = {i["subject_dn"]: i for i in (await (await certs.get("/v1/issuers", headers=national)).json())["items"]}
    flagged = issuers[dn(digisign)]["trusted_list"]  # still there, flagged
    assert flagged["withdrawn_at"] and flagged["status"] == WITHDRAWN
    assert issuers[dn(by_hand)]["trusted_list"]["service_name"] == "certSIGN Qualified CA Class 3 (2026)"
    audit = await (await certs.get("/v1/audit?actor=admin", headers=national)).json()
    assert any(e["action"] == "POST /v1/trusted-list/apply" for e in audit["items"])


async def test_a_tampered_or_foreign_list_is_refused(certs, operator, auth_for):
    national = auth_for(cas="CNAS", username="admin")
    ca = _ca(unique("Tamper CA "))
    document = signed([Service("SOME SA", "Some Qualified CA", ca)], operator, sequence=7)
    tampered = document.replace(b"Some Qualified CA</", b"Evil Qualified CA</")
    assert tampered != document
    refused = await _upload(certs, tampered, national, status=422)
    assert "signature does not verify" in refused["detail"]
    stranger = pki.certificate("Not the list operator", now=utc_now())
    refused = await _upload(certs, signed([Service("SOME SA", "Some Qualified CA", ca)], stranger), national, 422)
    assert "signature does not verify" in refused["detail"]
    unsigned = document.split(b"<ds:Signature")[0] + b"</TrustServiceStatusList>"
    assert (await _upload(certs, unsigned, national, status=422))["detail"]
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#">&lol2;</TrustServiceStatusList>')
    assert "document type" in (await _upload(certs, bomb, national, status=422))["detail"]
    assert "not well-formed" in (await _upload(certs, b"<a><b></a>", national, status=422))["detail"]
    big = await certs.post("/v1/trusted-list", data=b"<a>" + b" " * 300_000 + b"</a>", headers={**national, **XML})
    assert big.status == 413
    county = await certs.post("/v1/trusted-list", data=document, headers={**auth_for(cas="B"), **XML})
    assert county.status == 403
    as_json = await certs.post("/v1/trusted-list", json={"xml": "x"}, headers=national)
    assert as_json.status == 400
    # Nothing of it was kept: the list's authority is not offered, let alone registered.
    issuers = (await (await certs.get("/v1/issuers", headers=national)).json())["items"]
    assert dn(ca) not in {i["subject_dn"] for i in issuers}


async def test_no_operator_certificate_no_import(aiohttp_client, common_config, operator, auth_for, tmp_path):
    config = Config(common=common_config, port=0, crl_fetch=False,
                    trusted_list_operator_cert=tmp_path / "absent.pem")
    certs = await aiohttp_client(create_app(config))
    document = signed([Service("SOME SA", "Some Qualified CA", _ca(unique("Unconfigured CA ")))], operator)
    response = await certs.post("/v1/trusted-list", data=document,
                                headers={**auth_for(cas="CNAS", username="admin"), **XML})
    assert response.status == 409 and "SIUI_CERTS_TL_OPERATOR_CERT" in (await response.json())["detail"]


async def test_the_list_fetched_from_its_configured_address(aiohttp_client, aiohttp_server, common_config,
                                                            operator, auth_for, tmp_path):
    """CNAS sets SIUI_CERTS_TL_URL; "fetch" downloads the list (bounded like a CRL) and
    reads it as an upload; GET /v1/trusted-list says where it comes from and which list
    the issuers follow. A publisher that fails is a 502 saying why, never a 500."""
    from aiohttp import web

    ca = _ca(unique("Fetched Qualified CA "))
    published = {"body": signed([Service("FETCHED SA", "Fetched Qualified CA", ca)], operator, sequence=88),
                 "status": 200}

    async def serve(_request):
        return web.Response(body=published["body"], status=published["status"], content_type="application/xml")

    publisher = web.Application()
    publisher.router.add_get("/TSL-RO.xml", serve)
    server = await aiohttp_server(publisher)
    path = tmp_path / "tl-operator.pem"
    path.write_text(operator.pem)
    url = f"http://127.0.0.1:{server.port}/TSL-RO.xml"
    config = Config(common=common_config, port=0, crl_fetch=False, trusted_list_operator_cert=path,
                    trusted_list_url=url, crl_allow_loopback=True, crl_timeout_seconds=5.0,
                    trusted_list_max_bytes=200_000)
    certs = await aiohttp_client(create_app(config))
    national = auth_for(cas="CNAS", username="admin")

    status = await (await certs.get("/v1/trusted-list", headers=national)).json()
    assert status["source_url"] == url
    fetched = await certs.post("/v1/trusted-list/fetch", headers=national)
    assert fetched.status == 200, await fetched.text()
    diff = await fetched.json()
    assert diff["sequence_number"] == 88 and _dns(diff["new"]) == {dn(ca)}
    applied = await _apply(certs, national, import_id=diff["import_id"])
    assert _dns(applied["added"]) == {dn(ca)}
    status = await (await certs.get("/v1/trusted-list", headers=auth_for(cas="B"))).json()  # every house may look
    assert status["last_applied"]["sequence_number"] == 88
    assert status["last_applied"]["applied_by"] == "admin" and status["last_applied"]["sha256"] == diff["sha256"]

    published["status"] = 404
    failed = await certs.post("/v1/trusted-list/fetch", headers=national)
    assert failed.status == 502 and failed.content_type == "application/problem+json"
    assert "HTTP 404" in (await failed.json())["detail"]
    published.update(status=200, body=b"<a>" + b" " * 300_000 + b"</a>")
    failed = await certs.post("/v1/trusted-list/fetch", headers=national)
    assert failed.status == 502 and "more than 200000" in (await failed.json())["detail"]
    assert (await certs.post("/v1/trusted-list/fetch", headers=auth_for(cas="B"))).status == 403


async def test_without_an_address_fetch_says_to_upload(certs, auth_for):
    response = await certs.post("/v1/trusted-list/fetch", headers=auth_for(cas="CNAS", username="admin"))
    assert response.status == 409 and "SIUI_CERTS_TL_URL" in (await response.json())["detail"]
