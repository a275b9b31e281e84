"""A KeyIssued published while the users service is down is consumed when it comes back:
the event waits in its durable queue, and the external user appears exactly once."""
from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from shared.license import load_pepper
from tests.support import bus, infra
from tests.support.identities import new_cui
from tests.support.keygen_api import key_issued
from tests.support.stack import start_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
CUI = "221120108"  # the seed's second example CUI: a valid check digit


@pytest.fixture
def isolated():
    database_url = asyncio.run(infra.create_database("siui_e2e_restart"))
    exchange = f"siui.e2e.restart.{uuid.uuid4().hex[:8]}"
    yield database_url, exchange
    asyncio.run(infra.drop_database(database_url))
    asyncio.run(infra.delete_exchange(exchange))


def test_key_issued_while_users_is_down(pki, isolated):
    database_url, exchange = isolated
    users = start_stack(pki.data_dir, database_url, exchange, name="users-first", services=("users",))
    try:
        token = asyncio.run(_login(users.url("users"), users.admin_password))
    finally:
        assert users.stop() == 0

    keygen = start_stack(pki.data_dir, database_url, exchange, name="keygen-alone", services=("keygen",))
    try:
        asyncio.run(_issue_key(keygen.url("keygen"), token))
    finally:
        # A clean stop right after the answer still publishes the committed KeyIssued.
        assert keygen.stop() == 0
    assert asyncio.run(_outbox_rows(database_url)) == 0

    # The users service comes back (with a new admin password: first start already happened).
    users = start_stack(pki.data_dir, database_url, exchange, name="users-again", services=("users",))
    try:
        users_seen = asyncio.run(_external_users(users, token, load_pepper(pki.license_pepper)))
        assert [u["username"] for u in users_seen] == [f"{CUI}_CAS-CJ"]
    finally:
        assert users.stop() == 0


async def _outbox_rows(database_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("select count(*) from keygen.outbox")
    finally:
        await conn.close()


async def _login(users_url: str, password: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(users_url + "/v1/sessions", json={"username": "admin", "password": password}) as r:
            assert r.status in (200, 201), await r.text()
            return (await r.json())["token"]


async def _issue_key(keygen_url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(keygen_url + "/v1/providers",
                             json={"cas": "CJ", "cui": CUI, "name": "FARMACIA DEMO SRL"}) as r:
            assert r.status == 201, await r.text()
            provider_id = (await r.json())["id"]
        async with http.post(keygen_url + f"/v1/providers/{provider_id}/activation-key", json={"reset": False}) as r:
            assert r.status == 201, await r.text()


async def _external_users(users, token: str, pepper: bytes) -> list[dict]:
    """The external users of CUI, once the users service has handled every KeyIssued that
    waited for it: a sentinel KeyIssued published after them comes out of the same queue
    after them, so when its user exists a duplicate delivery would have shown too."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def listed(cui: str) -> list[dict]:
            async with http.get(users.url("users", "/v1/users"), params={"type": "external", "q": cui}) as r:
                return (await r.json())["items"]

        await eventually(lambda: listed(CUI), timeout=15, what="external user created after restart")
        sentinel = f"{new_cui()}_CAS-CJ"
        event, _ = key_issued(pepper, sentinel)
        publishers = infra.Publishers(users.exchange)  # as keygen: consumers refuse anyone else
        try:
            await bus.publish(publishers, event, "CJ")
        finally:
            await publishers.close()
        await eventually(lambda: listed(sentinel.partition("_")[0]), timeout=15, what="the sentinel's user")
        return await listed(CUI)
