"""users service and the bus: KeyIssued makes external users exactly once, a reset keeps
them, certificates block deletion, deletion is announced, and a KeyIssued from anyone but
keygen's broker user is dead-lettered without an effect. Real RabbitMQ, its own exchange
and database; each event published as its publisher's broker user."""
from __future__ import annotations

import uuid

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users.app import create_app
from services.users.config import Config
from shared.auth import ALL_RIGHTS
from shared.db import POOL
from shared.events import (CertificateRegistered, CertificateRevoked, Envelope, ExternalUserCreated,
                           ExternalUserDeleted, KeyIssued, new_envelope)
from tests.support import infra
from tests.support.wait import eventually

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_users_events") as config:
        yield config


@pytest.fixture(scope="module")
async def client(common):
    config = Config(common=common, port=0, admin_password="parola-de-test-2026")
    async with TestClient(TestServer(create_app(config, hasher=FAST))) as client:
        yield client


@pytest.fixture(scope="module")
async def broker(common):
    """Publishes KeyIssued as siui-keygen, certificate events as siui-certs."""
    publishers = infra.Publishers(common.events_exchange)
    yield publishers
    await publishers.close()


@pytest.fixture(scope="module")
async def admin():
    """The broker's administrator: a watcher's queues and the dead-letter queues."""
    connection = await aio_pika.connect(infra.admin_amqp_url())
    yield connection
    await connection.close()


@pytest.fixture
async def announced(admin, common):
    """What the users service publishes about external users, seen on a private queue."""
    channel = await admin.channel()
    exchange = await channel.get_exchange(common.events_exchange)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for event in (ExternalUserCreated, ExternalUserDeleted):
        await queue.bind(exchange, routing_key=event.ROUTING_KEY)
    seen: list[Envelope] = []

    async def drain() -> list[Envelope]:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            seen.append(Envelope.from_json(message.body))
        return seen

    yield drain
    await channel.close()


@pytest.fixture(scope="module")
def cnas(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


def key_issued(cui: str, cas: str, *, reset: bool = False) -> KeyIssued:
    return KeyIssued(provider_id=f"p-{cui}", cui=cui, provider_code=cui, provider_name="SC DEMO MEDICAL SRL",
                     key_id=str(uuid.uuid4()), key_digest="ab" * 32, reset=reset,
                     issued_at=f"2026-01-{6 if reset else 5:02d}T10:00:00+00:00", issued_by="operator.b",
                     external_user=f"{cui}_CAS-{cas}")


def certificate(event_cls, username: str, certificate_id: str):
    return event_cls(certificate_id=certificate_id, issuer_id="i1", serial="12", username=username,
                     provider_cui=username.split("_")[0], status="active" if event_cls is CertificateRegistered
                     else "revoked", changed_at="2026-01-06T10:00:00+00:00")


async def detail(client, cnas, username):
    response = await client.get(f"/v1/users/{username}", headers=cnas)
    return await response.json() if response.status == 200 else None


async def test_key_issued_twice_creates_one_user_and_one_announcement(client, common, broker, announced, cnas):
    event = key_issued("12433636", "B")
    envelope = new_envelope(event, "B")
    await broker.publish(envelope)
    await broker.publish(envelope)                       # redelivered as is
    await broker.publish(new_envelope(event, "B"))       # the same key, republished under a new id
    user = await eventually(lambda: detail(client, cnas, "12433636_CAS-B"), what="external user")
    assert (user["type"], user["cas"], user["schema"], user["org_unit"]) == ("external", "B", "SIUIB", "CAS-B")
    assert user["provider_cui"] == "12433636" and "roles" not in user

    async def one_created():
        seen = await announced()
        return [e for e in seen if e.type == "ExternalUserCreated"] or None

    await eventually(one_created, what="ExternalUserCreated on the bus")

    async def all_handled():  # two applied, the redelivery recognised as a duplicate
        return (await _deliveries(client, common, "applied") >= 2
                and await _deliveries(client, common, "duplicate") >= 1)

    await eventually(all_handled, what="three deliveries handled")
    created = [e for e in await announced() if e.type == "ExternalUserCreated"]
    assert len(created) == 1
    assert created[0].cas == "B" and created[0].payload() == ExternalUserCreated(
        username="12433636_CAS-B", cui="12433636", provider_code="12433636", provider_name="SC DEMO MEDICAL SRL",
        schema="SIUIB", org_unit="CAS-B")
    listed = await (await client.get("/v1/users", headers=cnas, params={"q": "12433636"})).json()
    assert listed["total"] == 1 and len(user["key_changes"]) == 1


async def test_reset_keeps_the_user_and_records_the_key_change(client, broker, announced, cnas):
    await broker.publish(new_envelope(key_issued("23456785", "CJ"), "CJ"))
    first = await eventually(lambda: detail(client, cnas, "23456785_CAS-CJ"), what="external user")
    reset = key_issued("23456785", "CJ", reset=True)
    await broker.publish(new_envelope(reset, "CJ"))

    async def two_keys():
        user = await detail(client, cnas, "23456785_CAS-CJ")
        return user if len(user["key_changes"]) == 2 else None

    user = await eventually(two_keys, what="the reset recorded")
    assert user["created_at"] == first["created_at"]
    assert [(k["key_id"], k["reset"]) for k in user["key_changes"]][0] == (reset.key_id, True)  # newest first
    assert [k["reset"] for k in user["key_changes"]] == [True, False]

    async def announcements():
        return [e.payload().username for e in await announced() if e.type == "ExternalUserCreated"]

    assert await eventually(announcements, what="ExternalUserCreated") == ["23456785_CAS-CJ"]
    # Once the outbox is empty everything written is on the bus: the reset announced nothing.
    await eventually(lambda: _outbox_empty(client), what="outbox relayed")
    assert await announcements() == ["23456785_CAS-CJ"]


async def test_external_user_with_certificates_is_not_deleted(client, broker, announced, cnas):
    username = "34567894_CAS-B"
    await broker.publish(new_envelope(key_issued("34567894", "B"), "B"))
    await eventually(lambda: detail(client, cnas, username), what="external user")
    await broker.publish(new_envelope(certificate(CertificateRegistered, username, "c-1"), "B"))

    async def certificates(n):
        user = await detail(client, cnas, username)
        return user is not None and user["certificates"] == n

    await eventually(lambda: certificates(1), what="certificate counted")
    refused = await client.delete(f"/v1/users/{username}", headers=cnas)
    body = await refused.json()
    assert refused.status == 409 and body["certificates"] == 1
    assert "still has 1 certificate" in body["detail"]

    await broker.publish(new_envelope(certificate(CertificateRevoked, username, "c-1"), "B"))
    await eventually(lambda: certificates(0), what="certificate revoked")
    assert (await client.delete(f"/v1/users/{username}", headers=cnas)).status == 204
    assert await detail(client, cnas, username) is None

    async def deleted():
        return [e for e in await announced() if e.type == "ExternalUserDeleted"] or None

    [event] = await eventually(deleted, what="ExternalUserDeleted on the bus")
    assert event.payload().username == username and event.cas == "B"


async def test_external_users_cannot_be_modified(client, broker, cnas):
    await broker.publish(new_envelope(key_issued("45678903", "B"), "B"))
    await eventually(lambda: detail(client, cnas, "45678903_CAS-B"), what="external user")
    response = await client.patch("/v1/users/45678903_CAS-B", headers=cnas, json={"employee_name": "x"})
    assert response.status == 422


async def dead_lettered(admin, common, cui: str, *, timeout: float = 20) -> aio_pika.abc.AbstractIncomingMessage:
    """Wait for the KeyIssued of ``cui`` in users.key-issued's dead-letter queue."""
    channel = await admin.channel()
    dlq = await channel.get_queue(f"{common.events_exchange}.users.key-issued.dlq")

    async def parked():
        message = await dlq.get(fail=False)
        if message is not None:
            await message.ack()
            if Envelope.from_json(message.body).payload().cui == cui:
                return message
        return None

    try:
        return await eventually(parked, timeout=timeout, what="message in the dead-letter queue")
    finally:
        await channel.close()


async def test_key_issued_without_a_house_is_dead_lettered(client, broker, admin, common):
    keygen = await broker.as_service("keygen")
    await keygen.exchange.publish(aio_pika.Message(new_envelope(key_issued("56789012", "B"), "").to_json(),
                                                   user_id=keygen.user),
                                  routing_key=KeyIssued.ROUTING_KEY)
    await dead_lettered(admin, common, "56789012")


@pytest.mark.parametrize("login", ["guest", "certs"])
async def test_a_key_issued_not_from_keygen_is_dead_lettered_and_makes_no_user(client, common, broker, admin, cnas,
                                                                              login):
    """A KeyIssued would grant a provider online access: only siui-keygen's counts. One
    published as guest (no user_id: nothing to check it against) or as siui-certs (a
    service that may publish, but not this) is refused: parked, counted, no user."""
    cui = {"guest": "67890125", "certs": "78901234"}[login]
    forged_before = await _deliveries(client, common, "forged")
    body = new_envelope(key_issued(cui, "B"), "B").to_json()
    if login == "guest":
        forger = await aio_pika.connect(infra.admin_amqp_url())
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    else:
        forger = await aio_pika.connect(infra.amqp_url_for("certs"))
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, user_id="siui-certs")
    try:
        channel = await forger.channel()
        exchange = await channel.get_exchange(common.events_exchange, ensure=False)
        await exchange.publish(message, routing_key=KeyIssued.ROUTING_KEY)
        parked = await dead_lettered(admin, common, cui)
    finally:
        await forger.close()
    assert parked.user_id == (None if login == "guest" else "siui-certs")

    async def counted():
        return await _deliveries(client, common, "forged") >= forged_before + 1

    await eventually(counted, what="the forged delivery counted")
    assert await detail(client, cnas, f"{cui}_CAS-B") is None
    # And the real keygen's is applied: the refusal is of the publisher, not of the event.
    await broker.publish(new_envelope(key_issued(cui, "B"), "B"))
    await eventually(lambda: detail(client, cnas, f"{cui}_CAS-B"), what="external user from keygen")


async def _outbox_empty(client) -> bool:
    return await client.server.app[POOL].fetchval("select count(*) from outbox") == 0


async def _deliveries(client, common, outcome: str) -> float:
    """siui_events_consumed_total of this module's users.key-issued queue, from /metrics."""
    text = await (await client.get("/metrics", headers=infra.metrics_headers(common.data_dir))).text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("siui_events_consumed_total{") and "users.key-issued" in line \
                and common.events_exchange in line and f'outcome="{outcome}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
