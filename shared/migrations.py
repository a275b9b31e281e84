"""Numbered, checksummed SQL migrations, one PostgreSQL schema per service.

Two sets are applied to each service's schema, each in version order and each file once,
in its own transaction, recorded with its SHA-256:

* the platform's (``shared/platform_migrations/``: the outbox, inbox and audit tables
  every service has), recorded in ``<schema>.platform_migrations``;
* the service's own (``services/<svc>/migrations/NNN_name.sql``), recorded in
  ``<schema>.schema_migrations``.

An applied file that changed afterwards stops the start (migrations are additive: write
a new one). An advisory lock lets several replicas start at the same moment safely.

Two database roles: the owner (``SIUI_DATABASE_OWNER_URL``) runs the migrations and owns
the schema and everything in it; the service role (``SIUI_DATABASE_URL``) is what the
service's pool connects as. After migrating, ``grant_service_role`` gives the service role
what it needs and no more: reading and writing its tables, except the append-only ones
(the audit chain's, and the migration records), which it may only read; the audit rows
it adds through the chain's functions, which run as the owner. When both URLs name the
same role (an older deployment), that role owns everything and nothing is granted.
"""
from __future__ import annotations

import getpass
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from shared.audit_chain import CHAIN_TABLES
from shared.config import parse_dsn
from shared.logging import get_logger

log = get_logger(__name__)

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
PLATFORM = ("shared", "platform_migrations")
_RECORDS = ("platform_migrations", "schema_migrations")
#: What the service role may read but never change (no INSERT, UPDATE, DELETE, TRUNCATE).
READ_ONLY_TABLES = CHAIN_TABLES + _RECORDS


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


async def grant_service_role(conn: asyncpg.Connection, schema: str, role: str) -> None:
    """Give ``role`` (the service's) what it needs in ``schema``, as its owner; also the
    default privileges, for tables made later by the owner (the OCSP log's day partitions,
    created by a function running as the owner). Idempotent: run after every migration."""
    r = _ident(role)
    for statement in (
            f"grant usage on schema {schema} to {r}",
            f"grant select, insert, update, delete on all tables in schema {schema} to {r}",
            f"grant usage, select on all sequences in schema {schema} to {r}",
            f"grant execute on all functions in schema {schema} to {r}",
            f"alter default privileges in schema {schema} grant select, insert, update, delete on tables to {r}",
            f"alter default privileges in schema {schema} grant usage, select on sequences to {r}",
            f"alter default privileges in schema {schema} grant execute on functions to {r}",
            f"revoke insert, update, delete, truncate, references, trigger on "
            f"{', '.join(READ_ONLY_TABLES)} from {r}",
            f"grant select on {', '.join(READ_ONLY_TABLES)} to {r}"):
        await conn.execute(statement)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def role_of(database_url: str) -> str:
    """The role a DSN logs in as (libpq's default, the OS user, when it names none)."""
    return parse_dsn(database_url).user or getpass.getuser()


async def migrate(database_url: str, schema: str, package: str, *,
                  service_role: str | None = None) -> list[str]:
    """Apply the pending platform migrations, then those of ``package``, to ``schema``,
    connected as the owner (``database_url``); then grant ``service_role``, if it is
    another role, its share (``grant_service_role``). Returns the names applied."""
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
            applied = (await _apply(conn, schema, "platform_migrations", platform)
                       + await _apply(conn, schema, "schema_migrations", own))
            if service_role is not None and service_role != await conn.fetchval("select current_user"):
                # One transaction: the service role never holds, even for a moment, the
                # broad grant before the audit tables' revoke.
                async with conn.transaction():
                    await grant_service_role(conn, schema, service_role)
            return applied
        finally:
            await conn.execute("select pg_advisory_unlock(hashtext($1))", f"siui-migrate:{schema}")
    finally:
        await conn.close()
