"""Real infrastructure for integration and e2e tests: a fresh PostgreSQL database and an
isolated RabbitMQ exchange per test session, the dev PKI, the services' broker logins,
and tokens.

The broker users are the machine's, made by deploy/setup.sh (``make test`` runs it): the
tests log in as the service they stand for (``amqp_url_for("keygen")`` publishes a
KeyIssued as siui-keygen would), and a data directory made for tests gets the same
password files (``install_broker_secrets``). Only the set-up's own steps, declaring and
deleting a test exchange's topology and watching what is published, use the broker's
administrator (``admin_amqp_url``: guest, which RabbitMQ admits from loopback only).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shared.auth import ALL_RIGHTS, TOKEN_AUDIENCE, TOKEN_ISSUER
from shared.broker import SERVICES, broker_url, declare_topology, secret_path, topology
from shared.config import DEFAULT_AMQP_URL, DEFAULT_AMQP_USER_PREFIX, DEFAULT_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]


def base_database_url() -> str:
    """The service role's DSN (SIUI_DATABASE_URL): what services connect as."""
    return os.environ.get("SIUI_DATABASE_URL") or DEFAULT_DATABASE_URL


#: The owner role deploy/setup.sh makes (its DEFAULT_DATABASE_OWNER_URL).
DEFAULT_OWNER_CREDENTIALS = "siui_owner:siui_owner"


def base_owner_url() -> str:
    """The owner role's DSN (SIUI_DATABASE_OWNER_URL, default the set-up's siui_owner on
    SIUI_DATABASE_URL's host): it creates the test databases and runs the migrations."""
    given = os.environ.get("SIUI_DATABASE_OWNER_URL")
    if given:
        return given
    parts = urlsplit(base_database_url())
    return urlunsplit(parts._replace(netloc=DEFAULT_OWNER_CREDENTIALS + "@" + parts.netloc.rpartition("@")[2]))


def owner_url(database_url: str) -> str:
    """The owner's DSN for the same database as ``database_url`` (a service role's)."""
    return with_database(base_owner_url(), urlsplit(database_url).path.lstrip("/"))


def amqp_url() -> str:
    """The broker's address as the services get it: no user (each logs in as its own)."""
    return os.environ.get("SIUI_AMQP_URL") or DEFAULT_AMQP_URL


def admin_amqp_url() -> str:
    """The broker's administrator, for the set-up's steps only (SIUI_TEST_AMQP_ADMIN_URL,
    default guest on SIUI_AMQP_URL's host and port)."""
    given = os.environ.get("SIUI_TEST_AMQP_ADMIN_URL")
    if given:
        return given
    parts = urlsplit(amqp_url())
    return urlunsplit(parts._replace(netloc="guest:guest@" + parts.netloc.rpartition("@")[2]))


def data_dir() -> Path:
    """The data directory deploy/setup.sh wrote the broker passwords in."""
    return Path(os.environ.get("SIUI_DATA_DIR") or ROOT / ".siui").resolve()


def user_prefix() -> str:
    return os.environ.get("SIUI_AMQP_USER_PREFIX", "").strip() or DEFAULT_AMQP_USER_PREFIX


def amqp_url_for(service: str) -> str:
    """The URL ``service`` logs in with (its own broker user and password): for tests that
    publish as that service, or check what its user may not do."""
    return broker_url(amqp_url(), data_dir(), service, user_prefix=user_prefix())


def install_broker_secrets(target: Path) -> None:
    """Give a data directory made for tests the machine's broker passwords (0600), so
    that services started on it log in exactly as deployed ones do."""
    for service in SERVICES:
        source, copy = secret_path(data_dir(), service), secret_path(Path(target), service)
        copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        copy.chmod(0o600)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(prefix: str = "siui_test") -> str:
    """A new empty database shaped as deploy/setup.sh shapes the deployment's: made and
    owned by the owner role (which runs the migrations: ``owner_url``), the service role
    let in (CONNECT, TEMPORARY) and nothing more, so every test meets the real
    privileges. Returns the service role's DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    from shared.migrations import role_of

    service = role_of(base_database_url())
    admin = await asyncpg.connect(with_database(base_owner_url(), "postgres"))
    try:
        await admin.execute(f'create database "{name}"')
        await admin.execute(f'revoke all on database "{name}" from public')
        await admin.execute(f'grant connect, temporary on database "{name}" to "{service}"')
    finally:
        await admin.close()
    return with_database(base_database_url(), name)


async def migrate_schema(database_url: str, schema: str, package: str) -> list[str]:
    """Migrate ``schema`` of the database of ``database_url`` (a service role's DSN) as a
    service does at start: as the owner, granting the service role its share."""
    from shared.migrations import migrate, role_of

    return await migrate(owner_url(database_url), schema, package, service_role=role_of(database_url))


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(base_owner_url(), "postgres"))
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


async def declare_exchange(exchange: str) -> None:
    """Declare a test exchange's topology, as the set-up does for the deployment's."""
    import aio_pika

    connection = await aio_pika.connect(admin_amqp_url())
    try:
        await declare_topology(await connection.channel(), exchange)
    finally:
        await connection.close()


async def delete_exchange(exchange: str) -> None:
    """Remove a test exchange with its queues and dead-letter queues."""
    import aio_pika

    connection = await aio_pika.connect(admin_amqp_url())
    try:
        channel = await connection.channel()
        described = topology(exchange)
        for queue in described["queues"]:
            await channel.queue_delete(queue["name"])
        for declared in described["exchanges"]:
            await channel.exchange_delete(declared["name"])
    finally:
        await connection.close()


# Ports this test process has handed out. A port is free when asked for, but it stays
# free until its service binds it, and the kernel may offer it again meanwhile: two
# services of one stack were once given the same port (seen by make test-fresh).
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never one this process handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def make_token(private_key_path, *, username: str = "operator.b", cas: str = "B",
               rights=ALL_RIGHTS, roles=("house-admin",), minutes: int = 15) -> str:
    """A token as the users service would sign it (for tests of the other services)."""
    key = load_pem_private_key(open(private_key_path, "rb").read(), None)
    now = datetime.now(timezone.utc)
    claims = {"sub": username, "cas": cas, "rights": sorted(rights), "roles": list(roles),
              "jti": str(uuid.uuid4()), "iat": now, "exp": now + timedelta(minutes=minutes),
              "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE}
    return jwt.encode(claims, key, algorithm="EdDSA")


@contextlib.asynccontextmanager
async def isolated_config(data_dir, prefix: str):
    """A CommonConfig on a database and exchange of its own, removed afterwards: for test
    modules whose events must not meet those of other modules."""
    from shared.config import CommonConfig

    url = await create_database(prefix)
    exchange = f"siui.test.{prefix}.{uuid.uuid4().hex[:8]}"
    await declare_exchange(exchange)
    try:
        yield CommonConfig(database_url=url, database_owner_url=owner_url(url), amqp_url=amqp_url(), data_dir=data_dir,
                           events_exchange=exchange, host="127.0.0.1", log_format="console")
    finally:
        await delete_exchange(exchange)
        await drop_database(url)


def metrics_headers(data_dir) -> dict[str, str]:
    """What GET /metrics asks for: the metrics token of that data directory."""
    from pathlib import Path

    token = (Path(data_dir) / "secrets" / "metrics-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


class Publishers:
    """Publishes each event as the service that publishes it in production: logged in as
    that service's broker user (``shared.broker.PUBLISHERS``), stamped with its user_id,
    with confirms. One connection per service, opened on first use."""

    def __init__(self, exchange: str):
        self.exchange = exchange
        self.brokers: dict = {}

    async def as_service(self, service: str):
        from shared.broker import connect

        if service not in self.brokers:
            self.brokers[service] = await connect(amqp_url_for(service), self.exchange)
        return self.brokers[service]

    async def publish(self, envelope) -> None:
        from shared.broker import publisher_of

        await (await self.as_service(publisher_of(envelope.routing_key))).publish(envelope)

    async def close(self) -> None:
        for broker in self.brokers.values():
            await broker.close()
        self.brokers.clear()
