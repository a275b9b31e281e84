"""Real infrastructure for integration and e2e tests: a fresh PostgreSQL database and an
isolated RabbitMQ exchange per test session, the dev PKI, and tokens."""
from __future__ import annotations

import contextlib
import os
import socket
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shared.auth import ALL_RIGHTS, TOKEN_AUDIENCE, TOKEN_ISSUER
from shared.broker import TOPOLOGY
from shared.config import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL


def base_database_url() -> str:
    return os.environ.get("SIUI_DATABASE_URL") or DEFAULT_DATABASE_URL


def amqp_url() -> str:
    return os.environ.get("SIUI_AMQP_URL") or DEFAULT_AMQP_URL


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(prefix: str = "siui_test") -> str:
    """A new empty database; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(base_database_url(), "postgres"))
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    return with_database(base_database_url(), name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(base_database_url(), "postgres"))
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


async def delete_exchange(exchange: str) -> None:
    """Remove a test exchange with its queues and dead-letter queues."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url())
    try:
        channel = await connection.channel()
        for spec in TOPOLOGY:
            for name in (f"{exchange}.{spec.name}", f"{exchange}.{spec.name}.dlq"):
                await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
        await channel.exchange_delete(f"{exchange}.dlx")
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    try:
        yield CommonConfig(database_url=url, amqp_url=amqp_url(), data_dir=data_dir,
                           events_exchange=exchange, host="127.0.0.1", log_format="console")
    finally:
        await delete_exchange(exchange)
        await drop_database(url)


def metrics_headers(data_dir) -> dict[str, str]:
    """What GET /metrics asks for: the metrics token of that data directory."""
    from pathlib import Path

    token = (Path(data_dir) / "secrets" / "metrics-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}
