"""A database outage as clients see it, on real PostgreSQL: this module's database stops
taking connections (``allow_connections false`` and its sessions terminated: what a
restart or failover looks like to a client) while the certs and ocsp apps run on it.

* certs answers 503 problem+json with ``Retry-After`` (never 500) and is not ready;
* the ocsp responder keeps answering from memory, rightly, and stays ready, saying
  ``"status": "degraded"`` and what is away;
* once the database takes connections again, both are ready and answering by themselves.

The machine's PostgreSQL keeps running throughout: only this module's database refuses.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.x509 import ocsp

from services.certs.app import create_app as certs_app
from services.certs.config import Config as CertsConfig
from services.ocsp.app import create_app as ocsp_app
from services.ocsp.config import Config as OcspConfig
from shared.auth import ALL_RIGHTS
from tests.support import infra
from tests.support.ocsp_harness import OCSP_REQUEST, Feed, Issuer, registered, request_der, serve
from tests.support.wait import eventually


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_outage") as config:
        yield config


@pytest.fixture(scope="module")
async def apps(common):
    async with serve("front", ocsp_app(OcspConfig(common=common, port=0, tls_port=0, workers=1))) as ocsp_client:
        async with TestClient(TestServer(certs_app(CertsConfig(common=common, port=0)))) as certs_client:
            yield ocsp_client, certs_client


class Outage:
    """This module's database refusing connections, and back."""

    def __init__(self, database_url: str):
        self.name = urlsplit(database_url).path.lstrip("/")

    async def _admin(self, sql: str, base_url: str) -> None:
        admin = await asyncpg.connect(infra.with_database(base_url, "postgres"))
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    async def begin(self) -> None:
        # The database is the owner role's to close; the services' connections are the
        # service role's to end.
        await self._admin(f'alter database "{self.name}" allow_connections false', infra.base_owner_url())
        await self._admin(f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{self.name}'",
                          infra.base_database_url())

    async def end(self) -> None:
        await self._admin(f'alter database "{self.name}" allow_connections true', infra.base_owner_url())


async def test_an_outage_answers_503_and_the_responder_answers_on(apps, common, token_for):
    ocsp_client, certs_client = apps
    publishers = infra.Publishers(common.events_exchange)
    ca = Issuer.new("Outage CA")
    leaf = ca.issue("provider")
    feed = Feed(publishers)
    await feed.issuer(ca)
    await feed.certificate(ca, leaf.serial)
    await publishers.close()
    await registered(ocsp_client.server.app, ca, leaf.serial)
    der = request_der(ca, leaf)
    headers = {"Authorization": f"Bearer {token_for(cas='CNAS', username='admin', rights=ALL_RIGHTS)}"}

    async def answer():
        response = await ocsp_client.post("/", data=der, headers=OCSP_REQUEST)
        assert response.status == 200
        return ocsp.load_der_ocsp_response(await response.read())

    async def ready(client) -> tuple[int, dict]:
        response = await client.get("/readyz")
        return response.status, await response.json()

    assert (await ready(ocsp_client)) == (200, {"status": "ready", "service": "ocsp"})
    outage = Outage(common.database_url)
    await outage.begin()
    try:
        # certs cannot work without its database: 503, told when to come back; not ready.
        async def refused():
            response = await certs_client.get("/v1/certificates", headers=headers)
            if response.status != 503:
                return None
            return response

        response = await eventually(refused, timeout=15, what="certs answering 503")
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.json())["status"] == 503
        assert (await ready(certs_client))[0] == 503
        # ocsp answers from memory, rightly, and says it is degraded, not down.
        status, body = await ready(ocsp_client)
        assert status == 200 and body["status"] == "degraded" and "database_reachable" in body["degraded"]
        for _ in range(20):
            reply = await answer()
            assert reply.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            assert reply.certificate_status == ocsp.OCSPCertStatus.GOOD
    finally:
        await outage.end()

    async def both_ready():
        return (await ready(ocsp_client))[1]["status"] == "ready" and (await ready(certs_client))[0] == 200

    await eventually(both_ready, timeout=30, what="both ready again by themselves")
    response = await certs_client.get("/v1/certificates", headers=headers)
    assert response.status == 200
