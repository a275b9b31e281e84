"""Benchmark: how fast one service appends to its audit trail.

    .venv/bin/python -m bench.audit [--rows 3000] [--concurrency 16]

Appends ``--rows`` audit rows from ``--concurrency`` requests at once through a pool of
10 connections as the service role, twice in the same run:

* the anchor: the insert the audit middleware made before the chain (one statement, no
  lock: concurrent inserts commit side by side);
* ``shared.audit.append_audit``: the head locked, the row hashed and appended through
  the owner's function, the head moved, one transaction; appends queue on the head.

Prints rows/s for both, and checks the chain (target: at least 300 appends/s from one
service, far above what operators' writes ask for). Needs PostgreSQL as the tests do; the
scratch database is removed.
"""
from __future__ import annotations

import argparse
import asyncio
import time

from deploy.verify_audit import verify
from shared.audit import append_audit
from shared.db import create_pool
from shared.migrations import role_of
from tests.support import infra

SCHEMA = "keygen"  # the genesis names it; the tables are the platform's
TARGET = 300.0


def entry(n: int) -> dict:
    return {"actor": "operator.b", "actor_cas": "B", "cas": "B", "action": "POST /v1/providers",
            "target_kind": "provider", "target_id": str(n), "status": 201, "result": "ok",
            "address": "10.0.0.7", "details": {"key_id": f"k-{n}", "reset": False}}


async def anchor_insert(conn, n: int) -> None:
    """The middleware's insert before the chain."""
    e = entry(n)
    await conn.execute(
        """insert into audit_log (actor, actor_cas, cas, action, target_kind, target_id,
                                  status, result, address, details)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        e["actor"], e["actor_cas"], e["cas"], e["action"], e["target_kind"], e["target_id"],
        e["status"], e["result"], e["address"], e["details"])


async def chained_append(conn, n: int) -> None:
    await append_audit(conn, SCHEMA, entry(n))


async def timed(pool, write, rows: int, concurrency: int) -> float:
    numbers = iter(range(rows))

    async def worker() -> None:
        for n in numbers:
            async with pool.acquire() as conn:
                await write(conn, n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rows / (time.perf_counter() - started)


async def main(rows: int, concurrency: int) -> int:
    database_url = await infra.create_database("siui_bench_audit")
    try:
        await infra.migrate_schema(database_url, SCHEMA, "tests.support.sample_service")
        owner = await __import__("asyncpg").connect(infra.owner_url(database_url))
        # The anchor's insert needs the privilege the service role no longer has.
        await owner.execute(f'grant insert on {SCHEMA}.audit_log to "{role_of(database_url)}"')
        await owner.close()
        pool = await create_pool(database_url, SCHEMA, max_size=10)
        try:
            anchor = await timed(pool, anchor_insert, rows, concurrency)
            chained = await timed(pool, chained_append, rows, concurrency)
        finally:
            await pool.close()
        started = time.perf_counter()
        (outcome,) = await verify(infra.owner_url(database_url), [SCHEMA])
        verified = outcome.checked / (time.perf_counter() - started)
    finally:
        await infra.drop_database(database_url)
    print(f"audit appends, {rows:,} rows, {concurrency} at once, pool of 10, as the service role:")
    print(f"  anchor (plain insert, no chain):               {anchor:8,.0f} rows/s")
    print(f"  shared.audit.append_audit (hash chain, locked): {chained:8,.0f} rows/s  ({chained / anchor:.2f}x)")
    print(f"  deploy.verify_audit: {outcome}; {verified:,.0f} rows/s")
    print(f"  target {TARGET:,.0f} appends/s: {'met' if chained >= TARGET else 'NOT met'}")
    return 0 if chained >= TARGET and outcome.broken is None and outcome.checked == rows else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.rows, args.concurrency)))
