"""Logging out ends the session in every service, not only in users: the others verify
tokens locally and learn of the logout from SessionRevoked."""
from __future__ import annotations

import random

import pytest

from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "Parola-Iesire-2026!"


async def test_a_logged_out_token_is_refused_by_every_service(stack, http, admin_headers):
    username = f"iesire.{random.randint(10_000, 99_999)}"
    async with http.post(stack.url("users", "/v1/users"), headers=admin_headers, json={
            "username": username, "password": PASSWORD, "cas": "B", "employee_code": "B-9",
            "employee_name": "Ana Pop", "roles": ["house-viewer"]}) as r:
        assert r.status == 201, await r.text()
    async with http.post(stack.url("users", "/v1/sessions"), json={"username": username, "password": PASSWORD}) as r:
        headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
    reads = {"keygen": "/v1/providers", "certs": "/v1/certificates", "ocsp": "/v1/log", "users": "/v1/users"}
    for service, path in reads.items():
        async with http.get(stack.url(service, path), headers=headers) as r:
            assert r.status == 200, (service, await r.text())

    async with http.delete(stack.url("users", "/v1/sessions/current"), headers=headers) as r:
        assert r.status == 204

    for service, path in reads.items():
        async def refused():
            async with http.get(stack.url(service, path), headers=headers) as r:
                return r.status == 401

        await eventually(refused, timeout=2, what=f"{service} refusing the ended session")


def test_a_service_started_after_a_logout_still_refuses_the_token(pki):
    """Events tell a running service of a logout; one that starts later asks users."""
    import asyncio
    import uuid

    import aiohttp

    from tests.support import infra
    from tests.support.stack import start_stack

    database_url = asyncio.run(infra.create_database("siui_e2e_logout"))
    exchange = f"siui.e2e.logout.{uuid.uuid4().hex[:8]}"
    users = start_stack(pki.data_dir, database_url, exchange, name="logout-users", services=("users",))
    try:
        async def log_in_and_out() -> dict:
            async with aiohttp.ClientSession() as http:
                async with http.post(users.url("users", "/v1/sessions"),
                                     json={"username": "admin", "password": users.admin_password}) as r:
                    headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
                async with http.delete(users.url("users", "/v1/sessions/current"), headers=headers) as r:
                    assert r.status == 204
            return headers

        headers = asyncio.run(log_in_and_out())
        keygen = start_stack(pki.data_dir, database_url, exchange, name="logout-keygen", services=("keygen",),
                             extra_env={"SIUI_USERS_URL": users.url("users")})
        try:
            async def status() -> int:
                async with aiohttp.ClientSession() as http:
                    async with http.get(keygen.url("keygen", "/v1/providers"), headers=headers) as r:
                        return r.status

            assert asyncio.run(status()) == 401  # from its first answer on
        finally:
            assert keygen.stop() == 0
    finally:
        assert users.stop() == 0
        asyncio.run(infra.drop_database(database_url))
        asyncio.run(infra.delete_exchange(exchange))
