"""users service, sessions: login, lockout, external users refused, logout revokes.

Runs against a real PostgreSQL database and RabbitMQ exchange of its own (so that no
other module's events or users show up), through the real app.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users.app import create_app
from services.users.config import Config
from shared.auth import ALL_RIGHTS, TOKEN_AUDIENCE, VERIFIER, TokenVerifier
from shared.broker import connect
from shared.events import Envelope, KeyIssued, SessionRevoked, new_envelope
from shared.inbox import CONSUMED
from tests.support import infra
from tests.support.wait import eventually

ADMIN_PASSWORD = "parola-de-test-2026"
STAFF_PASSWORD = "munte-si-mare-2026"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


class ShiftedClock:
    """The real time plus an offset a test may move (the lock's end without waiting)."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_users_sessions") as config:
        yield config


@pytest.fixture(scope="module")
def clock():
    return ShiftedClock()


@pytest.fixture(scope="module")
async def client(common, clock):
    config = Config(common=common, port=0, admin_password=ADMIN_PASSWORD, max_failed_logins=5,
                    lockout_minutes=15)
    async with TestClient(TestServer(create_app(config, clock=clock, hasher=FAST))) as client:
        yield client


@pytest.fixture(scope="module")
def admin(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


async def login(client, username, password):
    return await client.post("/v1/sessions", json={"username": username, "password": password})


async def make_staff(client, admin, username, cas="B", roles=("house-operator",)):
    response = await client.post("/v1/users", headers=admin, json={
        "username": username, "password": STAFF_PASSWORD, "cas": cas, "employee_code": "E1",
        "employee_name": "Ion Popescu", "roles": list(roles)})
    assert response.status == 201, await response.text()


async def test_national_admin_logs_in_with_the_configured_password(client, pki):
    response = await login(client, "admin", ADMIN_PASSWORD)
    assert response.status == 201
    body = await response.json()
    assert body["user"]["username"] == "admin" and body["user"]["cas"] == "CNAS"
    assert body["user"]["roles"] == ["national-admin"]
    assert set(body["user"]["rights"]) == set(ALL_RIGHTS)
    principal = TokenVerifier.from_file(pki.token_signing_public_key).verify(body["token"])
    assert principal.is_national and principal.rights == frozenset(ALL_RIGHTS)
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(timezone.utc) <= timedelta(minutes=15)
    # The token works on this service's own endpoints.
    me = await client.get("/v1/users/admin", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status == 200


async def test_user_names_are_not_case_sensitive_at_login(client):
    assert (await login(client, " Admin ", ADMIN_PASSWORD)).status == 201


async def test_wrong_password_and_unknown_user_answer_alike(client):
    wrong = await login(client, "admin", "not-the-password-1")
    unknown = await login(client, "nobody.here", "not-the-password-1")
    assert wrong.status == unknown.status == 401
    assert wrong.content_type == "application/problem+json"
    assert (await wrong.json())["detail"] == (await unknown.json())["detail"] == "wrong user name or password"


async def test_fifth_wrong_password_locks_the_account(client, admin, clock):
    await make_staff(client, admin, "locked.out")
    for _ in range(4):
        response = await login(client, "locked.out", "not-the-password-1")
        assert (await response.json())["detail"] == "wrong user name or password"
    fifth = await login(client, "locked.out", "not-the-password-1")
    body = await fifth.json()
    assert fifth.status == 401 and body["detail"].startswith("account locked until ")
    until = datetime.fromisoformat(body["locked_until"])
    assert timedelta(minutes=14) < until - datetime.now(timezone.utc) <= timedelta(minutes=15)
    # Even the right password is refused while locked, with the same clear detail.
    right = await login(client, "locked.out", STAFF_PASSWORD)
    assert right.status == 401 and (await right.json())["locked_until"] == body["locked_until"]
    detail = await (await client.get("/v1/users/locked.out", headers=admin)).json()
    assert detail["locked_until"] == body["locked_until"]
    # Fifteen minutes later the lock is over.
    clock.offset = timedelta(minutes=15, seconds=1)
    try:
        assert (await login(client, "locked.out", STAFF_PASSWORD)).status == 201
    finally:
        clock.offset = timedelta()


async def test_an_admin_can_unlock(client, admin):
    await make_staff(client, admin, "unlock.me")
    for _ in range(5):
        await login(client, "unlock.me", "not-the-password-1")
    assert "locked" in (await (await login(client, "unlock.me", STAFF_PASSWORD)).json())["detail"]
    response = await client.patch("/v1/users/unlock.me", headers=admin, json={"unlock": True})
    assert response.status == 200
    assert (await login(client, "unlock.me", STAFF_PASSWORD)).status == 201


async def test_external_users_cannot_log_in(client, common, admin):
    broker = await connect(infra.amqp_url_for("keygen"), common.events_exchange)
    try:
        event = KeyIssued(provider_id="1", cui="12433636", provider_code="12433636", provider_name="SC DEMO",
                          key_id=str(uuid.uuid4()), key_digest="00", reset=False,
                          issued_at="2026-01-05T10:00:00+00:00", issued_by="operator.b",
                          external_user="12433636_CAS-B")
        await broker.publish(new_envelope(event, "B"))
    finally:
        await broker.close()

    async def created():
        return (await client.get("/v1/users/12433636_CAS-B", headers=admin)).status == 200

    await eventually(created, what="external user created")
    for name in ("12433636_CAS-B", "12433636_cas-b"):
        response = await login(client, name, "F8E73-MVXY-FYKL-ITGK")
        assert response.status == 401
        assert (await response.json())["detail"] == "wrong user name or password"


async def test_disabled_user_is_told_only_with_the_right_password(client, admin):
    await make_staff(client, admin, "gone.fishing")
    assert (await client.patch("/v1/users/gone.fishing", headers=admin, json={"enabled": False})).status == 200
    assert (await (await login(client, "gone.fishing", "not-the-password-1")).json())["detail"] == \
        "wrong user name or password"
    refused = await login(client, "gone.fishing", STAFF_PASSWORD)
    assert refused.status == 401 and "disabled" in (await refused.json())["detail"]


async def test_logout_revokes_the_token_here_and_on_the_bus(client, common):
    channel_conn = await aio_pika.connect(infra.admin_amqp_url())  # a watcher's own queue
    try:
        channel = await channel_conn.channel()
        exchange = await channel.get_exchange(common.events_exchange)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=SessionRevoked.ROUTING_KEY)
        body = await (await login(client, "admin", ADMIN_PASSWORD)).json()
        auth = {"Authorization": f"Bearer {body['token']}"}
        assert (await client.get("/v1/users", headers=auth)).status == 200
        assert (await client.delete("/v1/sessions/current", headers=auth)).status == 204
        after = await client.get("/v1/users", headers=auth)
        assert after.status == 401 and "ended" in (await after.json())["detail"]
        assert (await client.delete("/v1/sessions/current", headers=auth)).status == 401
        jti = jwt.decode(body["token"], options={"verify_signature": False}, audience=TOKEN_AUDIENCE)["jti"]

        async def revoked_event():
            message = await queue.get(fail=False)
            if message is None:
                return None
            await message.ack()
            assert message.user_id == "siui-users"  # what every follower requires
            return Envelope.from_json(message.body).payload().jti == jti

        await eventually(revoked_event, what="SessionRevoked on the bus")
    finally:
        await channel_conn.close()


@pytest.mark.parametrize("login_as", ["guest", "certs"])
async def test_a_logout_not_from_users_ends_no_session(client, common, login_as):
    """A forged SessionRevoked would log anybody out (a denial of service): the follower
    refuses one published as guest or as siui-certs, counts it, and the token still works."""
    body = await (await login(client, "admin", ADMIN_PASSWORD)).json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    claims = jwt.decode(body["token"], options={"verify_signature": False}, audience=TOKEN_AUDIENCE)
    label = f"{common.events_exchange}.users.revoked"
    before = CONSUMED.labels(label, "forged")._value.get()
    forged = new_envelope(SessionRevoked(jti=claims["jti"], username="admin",
                                         expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc).isoformat()),
                          "CNAS")
    url = infra.admin_amqp_url() if login_as == "guest" else infra.amqp_url_for("certs")
    connection = await aio_pika.connect(url)
    try:
        exchange = await (await connection.channel()).get_exchange(common.events_exchange, ensure=False)
        await exchange.publish(aio_pika.Message(forged.to_json(), user_id=None if login_as == "guest" else "siui-certs"),
                               routing_key=SessionRevoked.ROUTING_KEY)
    finally:
        await connection.close()

    async def refused():
        return CONSUMED.labels(label, "forged")._value.get() > before

    await eventually(refused, what="the forged logout refused")
    assert claims["jti"] not in client.server.app[VERIFIER].revoked
    assert (await client.get("/v1/users", headers=auth)).status == 200


async def test_disabling_a_user_ends_their_sessions(client, admin):
    await make_staff(client, admin, "short.lived")
    token = (await (await login(client, "short.lived", STAFF_PASSWORD)).json())["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/users", headers=auth)).status == 200
    await client.patch("/v1/users/short.lived", headers=admin, json={"enabled": False})
    assert (await client.get("/v1/users", headers=auth)).status == 401


async def test_bad_login_requests(client):
    garbage = await client.post("/v1/sessions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status == 400 and garbage.content_type == "application/problem+json"
    typed = await client.post("/v1/sessions", json={"username": 7, "password": ["x"]})
    assert typed.status == 422
    assert set((await typed.json())["errors"]) == {"username", "password"}
    missing = await client.post("/v1/sessions", json={"username": "admin"})
    assert missing.status == 422 and "password" in (await missing.json())["errors"]


async def test_login_attempts_are_audited(client, admin):
    await login(client, "admin", "not-the-password-2")
    response = await client.get("/v1/audit", headers=admin, params={"actor": "admin"})
    entries = [e for e in (await response.json())["items"] if e["action"] == "POST /v1/sessions"]
    assert {e["result"] for e in entries} >= {"ok", "unauthenticated"}
    assert all(e["cas"] == "CNAS" for e in entries)
