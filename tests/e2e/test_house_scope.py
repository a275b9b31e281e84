"""A house-B operator against house-CJ data, on every endpoint of every service.

The endpoints are read from each service's own /openapi.json, so an endpoint added later
is walked too. A house-B admin (every right of a house) must neither read nor change
anything of house CJ: writes never succeed, and no answer carries CJ's identifiers."""
from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
from datetime import datetime, timezone

import jwt
import pytest

from tests.support.identities import new_cui
from tests.support.pki import client, demo_issuer
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
SKIPPED_PREFIXES = ("/v1/sessions", "/v1/activations", "/v1/online")
WRITES = {"post", "put", "patch", "delete"}


def certificate_for(pki, cui: str) -> str:
    """A provider certificate with ``cui`` as its CN, issued by the demo issuing authority."""
    return client(demo_issuer(pki), cui, now=datetime.now(timezone.utc)).pem


async def call(http, method, url, headers, body=None):
    async with http.request(method, url, headers=headers, json=body) as r:
        return r.status, await r.text()


@pytest.fixture
async def cj_world(stack, pki, http, admin_headers):
    """House CJ data made by the national admin: provider, key, external user, certificate,
    a staff member, and an OCSP log entry of the CJ provider."""
    cui = new_cui()
    status, text = await call(http, "POST", stack.url("keygen", "/v1/providers"), admin_headers,
                              {"cas": "CJ", "cui": cui, "name": "CABINET CLUJ SRL"})
    assert status == 201, text
    provider = json.loads(text)
    status, text = await call(http, "POST", stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key"),
                              admin_headers, {"reset": False})
    assert status == 201, text
    key = json.loads(text)
    external = key["external_user"]
    status, text = await call(http, "POST", stack.url("users", "/v1/users"), admin_headers, {
        "username": f"staff.cj.{cui}", "password": "Parola-Cluj-2026!", "cas": "CJ",
        "employee_code": "CJ-77", "employee_name": "Maria Ardeleanu", "roles": ["house-operator"]})
    assert status == 201, text
    await call(http, "POST", stack.url("certs", "/v1/issuers"), admin_headers,
               {"certificate_pem": pki.demo_issuer_cert.read_text()})
    pem = certificate_for(pki, cui)

    async def register():
        status, text = await call(http, "POST", stack.url("certs", "/v1/certificates"), admin_headers,
                                  {"username": external, "certificate_pem": pem})
        return json.loads(text) if status == 201 else None

    certificate = await eventually(register, what="CJ certificate registered")
    status, text = await call(http, "GET", stack.url("certs", "/v1/issuers"), admin_headers)
    issuers = json.loads(text)
    issuer_id = (issuers["items"] if isinstance(issuers, dict) else issuers)[0]["id"]
    # An OCSP answer for the CJ certificate puts a CJ entry in the OCSP log.
    cert_file = stack.data_dir / f"cj-{cui}.pem"
    cert_file.write_text(pem)
    await asyncio.to_thread(subprocess.run, [
        "openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(cert_file),
        "-url", stack.url("ocsp", "/"), "-noverify"], capture_output=True, timeout=15)
    return {"cui": cui, "provider_id": provider["id"], "key_id": key["key_id"], "external": external,
            "staff": f"staff.cj.{cui}", "certificate_id": certificate["id"], "issuer_id": issuer_id}


@pytest.fixture
async def b_admin_headers(stack, http, admin_headers):
    username = f"admin.b.{random.randint(1000, 9999)}"
    status, text = await call(http, "POST", stack.url("users", "/v1/users"), admin_headers, {
        "username": username, "password": "Parola-Bucuresti-2026!", "cas": "B",
        "employee_code": "B-1", "employee_name": "Ion Popescu", "roles": ["house-admin"]})
    assert status == 201, text
    status, text = await call(http, "POST", stack.url("users", "/v1/sessions"), {},
                              {"username": username, "password": "Parola-Bucuresti-2026!"})
    assert status in (200, 201), text
    return {"Authorization": f"Bearer {json.loads(text)['token']}"}


def fill(path: str, service: str, world: dict, username_key: str) -> str:
    values = {"id": {"keygen": world["provider_id"], "certs": world["certificate_id"]}.get(service),
              "username": world[username_key], "issuer_id": world["issuer_id"]}
    if service == "certs" and path.startswith("/v1/issuers/"):
        values["id"] = world["issuer_id"]
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1)) or "unknown"), path)


def body_for(method: str, path: str) -> dict | None:
    if method == "delete" or method == "get":
        return None
    if path.endswith("/roles"):
        return {"roles": ["house-viewer"]}
    if path.endswith("/activation-key"):
        return {"reset": True}
    if path.endswith("/revoke"):
        return {"reason": "keyCompromise"}
    if path.startswith("/v1/certificates/"):
        return {"suspended": True}
    if method == "post":
        return {"cas": "CJ", "cui": "18547290", "name": "X", "username": "x_CAS-CJ", "password": "Parola-Lunga-2026!",
                "employee_code": "1", "employee_name": "X", "roles": [], "serial": "1"}
    return {"name": "SCHIMBAT DE B", "employee_name": "SCHIMBAT DE B"}


async def house_b_ocsp_entry(stack, pki, http, admin_headers) -> str:
    """A house-B certificate answered once by OCSP (an entry of house B in the log); its serial."""
    cui = new_cui()
    status, text = await call(http, "POST", stack.url("keygen", "/v1/providers"), admin_headers,
                              {"cas": "B", "cui": cui, "name": "CABINET BUCURESTI SRL"})
    assert status == 201, text
    status, text = await call(http, "POST", stack.url("keygen", f"/v1/providers/{json.loads(text)['id']}/activation-key"),
                              admin_headers, {"reset": False})
    assert status == 201, text
    pem = certificate_for(pki, cui)

    async def register():
        status, text = await call(http, "POST", stack.url("certs", "/v1/certificates"), admin_headers,
                                  {"username": f"{cui}_CAS-B", "certificate_pem": pem})
        return json.loads(text) if status == 201 else None

    certificate = await eventually(register, what="B certificate registered")
    cert_file = stack.data_dir / f"b-{cui}.pem"
    cert_file.write_text(pem)

    async def answered_good():  # the registration reaches the responder within a second
        done = await asyncio.to_thread(subprocess.run, [
            "openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(cert_file),
            "-url", stack.url("ocsp", "/"), "-noverify"], capture_output=True, text=True, timeout=15)
        return f"{cert_file}: good" in done.stdout

    await eventually(answered_good, what="the B certificate answered good")
    return certificate["serial"]


async def test_a_house_b_admin_cannot_touch_house_cj(stack, pki, http, admin_headers, b_admin_headers, cj_world):
    secrets_of_cj = [cj_world["cui"], cj_world["external"], cj_world["staff"], cj_world["provider_id"],
                     cj_world["certificate_id"], cj_world["key_id"]]
    b_admin_name = jwt.decode(b_admin_headers["Authorization"].split()[1], options={"verify_signature": False})["sub"]
    walked = 0
    for service in ("keygen", "users", "certs", "ocsp"):
        status, text = await call(http, "GET", stack.url(service, "/openapi.json"), {})
        assert status == 200
        for path, operations in json.loads(text)["paths"].items():
            if not path.startswith("/v1/") or path.startswith(SKIPPED_PREFIXES) or path == "/v1/log/stream":
                continue
            for method in operations:
                if method not in WRITES | {"get"}:
                    continue
                for username_key in (("external", "staff") if "{username}" in path else ("external",)):
                    url = stack.url(service, fill(path, service, cj_world, username_key))
                    query = "?cas=CJ" if method == "get" and "{" not in path else ""
                    status, text = await call(http, method.upper(), url + query, b_admin_headers,
                                              body_for(method, path))
                    walked += 1
                    where = f"{method.upper()} {service}{path} -> {status}: {text[:300]}"
                    assert status != 500, where
                    if method in WRITES:
                        assert status >= 400, where
                    if status < 400:
                        if path == "/v1/audit":
                            # The walker's own refused attempts name the ids it typed itself.
                            text = json.dumps([item for item in json.loads(text)["items"]
                                               if item["actor"] != b_admin_name])
                        leaked = [s for s in secrets_of_cj if s in text]
                        assert not leaked, where
    assert walked >= 25

    # The live log stream, too, shows a B admin nothing of CJ: everything it delivers up to
    # a B entry written after CJ's (the sentinel) is of house B.
    sentinel = await house_b_ocsp_entry(stack, pki, http, admin_headers)
    seen = b""
    async with http.get(stack.url("ocsp", "/v1/log/stream?cas=CJ&after=0"), headers=b_admin_headers) as r:
        assert r.status == 200
        while sentinel.encode() not in seen:
            seen += await asyncio.wait_for(r.content.readany(), 10)
    assert cj_world["external"].encode() not in seen and cj_world["cui"].encode() not in seen

    # Nothing of CJ changed.
    status, text = await call(http, "GET", stack.url("keygen", f"/v1/providers/{cj_world['provider_id']}"), admin_headers)
    provider = json.loads(text)
    assert provider["name"] == "CABINET CLUJ SRL" and provider["key_id"] == cj_world["key_id"]
    status, text = await call(http, "GET", stack.url("certs", f"/v1/certificates/{cj_world['certificate_id']}"), admin_headers)
    certificate = json.loads(text)
    assert certificate["suspended"] is False and certificate["status"] == "active"
    status, text = await call(http, "GET", stack.url("users", f"/v1/users/{cj_world['staff']}"), admin_headers)
    assert status == 200 and json.loads(text)["employee_name"] == "Maria Ardeleanu"
