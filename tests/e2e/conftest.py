"""One running stack for the whole e2e session (started like `make up`, stopped after)."""
from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from tests.support import infra
from tests.support.stack import start_stack


@pytest.fixture(scope="session")
def stack(pki):
    database_url = asyncio.run(infra.create_database("siui_e2e"))
    exchange = f"siui.e2e.{uuid.uuid4().hex[:8]}"
    running = start_stack(pki.data_dir, database_url, exchange)
    yield running
    code = running.stop()
    asyncio.run(infra.drop_database(database_url))
    asyncio.run(infra.delete_exchange(exchange))
    assert code == 0, f"the stack did not stop cleanly ({code}); see {running.log_path}"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def admin_token(stack):
    async def login():
        async with aiohttp.ClientSession() as s:
            async with s.post(stack.url("users", "/v1/sessions"),
                              json={"username": "admin", "password": stack.admin_password}) as r:
                assert r.status in (200, 201), await r.text()
                return (await r.json())["token"]

    return asyncio.run(login())


@pytest.fixture(scope="session")
def admin_headers(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}
