"""Benchmark: the dashboard's expiring counts (``GET :8103/v1/certificates/expiring``'s
one statement, ``services.certs.queries.count_expiring``) over many certificates.

Creates a scratch database, migrates the certs schema, loads ``--certificates``
certificates (validity ending uniformly over the next three years, a twentieth revoked,
spread over the 43 houses), and times the statement as CNAS (every house) and as one
county: p50 / p99 over ``--runs`` runs, measured at the client. The scratch database is
removed at the end.

    .venv/bin/python -m bench.expiring [--certificates 300000] [--runs 200]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

from services.certs import queries
from services.certs.expiring import horizon
from shared.db import create_pool
from shared.expiry import WINDOWS
from shared.houses import COUNTY_HOUSE_CODES

from tests.support import infra


async def load(database_url: str, count: int) -> None:
    await infra.migrate_schema(database_url, "certs", "services.certs")
    pool = await create_pool(database_url, "certs")
    try:
        async with pool.acquire() as conn:
            issuer = uuid.uuid4()
            await conn.execute(
                """insert into issuers (id, subject_dn, subject_der, dn_key, certificate_der, serial, not_before,
                       not_after, name_sha1, key_sha1, name_sha256, key_sha256, created_at, created_by)
                   values ($1, 'CN=Bench CA', '\\x00', 'cn=bench ca', '\\x00', 1, now(), now() + interval '10 years',
                           '\\x00', '\\x00', '\\x00', '\\x00', now(), 'bench')""", issuer)
            houses = sorted(COUNTY_HOUSE_CODES)
            users = [(f"{10_000_000 + i}_CAS-{houses[i % len(houses)]}", houses[i % len(houses)], str(10_000_000 + i),
                      str(10_000_000 + i), "SC BENCH SRL", f"SIUI{houses[i % len(houses)]}",
                      f"CAS-{houses[i % len(houses)]}", datetime.now(timezone.utc)) for i in range(count // 2)]
            await conn.copy_records_to_table("external_users", records=users, columns=[
                "username", "cas", "provider_cui", "provider_code", "provider_name", "schema", "org_unit", "event_at"])
            now = datetime.now(timezone.utc)
            rows = [(uuid.uuid4(), users[i // 2][0], users[i // 2][1], users[i // 2][2], issuer, i + 1,
                     now - timedelta(days=30), now + timedelta(minutes=(i * 7919) % (3 * 365 * 24 * 60)),
                     "revoked" if i % 20 == 0 else "active", now, "bench") for i in range(count)]
            await conn.copy_records_to_table("certificates", records=rows, columns=[
                "id", "username", "cas", "provider_cui", "issuer_id", "serial", "not_before", "not_after", "status",
                "created_at", "created_by"])
            await conn.execute("vacuum analyze certificates")  # as autovacuum leaves it
    finally:
        await pool.close()


async def measure(database_url: str, cas: str | None, runs: int) -> tuple[float, float, int]:
    pool = await create_pool(database_url, "certs")
    try:
        timings, counted = [], 0
        async with pool.acquire() as conn:
            for _ in range(runs):
                started = time.perf_counter()
                now = datetime.now(timezone.utc)
                rows = await queries.count_expiring(conn, cas, now, horizon(now), list(WINDOWS))
                timings.append((time.perf_counter() - started) * 1000)
                counted = sum(r["count"] for r in rows if r["days"] == max(WINDOWS))
        timings.sort()
        return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))], counted
    finally:
        await pool.close()


async def main(certificates: int, runs: int) -> None:
    database_url = await infra.create_database("siui_bench_expiring")
    try:
        started = time.perf_counter()
        await load(database_url, certificates)
        print(f"loaded {certificates} certificates in {time.perf_counter() - started:.1f} s")
        for label, cas in (("CNAS, every house", None), ("county B", "B")):
            p50, p99, counted = await measure(database_url, cas, runs)
            print(f"{label:20s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({counted} within 30 days)")
    finally:
        await infra.drop_database(database_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.certificates, args.runs))
