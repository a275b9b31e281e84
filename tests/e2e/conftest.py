"""One running stack for the whole e2e session (started like `make up`, stopped after);
the console's browser tests' own stack, and Debian's Chromium for them."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import assert_stayed_on_this_machine, launch_chromium
from tests.support.stack import isolated_stack

ALL_SERVICES = ("users", "keygen", "certs", "ocsp", "console")


@pytest.fixture(scope="session")
def stack(pki):
    with isolated_stack(pki.data_dir, "e2e") as running:
        yield running


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


@pytest.fixture(scope="module")
def console_stack(pki):
    """The whole stack as ``make up`` runs it, on free ports, for this module only.

    The console tests start their own stack (a fresh database and exchange) rather than the
    session's: they register the demo provider's certificate, which the seed-flow test
    registers too, and the same issuer+serial twice is refused by design."""
    with isolated_stack(pki.data_dir, "console_e2e", name="console-stack", services=ALL_SERVICES) as running:
        yield running


@pytest.fixture(scope="module")
def chromium():
    """Chromium for a module's tests; afterwards, proof that it reached only loopback."""
    with sync_playwright() as playwright:
        browser, netlog = launch_chromium(playwright, "console-browser")
        yield browser
        assert_stayed_on_this_machine(browser, netlog)
