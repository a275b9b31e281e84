"""Bad input on every JSON write endpoint of every service: a clear RFC 9457 problem,
never a 500 nor a traceback. Endpoints come from each service's /openapi.json."""
from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"
NO_TOKEN_NEEDED = ("/v1/sessions", "/v1/activations", "/v1/online")


async def write_endpoints(http, stack):
    for service in ("keygen", "users", "certs", "ocsp"):
        async with http.get(stack.url(service, "/openapi.json")) as r:
            doc = await r.json()
        for path, operations in doc["paths"].items():
            for method in operations:
                # The online channel lives on the TLS port; its own tests cover it.
                if method in ("post", "put", "patch") and path.startswith("/v1/") \
                        and not path.startswith("/v1/online"):
                    yield service, method.upper(), re.sub(r"\{\w+\}", "00000000-0000-0000-0000-000000000000", path), path


async def answer(http, method, url, **kw):
    async with http.request(method, url, **kw) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def test_missing_token_malformed_json_and_wrong_types(stack, http, admin_headers):
    checked = 0
    async for service, method, url_path, path in write_endpoints(http, stack):
        url = stack.url(service, url_path)
        where = f"{method} {service}{path}"
        if not path.startswith(NO_TOKEN_NEEDED):
            status, ctype, text = await answer(http, method, url, json={})
            assert status == 401 and ctype.startswith(PROBLEM), f"{where} without a token: {status} {text[:200]}"
            assert json.loads(text)["detail"]

        status, ctype, text = await answer(http, method, url, data=b'{"name": "unterminated',
                                           headers={**admin_headers, "Content-Type": "application/json"})
        assert status in (400, 404, 422) and ctype.startswith(PROBLEM), f"{where} malformed: {status} {text[:200]}"
        assert "Traceback" not in text

        status, ctype, text = await answer(http, method, url, json={"name": ["not", "a", "string"], "reset": "yes",
                                                                    "suspended": "maybe", "roles": "admin"},
                                           headers=admin_headers)
        assert 400 <= status < 500 and ctype.startswith(PROBLEM), f"{where} wrong types: {status} {text[:200]}"
        checked += 1
    assert checked >= 10


async def test_unknown_route_and_method_are_problems(stack, http):
    status, ctype, _ = await answer(http, "GET", stack.url("keygen", "/v1/nothing-here"))
    assert status == 404 and ctype.startswith(PROBLEM)
    status, ctype, _ = await answer(http, "DELETE", stack.url("certs", "/v1/issuers"))
    assert status == 405 and ctype.startswith(PROBLEM)
