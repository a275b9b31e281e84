"""Numbered, checksummed SQL migrations, one PostgreSQL schema per service.

Files are ``services/<svc>/migrations/NNN_name.sql``. Each is applied once, in its own
transaction, and recorded in ``<schema>.schema_migrations`` with its SHA-256; an applied
file that changed afterwards stops the start (migrations are additive: write a new one).
An advisory lock lets several replicas start at the same moment safely.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from shared.audit_schema import AUDIT_DDL

from shared.logging import get_logger

log = get_logger(__name__)
MESSAGING_DDL = """
create table if not exists outbox (
    seq bigserial primary key,
    event_id uuid not null unique,
    event_type text not null,
    routing_key text not null,
    body bytea not null,
    created_at timestamptz not null default now()
);
create table if not exists inbox (
    event_id uuid primary key,
    event_type text not null,
    received_at timestamptz not null default now()
);
"""

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    """Read ``<package>/migrations/*.sql`` in version order; gaps and duplicates are errors."""
    folder = resources.files(package) / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{package}: expected migration {expected:03d}, found {migration.name}")
    return found


async def migrate(database_url: str, schema: str, package: str) -> list[str]:
    """Apply the pending migrations of ``package`` to ``schema``; returns the names applied."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise MigrationError(f"bad schema name {schema!r}")
    migrations = load_migrations(package)
    conn = await asyncpg.connect(database_url)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock(hashtext($1))", f"siui-migrate:{schema}")
        try:
            await conn.execute(f"create schema if not exists {schema}")
            await conn.execute(f"set search_path to {schema}, public")
            await conn.execute(
                """create table if not exists schema_migrations (
                       version integer primary key,
                       name text not null,
                       checksum text not null,
                       applied_at timestamptz not null default now())"""
            )
            # The outbox and inbox every service has; idempotent DDL, owned by shared/.
            await conn.execute(MESSAGING_DDL)
            await conn.execute(AUDIT_DDL)
            rows = await conn.fetch("select version, name, checksum from schema_migrations")
            applied = {r["version"]: r for r in rows}
            for migration in migrations:
                done = applied.get(migration.version)
                if done is not None:
                    if done["checksum"] != migration.checksum:
                        raise MigrationError(
                            f"{schema}: applied migration {migration.name} was edited afterwards; "
                            "add a new migration instead")
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "insert into schema_migrations (version, name, checksum) values ($1, $2, $3)",
                        migration.version, migration.name, migration.checksum)
                applied_now.append(migration.name)
                log.info("migration_applied", schema=schema, migration=migration.name)
        finally:
            await conn.execute("select pg_advisory_unlock(hashtext($1))", f"siui-migrate:{schema}")
    finally:
        await conn.close()
    return applied_now
