"""Check every service's audit chain: ``python -m deploy.verify_audit``.

    python -m deploy.verify_audit [--database-url DSN] [--service keygen ...]
                                  [--expect keygen:1234:<hex hash> ...]

For each schema with an audit chain (``shared.audit_chain``), reads the chain's head and
anchor and then its rows in seq order, streamed through a cursor in one read-only
snapshot (constant memory, whatever the size), and prints the rows checked and OK, or the
first broken row: its service, seq and id, and what differs (a hash mismatch, a gap, the
tail missing). ``--expect`` names a checkpoint (as the services log it every
``SIUI_AUDIT_CHECKPOINT_SECONDS``, event ``audit_chain_head``): the chain must still pass
through it, which a chain rewritten or cut together with its head no longer does.

The DSN defaults to SIUI_DATABASE_OWNER_URL, then SIUI_DATABASE_URL (the service role may
read the chain too). Exit status: 0 every chain verifies, 1 one does not, 2 could not check.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from shared.audit_chain import FIELDS, Break, ChainCheck, Head, genesis, parse_checkpoint
from shared.config import DEFAULT_DATABASE_URL
from shared.db import init_connection

_COLUMNS = ", ".join(("id", *FIELDS, "row_hash"))
PREFETCH = 2_000


async def chained_schemas(conn: asyncpg.Connection) -> list[str]:
    """The schemas that have an audit chain, by name."""
    return [r["nspname"] for r in await conn.fetch(
        """select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where c.relname = 'audit_chain' and c.relkind = 'r' order by n.nspname""")]


async def chain_state(conn: asyncpg.Connection, schema: str) -> asyncpg.Record:
    # ``schema`` comes from chained_schemas (a catalog name), quoted all the same.
    return await conn.fetchrow(
        f"select seq, hash, anchor_seq, anchor_hash from {_ident(schema)}.audit_chain")


async def unchained_count(conn: asyncpg.Connection, schema: str) -> int:
    """Rows from before the chain (written before its migration)."""
    return await conn.fetchval(f"select count(*) from {_ident(schema)}.audit_log where seq is null")


def chained_rows(conn: asyncpg.Connection, schema: str, after: int) -> AsyncIterator[asyncpg.Record]:
    """The chained rows after seq ``after``, in seq order, through a cursor."""
    return conn.cursor(f"select {_COLUMNS} from {_ident(schema)}.audit_log "
                       "where seq > $1 order by seq", after, prefetch=PREFETCH)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Outcome:
    """One service's chain checked: rows verified, older unchained rows, its head, the break."""
    schema: str
    checked: int
    unchained: int
    head: Head
    broken: Break | None

    def __str__(self) -> str:
        before = f"; {self.unchained} older rows from before the chain, not covered" if self.unchained else ""
        if self.broken is None:
            return f"{self.schema}: OK, {self.checked} rows checked (head {self.schema}:{self.head}){before}"
        return f"{self.schema}: BROKEN at {self.broken} ({self.checked} rows verified before it){before}"


async def verify_schema(conn: asyncpg.Connection, schema: str, checkpoint: Head | None = None) -> Outcome:
    """Check one service's chain in one read-only snapshot (the head and the rows agree)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        state = await chain_state(conn, schema)
        start = Head(state["anchor_seq"], bytes(state["anchor_hash"]) if state["anchor_hash"] is not None
                     else genesis(schema))
        head = Head(state["seq"], bytes(state["hash"]) if state["hash"] is not None else genesis(schema))
        checker = ChainCheck(start, checkpoint)
        # The rows at and below the anchor would be a row the purge should have removed:
        # reading from the anchor on, any of them shows as out of order.
        async for record in chained_rows(conn, schema, start.seq - 1 if start.seq else 0):
            if checker.feed(dict(record)) is not None:
                break
        broken = checker.finish(head)
        return Outcome(schema, checker.checked, await unchained_count(conn, schema), head, broken)


async def verify(database_url: str, services: list[str] | None = None,
                 checkpoints: dict[str, Head] | None = None) -> list[Outcome]:
    checkpoints = checkpoints or {}
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await init_connection(conn)  # details read back as the services wrote them
        found = await chained_schemas(conn)
        wanted = services or found
        missing = sorted(set(wanted) - set(found)) + sorted(set(checkpoints) - set(found))
        if missing:
            raise LookupError(f"no audit chain in schema(s) {', '.join(missing)} (have: {', '.join(found) or 'none'})")
        return [await verify_schema(conn, schema, checkpoints.get(schema)) for schema in wanted]
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.verify_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SIUI_DATABASE_OWNER_URL")
                        or os.environ.get("SIUI_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--service", action="append", help="only this service's chain (repeatable)")
    parser.add_argument("--expect", action="append", default=[], metavar="SERVICE:SEQ:HASH",
                        help="a logged checkpoint the chain must pass through (repeatable, one per service)")
    args = parser.parse_args(argv)
    checkpoints: dict[str, Head] = {}
    try:
        for text in args.expect:
            service, head = parse_checkpoint(text)
            if service in checkpoints:
                raise ValueError(f"two checkpoints for {service}: give the latest")
            checkpoints[service] = head
        outcomes = asyncio.run(verify(args.database_url, args.service, checkpoints))
    except ValueError as exc:
        print(f"verify_audit: {exc}", file=sys.stderr)
        return 2
    except (LookupError, OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        print(f"verify_audit: cannot check: {exc}", file=sys.stderr)
        return 2
    for outcome in outcomes:
        print(outcome, flush=True)
    return 1 if any(o.broken for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
