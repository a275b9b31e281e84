"""Issuing authorities ("Autoritati emitente") through the real certs app, PostgreSQL
and RabbitMQ, with CA certificates made by the openssl CLI."""
from __future__ import annotations

import base64

from tests.support.certs_api import problem_errors, register_issuer, unique
from tests.support.openssl_ca import SEED_DN, SEED_SUBJ, openssl_cert_id


async def test_seed_dn_round_trips_and_is_found_however_written(certs, ossl, bus, auth_for):
    ca = ossl.ca(SEED_SUBJ, key="ec")
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS", username="admin"))

    assert issuer["subject_dn"] == SEED_DN
    # The hashes OCSP clients put in their CertIDs, as openssl computes them.
    for digest in ("sha1", "sha256"):
        expected = openssl_cert_id(ca.cert, ["-serial", "12"], digest)
        assert issuer["hashes"][digest] == {"name": expected["name"], "key": expected["key"]}
    event = await bus.one("certs.issuer_registered", issuer_id=issuer["id"])
    assert event.data["subject_dn"] == SEED_DN and event.data["certificate_pem"] == ca.pem
    assert event.cas == "CNAS"

    county = auth_for(cas="B")
    for spelling in ("cn=msanatatii ca, o=Ministerul  Sanatatii,l=Bucuresti;st=romania ,c=ro",
                     "CN=MSANATATII CA,O=MINISTERUL SANATATII,L=BUCURESTI,ST=ROMANIA,C=RO",
                     " countryName = RO + stateOrProvinceName=ROMANIA, L=BUCURESTI, "
                     "organizationName=\"MINISTERUL SANATATII\", commonName=MSANATATII CA"):
        response = await certs.get("/v1/issuers", params={"dn": spelling}, headers=county)
        assert response.status == 200
        assert [i["id"] for i in (await response.json())["items"]] == [issuer["id"]], spelling

    response = await certs.get(f"/v1/issuers/{issuer['id']}", headers=county)
    assert response.status == 200
    detail = await response.json()
    assert detail["certificate_pem"] == ca.pem and detail["subject_dn"] == SEED_DN
    response = await certs.get(detail["certificate_url"], headers=county)
    assert response.status == 200 and await response.text() == ca.pem


async def test_long_dn_with_organization_identifier_round_trips(certs, ossl, auth_for):
    cn = unique("CERTSIGN QUALIFIED 2023 RSA CA ")
    ca = ossl.ca(f"/C=RO/O=CERTSIGN SA/CN={cn}/organizationIdentifier=VATRO-18288250", key="rsa")
    national = auth_for(cas="CNAS")
    # Uploaded as base64 DER this time, not PEM.
    response = await certs.post("/v1/issuers", json={"certificate_pem": base64.b64encode(ca.der()).decode()},
                                headers=national)
    assert response.status == 201, await response.text()
    issuer = await response.json()
    dn = f"C=RO, O=CERTSIGN SA, CN={cn}, 2.5.4.97=VATRO-18288250"
    assert issuer["subject_dn"] == dn

    for spelling in (dn, f"organizationIdentifier=VATRO-18288250, CN={cn.lower()}, O=CERTSIGN SA, C=RO",
                     f"OID.2.5.4.97=vatro-18288250,cn={cn},o=certsign sa,c=ro"):
        response = await certs.get("/v1/issuers", params={"dn": spelling}, headers=national)
        assert [i["subject_dn"] for i in (await response.json())["items"]] == [dn], spelling

    response = await certs.get("/v1/issuers", headers=auth_for(cas="CJ"))
    assert dn in [i["subject_dn"] for i in (await response.json())["items"]]


async def test_only_cnas_registers_or_replaces_authorities(certs, ossl, auth_for):
    ca = ossl.ca(f"/C=RO/O=Test/CN={unique('COUNTY TRY CA ')}")
    # A county operator whose token lists every right is still refused: the rule is national.
    response = await certs.post("/v1/issuers", json={"certificate_pem": ca.pem}, headers=auth_for(cas="B"))
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    issuer = await register_issuer(certs, ca, auth_for(cas="CNAS"))
    response = await certs.put(f"/v1/issuers/{issuer['id']}", json={"certificate_pem": ca.pem},
                               headers=auth_for(cas="CJ"))
    assert response.status == 403
    response = await certs.get("/v1/issuers", headers=auth_for(cas="B", rights=("certificates:read",)))
    assert response.status == 403
    response = await certs.get("/v1/issuers")
    assert response.status == 401


async def test_same_dn_twice_is_a_conflict_however_spelled(certs, ossl, auth_for):
    cn = unique("DUPLICATE CA ")
    national = auth_for(cas="CNAS")
    await register_issuer(certs, ossl.ca(f"/C=RO/O=Casa/CN={cn}"), national)
    # Another key, the same DN in other case and attribute order.
    again = ossl.ca(f"/CN={cn.lower()}/O=CASA/C=ro")
    response = await certs.post("/v1/issuers", json={"certificate_pem": again.pem}, headers=national)
    assert response.status == 409, await response.text()


async def test_unacceptable_uploads_are_clear_problems(certs, ossl, auth_for):
    national = auth_for(cas="CNAS")
    end_entity = ossl.ca(f"/C=RO/CN={unique('NOT A CA ')}", ca=False)
    for body in ({"certificate_pem": end_entity.pem}, {"certificate_pem": "hello"},
                 {"certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
                 {}, {"certificate_pem": 12}, {"certificate_pem": "x", "name": "y"}):
        response = await certs.post("/v1/issuers", json=body, headers=national)
        assert response.status == 422, (body, await response.text())
        assert problem_errors(await response.text())
    response = await certs.post("/v1/issuers", data=b"{not json", headers={**national, "Content-Type": "application/json"})
    assert response.status == 400
    response = await certs.get("/v1/issuers/not-an-id", headers=national)
    assert response.status == 404
    response = await certs.get("/v1/issuers", params={"dn": "CN"}, headers=national)
    assert response.status == 422 and "dn" in problem_errors(await response.text())


async def test_renewed_ca_certificate_replaces_the_old_one(certs, ossl, bus, auth_for):
    subj = f"/C=RO/O=Casa/CN={unique('RENEWED CA ')}"
    national = auth_for(cas="CNAS")
    issuer = await register_issuer(certs, ossl.ca(subj, days=30), national)
    renewed = ossl.ca(subj, days=3650)
    response = await certs.put(f"/v1/issuers/{issuer['id']}", json={"certificate_pem": renewed.pem}, headers=national)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["certificate_pem"] == renewed.pem and body["not_after"] > issuer["not_after"]
    assert body["hashes"]["sha1"]["key"] != issuer["hashes"]["sha1"]["key"]
    event = await bus.one("certs.issuer_updated", issuer_id=issuer["id"])
    assert event.data["certificate_pem"] == renewed.pem

    other = ossl.ca(f"/C=RO/O=Casa/CN={unique('OTHER CA ')}")
    response = await certs.put(f"/v1/issuers/{issuer['id']}", json={"certificate_pem": other.pem}, headers=national)
    assert response.status == 422 and "certificate_pem" in problem_errors(await response.text())
    response = await certs.put("/v1/issuers/00000000-0000-0000-0000-000000000000",
                               json={"certificate_pem": renewed.pem}, headers=national)
    assert response.status == 404


async def test_openapi_documents_every_endpoint(certs):
    response = await certs.get("/openapi.json")
    doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/issuers", "/v1/issuers/{id}", "/v1/certificates", "/v1/certificates/{id}",
            "/v1/certificates/{id}/revoke", "/v1/issuers/{id}/refresh-status", "/v1/trusted-list",
            "/v1/trusted-list/apply"} <= set(doc["paths"])
    assert "patch" in doc["paths"]["/v1/issuers/{id}"]
    issuer = doc["components"]["schemas"]["Issuer"]["properties"]
    assert {"crl_urls", "status_checked_at", "crl_this_update", "crl_next_update", "status_error"} <= set(issuer)
    certificate = doc["components"]["schemas"]["Certificate"]["properties"]
    assert {"issuer_status", "issuer_revoked_at", "issuer_revocation_reason"} <= set(certificate)


async def test_a_pathological_pem_is_refused_fast_and_nobody_waits_behind_it(certs, auth_for):
    """Regression: a 68 kB certificate_pem of repeated BEGIN lines held the event loop 6 s
    in a quadratic regex (1 MiB: ~25 minutes), so no house could suspend anything."""
    import asyncio
    import time

    national = auth_for(cas="CNAS")
    for text in ("-----BEGIN A-----" * 3800, "-----BEGIN A-----\n" * 3500, "x" * 70_000):
        started = time.perf_counter()
        upload = asyncio.ensure_future(certs.post("/v1/issuers", json={"certificate_pem": text}, headers=national))
        health = await certs.get("/healthz")
        assert health.status == 200 and time.perf_counter() - started < 1.0
        response = await upload
        assert response.status == 422 and "certificate_pem" in (await response.json())["errors"]
        assert time.perf_counter() - started < 2.0
