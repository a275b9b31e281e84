"""users service, sessions: login, the lockout of an account from one address, one answer
for unknown, wrong and locked, external users refused, logout and the end of a user's
rights revoke.

Runs against a real PostgreSQL database and RabbitMQ exchange of its own (so that no
other module's events or users show up), through the real app. The app believes
X-Forwarded-For from 127.0.0.1, as behind the console or a proxy, so each test chooses
the client address of its attempts.
"""
from __future__ import annotations

import asyncio
import dataclasses
import statistics
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from services.users import routes
from services.users.app import create_app
from services.users.routes import NATIONAL_ADMIN_ENSURED
from services.users.config import Config
from shared.auth import ALL_RIGHTS, TOKEN_AUDIENCE, VERIFIER, TokenVerifier
from shared.inbox import CONSUMED
from shared.broker import connect
from shared.events import Envelope, KeyIssued, SessionRevoked, new_envelope
from shared.http.operational import METRICS_TOKEN
from tests.support import infra
from tests.support.clock import ShiftedClock
from tests.support.wait import eventually

ADMIN_PASSWORD = "parola-de-test-2026"
STAFF_PASSWORD = "munte-si-mare-2026"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
GENERIC = ("wrong user name or password (after 5 wrong passwords in a row from one address, "
           "that account cannot log in from there for 15 minutes)")
HOME = "203.0.113.10"       # where the account's owner logs in from
STRANGER = "198.51.100.66"  # somebody else
# Headers that differ between any two answers, whatever they answer.
PER_ANSWER = {"date", "x-request-id"}


class HeldHasher(PasswordHasher):
    """FAST's parameters; while ``hold`` is clear, every check waits in its thread until
    the test sets it (a login caught between its password check and its session)."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.hold = threading.Event()
        self.hold.set()
        self.entered = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):
        with self._lock:
            self.entered += 1
        self.hold.wait(30)
        return super().verify(hash, password)


@pytest.fixture(scope="module")
async def common(pki):
    async with infra.isolated_config(pki.data_dir, "siui_users_sessions") as config:
        yield dataclasses.replace(config, trusted_proxies=frozenset({"127.0.0.1", "::1"}))


@pytest.fixture(scope="module")
def clock():
    return ShiftedClock()


@pytest.fixture(scope="module")
def hasher():
    return HeldHasher()


@pytest.fixture(scope="module")
async def client(common, clock, hasher):
    # The per-address and global limits are tested in test_users_login_limits.py; here
    # they stay out of the way of a module that logs in a hundred times a minute.
    config = Config(common=common, port=0, admin_password=ADMIN_PASSWORD, max_failed_logins=5,
                    lockout_minutes=15, login_per_address=10_000, login_global_per_second=10_000)
    async with TestClient(TestServer(create_app(config, clock=clock, hasher=hasher))) as client:
        # The national admin is made in the background at start: its tests begin once it is.
        await asyncio.wait_for(client.app[NATIONAL_ADMIN_ENSURED].wait(), 30)
        yield client


@pytest.fixture(scope="module")
def admin(auth_for):
    return auth_for(username="cnas.root", cas="CNAS", rights=ALL_RIGHTS, roles=("national-admin",))


async def login(client, username, password, address=HOME):
    return await client.post("/v1/sessions", json={"username": username, "password": password},
                             headers={"X-Forwarded-For": address})


async def make_staff(client, admin, username, cas="B", roles=("house-operator",)):
    response = await client.post("/v1/users", headers=admin, json={
        "username": username, "password": STAFF_PASSWORD, "cas": cas, "employee_code": "E1",
        "employee_name": "Ion Popescu", "roles": list(roles)})
    assert response.status == 201, await response.text()


async def answer(response) -> tuple[int, bytes, dict[str, str]]:
    """What a refused login shows its sender: status, body bytes, headers."""
    return (response.status, await response.read(),
            {k.lower(): v for k, v in response.headers.items() if k.lower() not in PER_ANSWER})


def jti_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False}, audience=TOKEN_AUDIENCE)["jti"]


async def logins_counted(client, outcome: str) -> float:
    """siui_users_logins_total{outcome} as /metrics reports it."""
    token = client.server.app[METRICS_TOKEN].decode()
    text = await (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text()
    for line in text.splitlines():
        if line.startswith(f'siui_users_logins_total{{outcome="{outcome}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


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
    wrong = await login(client, "admin", "not-the-password-1", address="192.0.2.1")
    unknown = await login(client, "nobody.here", "not-the-password-1", address="192.0.2.1")
    assert wrong.status == unknown.status == 401
    assert wrong.content_type == "application/problem+json"
    assert (await wrong.json())["detail"] == (await unknown.json())["detail"] == GENERIC


async def test_a_stranger_cannot_lock_admin_out(client):
    """Twenty wrong passwords for admin from one address lock admin for that address only."""
    first = None
    for _ in range(20):
        refused = await answer(await login(client, "admin", "not-the-password-1", address=STRANGER))
        assert refused[0] == 401
        first = first or refused
        assert refused == first  # the fifth, the sixth, the twentieth: no different answer
    # Even the right password, from the stranger's address: refused, and alike.
    assert await answer(await login(client, "admin", ADMIN_PASSWORD, address=STRANGER)) == first
    # The owner, from another address, logs in at once.
    owner = await login(client, "admin", ADMIN_PASSWORD, address=HOME)
    assert owner.status == 201, await owner.text()


async def test_locked_unknown_and_wrong_answer_byte_for_byte(client, admin):
    await make_staff(client, admin, "same.answer")
    for _ in range(5):
        await login(client, "same.answer", "not-the-password-1", address="192.0.2.20")
    answers = {
        "wrong password": await answer(await login(client, "same.answer", "not-the-password-1",
                                                   address="192.0.2.21")),
        "unknown user": await answer(await login(client, "nobody.at.all", "not-the-password-1",
                                                 address="192.0.2.21")),
        "locked, right password": await answer(await login(client, "same.answer", STAFF_PASSWORD,
                                                           address="192.0.2.20")),
        "locked, wrong password": await answer(await login(client, "same.answer", "not-the-password-1",
                                                           address="192.0.2.20")),
    }
    status, body, headers = answers["wrong password"]
    assert status == 401 and headers["content-type"].startswith("application/problem+json")
    assert headers["www-authenticate"] == "Bearer"
    assert b"locked" not in body and b"until" not in body
    for what, seen in answers.items():
        assert seen == answers["wrong password"], what


async def test_unknown_names_are_counted_and_locked_like_real_ones(client):
    locked_before = await logins_counted(client, "locked")
    for _ in range(5):
        assert (await login(client, "never.existed", "not-the-password-1", address="192.0.2.30")).status == 401
    assert await logins_counted(client, "locked") == locked_before
    assert (await login(client, "never.existed", "not-the-password-1", address="192.0.2.30")).status == 401
    # The sixth was not even compared: the pair is locked, as a real account's would be.
    assert await logins_counted(client, "locked") == locked_before + 1


async def test_five_wrong_passwords_lock_the_account_from_that_address_only(client, admin, clock):
    await make_staff(client, admin, "locked.out")
    for _ in range(5):
        response = await login(client, "locked.out", "not-the-password-1", address=STRANGER)
        assert (await response.json())["detail"] == GENERIC
    # Even the right password is refused from there while locked, with the same detail.
    right = await login(client, "locked.out", STAFF_PASSWORD, address=STRANGER)
    assert right.status == 401 and (await right.json())["detail"] == GENERIC
    detail = await (await client.get("/v1/users/locked.out", headers=admin)).json()
    until = datetime.fromisoformat(detail["locked_until"])  # the admin sees that a lock exists
    assert timedelta(minutes=14) < until - datetime.now(timezone.utc) <= timedelta(minutes=15)
    # From the owner's address the account is not locked.
    assert (await login(client, "locked.out", STAFF_PASSWORD, address=HOME)).status == 201
    # Fifteen minutes later the lock is over for the stranger's address too.
    clock.offset = timedelta(minutes=15, seconds=1)
    try:
        assert (await login(client, "locked.out", STAFF_PASSWORD, address=STRANGER)).status == 201
    finally:
        clock.offset = timedelta()


async def test_a_correct_password_starts_the_count_again(client, admin):
    await make_staff(client, admin, "clumsy.typist")
    for _ in range(4):
        await login(client, "clumsy.typist", "not-the-password-1")
    assert (await login(client, "clumsy.typist", STAFF_PASSWORD)).status == 201
    for _ in range(4):
        await login(client, "clumsy.typist", "not-the-password-1")
    assert (await login(client, "clumsy.typist", STAFF_PASSWORD)).status == 201


async def test_an_admin_can_unlock(client, admin):
    await make_staff(client, admin, "unlock.me")
    for _ in range(5):
        await login(client, "unlock.me", "not-the-password-1")
    assert (await login(client, "unlock.me", STAFF_PASSWORD)).status == 401
    response = await client.patch("/v1/users/unlock.me", headers=admin, json={"unlock": True})
    assert response.status == 200
    assert (await login(client, "unlock.me", STAFF_PASSWORD)).status == 201


async def test_refusals_take_as_long_locked_unknown_or_wrong(common, admin):
    """The dummy hash: an unknown name and a locked pair cost one argon2 check, as a wrong
    password does. With a check of some tens of milliseconds, a path that skipped it
    would answer in a few."""
    slow = PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)
    config = Config(common=common, port=0, admin_password=ADMIN_PASSWORD,
                    login_per_address=10_000, login_global_per_second=10_000)
    async with TestClient(TestServer(create_app(config, hasher=slow))) as timed:
        await make_staff(timed, admin, "timed.one")  # hashed with these parameters
        for _ in range(5):
            await login(timed, "timed.one", "not-the-password-1", address="192.0.2.40")  # locks that pair
        kinds = {"wrong": ("timed.one", "192.0.2.41"), "unknown": ("nobody.timed", "192.0.2.41"),
                 "locked": ("timed.one", "192.0.2.40")}
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(9):  # interleaved, so that the machine's other load falls on all alike
            for kind, (username, address) in kinds.items():
                started = time.perf_counter()
                assert (await login(timed, username, "not-the-password-1", address=address)).status == 401
                times[kind].append(time.perf_counter() - started)
        medians = {kind: statistics.median(t) for kind, t in times.items()}
        print("refusal medians", medians)
        for kind in ("unknown", "locked"):
            assert 0.5 < medians[kind] / medians["wrong"] < 2, medians


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
        assert (await response.json())["detail"] == GENERIC


async def test_disabled_user_is_told_only_with_the_right_password(client, admin):
    await make_staff(client, admin, "gone.fishing")
    assert (await client.patch("/v1/users/gone.fishing", headers=admin, json={"enabled": False})).status == 200
    assert (await (await login(client, "gone.fishing", "not-the-password-1")).json())["detail"] == GENERIC
    refused = await login(client, "gone.fishing", STAFF_PASSWORD)
    assert refused.status == 401 and "disabled" in (await refused.json())["detail"]


@pytest.fixture
async def revocations(common):
    """A queue of our own bound to SessionRevoked: ``await revocations(jti)`` waits for
    that session's event."""
    connection = await aio_pika.connect(infra.admin_amqp_url())  # a watcher's own queue
    channel = await connection.channel()
    exchange = await channel.get_exchange(common.events_exchange)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key=SessionRevoked.ROUTING_KEY)
    seen: dict[str, SessionRevoked] = {}

    async def revoked(jti: str) -> SessionRevoked:
        async def arrived():
            message = await queue.get(fail=False)
            while message is not None:
                await message.ack()
                assert message.user_id == "siui-users"  # what every follower requires
                event = Envelope.from_json(message.body).payload()
                seen[event.jti] = event
                message = await queue.get(fail=False)
            return seen.get(jti)

        return await eventually(arrived, what=f"SessionRevoked {jti} on the bus")

    yield revoked
    await connection.close()


async def test_logout_revokes_the_token_here_and_on_the_bus(client, revocations):
    body = await (await login(client, "admin", ADMIN_PASSWORD)).json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get("/v1/users", headers=auth)).status == 200
    assert (await client.delete("/v1/sessions/current", headers=auth)).status == 204
    after = await client.get("/v1/users", headers=auth)
    assert after.status == 401 and "ended" in (await after.json())["detail"]
    assert (await client.delete("/v1/sessions/current", headers=auth)).status == 401
    event = await revocations(jti_of(body["token"]))
    assert event.username == "admin"


async def _two_sessions(client, admin, username, roles=("house-admin",)):
    await make_staff(client, admin, username, roles=roles)
    tokens = [(await (await login(client, username, STAFF_PASSWORD, address=address)).json())["token"]
              for address in (HOME, "192.0.2.50")]
    for token in tokens:
        assert (await client.get("/v1/users", headers={"Authorization": f"Bearer {token}"})).status == 200
    return tokens


async def _ended(client, revocations, username, tokens):
    """Every one of the user's sessions is refused here and announced on the bus."""
    for token in tokens:
        event = await revocations(jti_of(token))
        assert event.username == username
        refused = await client.get("/v1/roles", headers={"Authorization": f"Bearer {token}"})
        assert refused.status == 401 and "ended" in (await refused.json())["detail"]


async def test_removing_a_users_roles_ends_their_sessions(client, admin, revocations):
    tokens = await _two_sessions(client, admin, "demoted.one")
    response = await client.put("/v1/users/demoted.one/roles", headers=admin, json={"roles": []})
    assert response.status == 200 and (await response.json())["roles"] == []
    await _ended(client, revocations, "demoted.one", tokens)
    # A new login carries what the user holds now: nothing.
    body = await (await login(client, "demoted.one", STAFF_PASSWORD)).json()
    assert body["user"]["rights"] == [] and body["user"]["roles"] == []


async def test_disabling_a_user_ends_their_sessions(client, admin, revocations):
    tokens = await _two_sessions(client, admin, "short.lived")
    assert (await client.patch("/v1/users/short.lived", headers=admin, json={"enabled": False})).status == 200
    await _ended(client, revocations, "short.lived", tokens)


async def test_deleting_a_user_ends_their_sessions(client, admin, revocations):
    tokens = await _two_sessions(client, admin, "leaving.soon")
    assert (await client.delete("/v1/users/leaving.soon", headers=admin)).status == 204
    await _ended(client, revocations, "leaving.soon", tokens)


async def _held_login(client, hasher, username, password):
    """Start a login and return once its password check has begun (held in its thread)."""
    entered = hasher.entered
    hasher.hold.clear()
    started = asyncio.create_task(login(client, username, password, address="192.0.2.60"))

    async def checking():
        return hasher.entered > entered

    try:
        await eventually(checking, what="the login's password check under way")
    except BaseException:
        hasher.hold.set()
        raise
    return started


async def test_roles_removed_during_a_login_apply_to_its_token(client, admin, hasher):
    """The password is checked outside any transaction; the session is opened under the
    user's row lock, reading roles then: a change made meanwhile is never missed."""
    await make_staff(client, admin, "mid.login")
    pending = await _held_login(client, hasher, "mid.login", STAFF_PASSWORD)
    try:
        response = await client.put("/v1/users/mid.login/roles", headers=admin, json={"roles": []})
        assert response.status == 200
    finally:
        hasher.hold.set()
    body = await (await pending).json()
    assert body["user"]["roles"] == [] and body["user"]["rights"] == []
    assert jwt.decode(body["token"], options={"verify_signature": False}, audience=TOKEN_AUDIENCE)["rights"] == []


@pytest.mark.parametrize("change, detail", [({"enabled": False}, "disabled"),
                                            ({"password": "alt-munte-2027-x"}, "wrong user name")])
async def test_disabled_or_repassworded_during_a_login_gets_no_session(client, admin, hasher, change, detail):
    username = f"mid.{uuid.uuid4().hex[:6]}"
    await make_staff(client, admin, username)
    pending = await _held_login(client, hasher, username, STAFF_PASSWORD)
    try:
        assert (await client.patch(f"/v1/users/{username}", headers=admin, json=change)).status == 200
    finally:
        hasher.hold.set()
    refused = await pending
    assert refused.status == 401 and detail in (await refused.json())["detail"]


async def test_bad_login_requests(client):
    garbage = await client.post("/v1/sessions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status == 400 and garbage.content_type == "application/problem+json"
    typed = await client.post("/v1/sessions", json={"username": 7, "password": ["x"]})
    assert typed.status == 422
    assert set((await typed.json())["errors"]) == {"username", "password"}
    missing = await client.post("/v1/sessions", json={"username": "admin"})
    assert missing.status == 422 and "password" in (await missing.json())["errors"]
    huge = await client.post("/v1/sessions", json={"username": "admin", "password": "x" * 5000})
    assert huge.status == 401 and (await huge.json())["detail"] == GENERIC


async def test_login_attempts_are_audited(client, admin):
    await login(client, "admin", "not-the-password-2", address="192.0.2.70")
    response = await client.get("/v1/audit", headers=admin, params={"actor": "admin"})
    entries = [e for e in (await response.json())["items"] if e["action"] == "POST /v1/sessions"]
    assert {e["result"] for e in entries} >= {"ok", "unauthenticated"}
    assert all(e["cas"] == "CNAS" for e in entries)
    assert "192.0.2.70" in {e["address"] for e in entries}  # the client's, not the proxy's


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
