"""Numbered, checksummed SQL migrations, one PostgreSQL schema per service.

Two sets are applied to each service's schema, each in version order and each file once,
in its own transaction, recorded with its SHA-256:

* the platform's (``shared/platform_migrations/``: the outbox, inbox and audit tables
  every service has), recorded in ``<schema>.platform_migrations``;
* the service's own (``services/<svc>/migrations/NNN_name.sql``), recorded in
  ``<schema>.schema_migrations``.

An applied file that changed afterwards stops the start (migrations are additive: write
a new one). An advisory lock lets several replicas start at the same moment safely.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from shared.logging import get_logger

log = get_logger(__name__)

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
PLATFORM = ("shared", "platform_migrations")


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


def load_migrations(package: str, folder: str = "migrations") -> list[Migration]:
    """Read ``<package>/<folder>/*.sql`` in version order; gaps and duplicates are errors."""
    directory = resources.files(package) / folder
    found: list[Migration] = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"{package}/{folder}: expected migration {expected:03d}, found {migration.name}")
    return found


async def _apply(conn: asyncpg.Connection, schema: str, table: str, migrations: list[Migration]) -> list[str]:
    # ``table`` is one of two constants below, never input.
    await conn.execute(
        f"""create table if not exists {table} (
               version integer primary key,
               name text not null,
               checksum text not null,
               applied_at timestamptz not null default now())""")
    applied = {r["version"]: r for r in await conn.fetch(f"select version, name, checksum from {table}")}
    names: list[str] = []
    for migration in migrations:
        done = applied.get(migration.version)
        if done is not None:
            if done["checksum"] != migration.checksum:
                raise MigrationError(f"{schema}: applied migration {migration.name} ({table}) was edited "
                                     "afterwards; add a new migration instead")
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(f"insert into {table} (version, name, checksum) values ($1, $2, $3)",
                               migration.version, migration.name, migration.checksum)
        names.append(migration.name)
        log.info("migration_applied", schema=schema, migration=migration.name, set=table)
    return names


async def migrate(database_url: str, schema: str, package: str) -> list[str]:
    """Apply the pending platform migrations, then those of ``package``, to ``schema``;
    returns the names applied."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise MigrationError(f"bad schema name {schema!r}")
    platform = load_migrations(*PLATFORM)
    own = load_migrations(package)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("select pg_advisory_lock(hashtext($1))", f"siui-migrate:{schema}")
        try:
            await conn.execute(f"create schema if not exists {schema}")
            await conn.execute(f"set search_path to {schema}, public")
            return (await _apply(conn, schema, "platform_migrations", platform)
                    + await _apply(conn, schema, "schema_migrations", own))
        finally:
            await conn.execute("select pg_advisory_unlock(hashtext($1))", f"siui-migrate:{schema}")
    finally:
        await conn.close()
