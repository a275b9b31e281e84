"""The one input layer (shared.validation, shared.http.reading) through every real
service: input that once answered 500 now gets a 4xx problem naming what is wrong."""
from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.certs.app import create_app as certs_app
from services.certs.config import Config as CertsConfig
from services.keygen.app import create_app as keygen_app
from services.keygen.config import Config as KeygenConfig
from services.ocsp.app import create_app as ocsp_app
from services.ocsp.config import Config as OcspConfig
from services.users.app import create_app as users_app
from services.users.config import Config as UsersConfig
from shared.auth import ALL_RIGHTS
from shared.http.problems import PROBLEM_CT

DEEP = b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}"
# Each service's write that takes a JSON body, and a read with a list filter and an id.
WRITES = {"keygen": "/v1/providers", "users": "/v1/users", "certs": "/v1/certificates",
          "ocsp": "/v1/issuers/00000000-0000-0000-0000-000000000000/signer"}
READS = {"keygen": ("/v1/providers", "/v1/providers/{}"), "users": ("/v1/users", "/v1/users/{}"),
         "certs": ("/v1/certificates", "/v1/certificates/{}"), "ocsp": ("/v1/log", "/v1/issuers/{}/signer")}


@pytest.fixture(scope="module")
async def clients(common_config):
    apps = {"keygen": keygen_app(KeygenConfig(common=common_config, port=0)),
            "users": users_app(UsersConfig(common=common_config, port=0, admin_password="parola-de-test-2026")),
            "certs": certs_app(CertsConfig(common=common_config, port=0)),
            "ocsp": ocsp_app(OcspConfig(common=common_config, port=0, tls_port=0, workers=1))}
    started = {}
    for name, app in apps.items():
        client = TestClient(TestServer(app))
        await client.start_server()
        started[name] = client
    yield started
    for client in started.values():
        await client.close()


@pytest.fixture(scope="module")
def cnas(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_CT
    return await response.json()


@pytest.mark.parametrize("service", sorted(WRITES))
async def test_json_nested_a_thousand_deep_is_400(clients, cnas, service):
    method = clients[service].put if service == "ocsp" else clients[service].post
    response = await method(WRITES[service], data=DEEP, headers={**cnas, "Content-Type": "application/json"})
    assert "nested deeper" in (await problem(response, 400))["detail"]


@pytest.mark.parametrize("service", sorted(WRITES))
@pytest.mark.parametrize("text", ["nul \u0000 byte", "lone \ud800 surrogate", "bell \u0007"],
                         ids=["nul", "surrogate", "control"])
async def test_text_that_cannot_be_stored_is_422_naming_the_field(clients, cnas, service, text):
    body = json.dumps({"name": text, "username": "x"}).encode()  # json.dumps escapes \ud800 as JSON does
    method = clients[service].put if service == "ocsp" else clients[service].post
    response = await method(WRITES[service], data=body, headers={**cnas, "Content-Type": "application/json"})
    assert "name" in (await problem(response, 422))["errors"]


async def test_a_login_with_a_nul_or_surrogate_is_refused_not_500(clients):
    for username in ("ad\u0000min", "ad\ud800min"):
        response = await clients["users"].post("/v1/sessions", data=json.dumps({"username": username,
                                                                              "password": "x"}).encode(),
                                               headers={"Content-Type": "application/json"})
        assert response.status in (400, 422) and response.content_type == PROBLEM_CT


@pytest.mark.parametrize("digits", [str(2 ** 64), "1" + "0" * 5000], ids=["2^64", "5000-digits"])
async def test_numbers_beyond_64_bits_are_refused(clients, cnas, digits):
    response = await clients["keygen"].post("/v1/providers", data=b'{"print_order": %s}' % digits.encode(),
                                            headers={**cnas, "Content-Type": "application/json"})
    assert response.status in (400, 422) and response.content_type == PROBLEM_CT


@pytest.mark.parametrize("service", sorted(READS))
async def test_nul_and_surrogates_in_paths_and_filters_are_400(clients, cnas, service):
    listing, one = READS[service]
    for path in (one.format("%00"), one.format("%ED%A0%80"), listing + "?q=a%00b", listing + "?username=%00",
                 "/v1/audit?actor=%00"):
        response = await clients[service].get(path, headers=cnas)
        assert response.status in (400, 404), (path, response.status)
        assert response.content_type == PROBLEM_CT, path


@pytest.mark.parametrize("service,path", [
    ("keygen", "/v1/providers?page=9223372036854775808"), ("users", "/v1/users?page=99999999999999999999"),
    ("certs", "/v1/certificates?page=9223372036854775808"), ("keygen", "/v1/audit?after_id=9223372036854775808"),
    ("ocsp", "/v1/log?after=9223372036854775808"), ("ocsp", "/v1/log?before=1" + "0" * 30),
    ("ocsp", "/v1/log?limit=1_000"), ("ocsp", "/v1/log?from=9999-12-31T23:59:59-01:00"),
    ("ocsp", "/v1/log?serial=" + "9" * 5000)])
async def test_out_of_range_numbers_and_dates_are_422(clients, cnas, service, path):
    assert (await problem(await clients[service].get(path, headers=cnas), 422))["errors"]


async def test_a_last_event_id_beyond_64_bits_is_422(clients, cnas):
    response = await clients["ocsp"].get("/v1/log/stream", headers={**cnas, "Last-Event-ID": "9" * 30})
    assert "Last-Event-ID" in (await problem(response, 422))["errors"]


async def test_a_request_id_is_kept_only_when_it_looks_like_one(clients):
    kept = await clients["keygen"].get("/healthz", headers={"X-Request-Id": "desk-42.a_b"})
    assert kept.headers["X-Request-Id"] == "desk-42.a_b"
    for given in ("<script>alert(1)</script>", "a" * 200, "line\u2028break"):
        replaced = await clients["keygen"].get("/healthz", headers={"X-Request-Id": given})
        assert replaced.headers["X-Request-Id"] != given and len(replaced.headers["X-Request-Id"]) == 32
