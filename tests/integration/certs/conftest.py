"""The certs app on the session's PostgreSQL and RabbitMQ, a connection to its schema, a
tap on certs.# events, and openssl making the certificates."""
from __future__ import annotations

import asyncpg
import pytest

from services.certs.app import create_app
from services.certs.config import Config
from tests.support.bus import tapped
from tests.support.openssl_ca import OpenSsl


@pytest.fixture(scope="session")
def ossl(tmp_path_factory) -> OpenSsl:
    return OpenSsl(tmp_path_factory.mktemp("certs-openssl"))


@pytest.fixture
def certs_config(common_config) -> Config:
    return Config(common=common_config, port=0)


@pytest.fixture
async def certs(aiohttp_client, certs_config):
    """The certs app, served by aiohttp's test server (which cancels a handler whose client leaves)."""
    return await aiohttp_client(create_app(certs_config))


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "certs"})
    yield conn
    await conn.close()


@pytest.fixture
async def bus(common_config):
    """The session's exchange: publish as other services do, and every certs.# event seen."""
    async with tapped(common_config.events_exchange, "certs.#") as tap:
        yield tap
