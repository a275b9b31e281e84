"""The keygen app on the session's PostgreSQL and RabbitMQ (one per module, with a clock a
test may move), operators' headers, and a tap that sees every keygen.# event."""
from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.keygen.app import create_app
from services.keygen.config import Config
from shared.auth import ALL_RIGHTS
from tests.support.bus import tapped
from tests.support.clock import ShiftedClock
from tests.support.keygen_api import OPERATOR_RIGHTS


@pytest.fixture(scope="module")
def clock():
    return ShiftedClock()


@pytest.fixture(scope="module")
def keygen_config(common_config) -> Config:
    # 127.0.0.1 (the test client) stands for a reverse proxy, so X-Forwarded-For can play
    # desktops at different addresses.
    return Config(common=dataclasses.replace(common_config, trusted_proxies=frozenset({"127.0.0.1"})), port=0)


@pytest.fixture(scope="module")
async def keygen(keygen_config, clock):
    async with TestClient(TestServer(create_app(keygen_config, clock=clock))) as client:
        yield client


@pytest.fixture(scope="module")
def national(auth_for):
    return auth_for(username="cnas.admin", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


@pytest.fixture(scope="module")
def county(auth_for):
    """``county("CJ")``: headers of an operator of that house (providers and keys rights)."""

    def make(cas: str = "B", username: str | None = None, rights=OPERATOR_RIGHTS):
        return auth_for(username=username or f"operator.{cas.lower()}", cas=cas, rights=rights,
                        roles=("house-operator",))

    return make


@pytest.fixture(scope="module")
async def tap(common_config):
    """Every keygen.# event on the exchange, from the module's first use on."""
    async with tapped(common_config.events_exchange, "keygen.#") as events:
        yield events
