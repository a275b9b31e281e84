"""The console served over https: behind a trusted TLS proxy that says
``X-Forwarded-Proto: https``, or with SIUI_CONSOLE_SECURE_COOKIE, the session cookie is
``Secure`` and named ``__Host-siui_console`` and every answer carries HSTS; over plain
http from anyone else (the dev set-up) nothing changes, whatever the client claims.

The real console and users apps on the session's PostgreSQL and RabbitMQ; the test
client connects from 127.0.0.1, which is the trusted proxy where one is configured.
(tests/e2e/test_nginx.py does the same through the real nginx.)"""
from __future__ import annotations

import dataclasses
import re
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from services.console.app import create_app as console_app
from services.console.config import Config as ConsoleConfig
from services.console.web import HSTS
from services.users.app import create_app as users_app
from services.users.config import Config as UsersConfig
from shared.auth import ALL_RIGHTS

PASSWORD = "Consola-Https-2026!"
OPERATOR = f"https.{uuid.uuid4().hex[:6]}"
PROXY = frozenset({"127.0.0.1"})  # the test client's own address


@pytest.fixture(scope="module")
async def consoles(common_config, token_for):
    """The users service, an operator in it, and three consoles in front of it: one as in
    development, one behind a trusted proxy on 127.0.0.1, one with secure_cookie."""
    users = TestServer(users_app(UsersConfig(common=common_config, port=0)))
    await users.start_server()
    users_url = str(users.make_url("")).rstrip("/")
    backends = {"users": users_url, "keygen": "http://127.0.0.1:9", "certs": "http://127.0.0.1:9",
                "ocsp": "http://127.0.0.1:9"}
    bootstrap = {"Authorization": f"Bearer {token_for(cas='CNAS', username='admin', rights=ALL_RIGHTS)}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(users_url + "/v1/users", headers=bootstrap, json={
                "username": OPERATOR, "password": PASSWORD, "cas": "B", "employee_name": "Operator https",
                "roles": ["house-viewer"]}) as r:
            assert r.status == 201, await r.text()
    variants = {
        "dev": ConsoleConfig(common=common_config, port=0, backends=backends),
        "proxied": ConsoleConfig(common=dataclasses.replace(common_config, trusted_proxies=PROXY), port=0,
                                 backends=backends),
        "secure": ConsoleConfig(common=common_config, port=0, backends=backends, secure_cookie=True),
    }
    servers = {}
    for name, config in variants.items():
        servers[name] = TestServer(console_app(config))
        await servers[name].start_server()
    yield {name: str(server.make_url("")).rstrip("/") for name, server in servers.items()}
    for server in (*servers.values(), users):
        await server.close()


@pytest.fixture
async def http():
    # No cookie jar: each test reads Set-Cookie and sends Cookie itself, names included.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


def session_cookie(response: aiohttp.ClientResponse) -> tuple[str, str, set[str]]:
    """The console's Set-Cookie: name, value and attributes (lower case, without values)."""
    (header,) = [h for h in response.headers.getall("Set-Cookie", []) if "siui_console=" in h]
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    return name, value, {a.split("=")[0].lower() for a in attributes}


async def login(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> tuple[str, str]:
    """Log in as a browser would (login page, its CSRF token, the form); the session
    cookie's name and value afterwards."""
    async with http.get(base + "/", headers=headers) as r:
        assert r.status == 200
        name, value, _ = session_cookie(r)
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]
    async with http.post(base + "/", headers={**headers, "Cookie": f"{name}={value}"}, allow_redirects=False,
                         data={"csrf": csrf, "username": OPERATOR, "password": PASSWORD}) as r:
        assert r.status == 303 and r.headers["Location"] == "/furnizori", await r.text()
        name, value, attributes = session_cookie(r)
        assert r.headers.get("Strict-Transport-Security") == (HSTS if "secure" in attributes else None)
        return name, value


async def test_behind_the_trusted_proxy_over_https_the_cookie_is_secure_and_hsts_is_sent(consoles, http):
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.10"}
    async with http.get(consoles["proxied"] + "/", headers=https) as r:
        assert r.status == 200
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        name, _, attributes = session_cookie(r)
        assert name == "__Host-siui_console"
        assert {"secure", "httponly", "path", "samesite"} <= attributes and "domain" not in attributes
    for path in ("/static/console.css", "/healthz", "/nu-exista"):  # every answer, errors included
        async with http.get(consoles["proxied"] + path, headers=https) as r:
            assert r.headers.getall("Strict-Transport-Security") == [HSTS], path

    # The __Host- cookie is the session from then on: logged in, the next page opens with it.
    name, value = await login(http, consoles["proxied"], https)
    assert name == "__Host-siui_console"
    async with http.get(consoles["proxied"] + "/panou", allow_redirects=False,
                        headers={**https, "Cookie": f"{name}={value}"}) as r:
        assert r.status == 200 and "Operator https" in await r.text()
        assert "Set-Cookie" not in r.headers  # the session was found under its __Host- name


async def test_the_proxy_saying_http_or_nothing_changes_nothing(consoles, http):
    for headers in ({}, {"X-Forwarded-Proto": "http"}, {"X-Forwarded-Proto": "https, http"}):
        async with http.get(consoles["proxied"] + "/", headers=headers) as r:
            assert r.status == 200
            assert "Strict-Transport-Security" not in r.headers, headers
            name, _, attributes = session_cookie(r)
            assert name == "siui_console" and "secure" not in attributes, headers


async def test_plain_http_in_development_ignores_a_claimed_https(consoles, http):
    """No trusted proxy configured: a client's own X-Forwarded-Proto is not believed, and
    the dev console keeps its plain cookie (a Secure one would never come back on http)."""
    async with http.get(consoles["dev"] + "/", headers={"X-Forwarded-Proto": "https"}) as r:
        assert r.status == 200 and "Strict-Transport-Security" not in r.headers
        name, _, attributes = session_cookie(r)
        assert name == "siui_console" and "secure" not in attributes
    name, value = await login(http, consoles["dev"], {})
    assert name == "siui_console"
    async with http.get(consoles["dev"] + "/panou", allow_redirects=False,
                        headers={"Cookie": f"{name}={value}"}) as r:
        assert r.status == 200


async def test_secure_cookie_setting_forces_it_without_a_proxy(consoles, http):
    async with http.get(consoles["secure"] + "/") as r:
        assert r.headers["Strict-Transport-Security"] == HSTS
        name, _, attributes = session_cookie(r)
        assert name == "__Host-siui_console" and "secure" in attributes
    name, value = await login(http, consoles["secure"], {})
    assert name == "__Host-siui_console"
    async with http.get(consoles["secure"] + "/panou", allow_redirects=False,
                        headers={"Cookie": f"{name}={value}"}) as r:
        assert r.status == 200
