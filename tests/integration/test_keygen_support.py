"""Shared pieces of the keygen integration tests: the real app on the session's PostgreSQL
database and RabbitMQ exchange, operators' tokens, providers with fresh valid CUIs, and a
tap on the exchange that sees every keygen.# event."""
from __future__ import annotations

import dataclasses

import json
import random
from datetime import datetime, timedelta, timezone

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from stdnum.ro import cnp as stdnum_cnp
from stdnum.ro import cui as stdnum_cui

from services.keygen.app import create_app
from services.keygen.config import Config
from shared.auth import ALL_RIGHTS, Right
from shared.events import Envelope
from tests.support import infra
from tests.support.wait import eventually

OPERATOR_RIGHTS = (Right.PROVIDERS_READ, Right.PROVIDERS_WRITE, Right.KEYS_ISSUE)


class ShiftedClock:
    """The real time plus an offset a test may move (a throttle window without waiting)."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


def new_cui() -> str:
    """A CUI nobody used yet in this session, with a valid check digit."""
    body = str(random.randrange(10_000_000, 99_999_999))
    return body + stdnum_cui.calc_check_digit(body)


def new_cnp() -> str:
    body = f"1{random.randrange(50, 99):02d}0101{random.randrange(1, 40):02d}{random.randrange(100, 999)}"
    return body + stdnum_cnp.calc_check_digit(body)


def bad_check_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


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


def provider_body(cas: str = "B", **fields) -> dict:
    return {"cas": cas, "cui": new_cui(), "name": "SC Clinica Sfânta Maria SRL",
            "trade_register_no": "J40/10/3456", "org_type": "SRL", "locality": "17913 București",
            "legal_representative": {"name": "Ion Țărănescu", "cnp": new_cnp()}, **fields}


async def make_provider(client, headers, **fields) -> dict:
    response = await client.post("/v1/providers", json=provider_body(**fields), headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def issue(client, headers, provider_id: str, *, reset: bool = False, pdf: bool = False):
    extra = {"Accept": "application/pdf"} if pdf else {}
    return await client.post(f"/v1/providers/{provider_id}/activation-key", json={"reset": reset},
                             headers={**headers, **extra})


async def issued_key(client, headers, provider_id: str, *, reset: bool = False) -> dict:
    response = await issue(client, headers, provider_id, reset=reset)
    assert response.status == 201, await response.text()
    return await response.json()


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return json.loads(await response.text())


class Tap:
    """Every event published under keygen.# on the exchange, from the moment it starts."""

    def __init__(self, connection):
        self.connection = connection
        self.bodies: list[bytes] = []
        self.user_ids: list[str | None] = []

    async def events(self, *, timeout: float = 10.0, **data) -> Envelope:
        """The first event whose data has all of ``data``'s values; it must carry keygen's
        broker identity, as every consumer requires."""

        async def arrived():
            for body, user_id in zip(self.bodies, self.user_ids):
                envelope = Envelope.from_json(body)
                if all(envelope.data.get(k) == v for k, v in data.items()):
                    assert user_id == "siui-keygen", user_id
                    return envelope
            return None

        return await eventually(arrived, timeout=timeout, what=f"keygen event {data}")

    def raw(self, **data) -> bytes:
        """The wire body of an event already seen (to search it for what it must not hold)."""
        for body in self.bodies:
            if all(Envelope.from_json(body).data.get(k) == v for k, v in data.items()):
                return body
        raise AssertionError(f"no event {data}")


@pytest.fixture(scope="module")
async def tap(keygen, common_config):
    # A watcher, not a service: the broker's administrator may bind a queue of its own.
    connection = await aio_pika.connect(infra.admin_amqp_url())
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(common_config.events_exchange)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="keygen.#")
        seen = Tap(connection)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                seen.bodies.append(message.body)
                seen.user_ids.append(message.user_id)

        await queue.consume(on_message)
        yield seen
    finally:
        await connection.close()
