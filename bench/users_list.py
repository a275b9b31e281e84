"""Benchmark: the users list ("Lista utilizatorilor") over 100,000 users.

Creates a scratch database, migrates the users schema, loads 100,000 users (external
users spread over the 43 houses, a tenth house staff), starts the real users app on a
free port (real PostgreSQL and RabbitMQ, as in production), and times filtered pages
through HTTP with a real token: p50 / p99 per scenario, measured at the client.

    .venv/bin/python -m bench.users_list [--users 100000] [--requests 300]

Needs PostgreSQL and RabbitMQ (SIUI_DATABASE_URL / SIUI_AMQP_URL, as the tests). The
scratch database and exchange are removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time

import aiohttp
from argon2 import PasswordHasher

from bench.users_service import users_service
from shared.auth import ALL_RIGHTS
from shared.db import create_pool
from shared.houses import COUNTY_HOUSE_CODES
from shared.logging import configure_logging

from tests.support import infra

FIRST = ["Ion", "Maria", "Andrei", "Elena", "Mihai", "Ioana", "George", "Ana", "Radu", "Cristina",
         "Vasile", "Gabriela", "Florin", "Daniela", "Alexandru", "Roxana"]
LAST = ["Popescu", "Ionescu", "Popa", "Pop", "Radu", "Dumitru", "Stan", "Stoica", "Gheorghe", "Matei",
        "Ciobanu", "Munteanu", "Rusu", "Constantin", "Marin", "Tudor", "Florea", "Moldovan", "Lazar"]
WORDS = ["MEDICAL", "SANA", "FARM", "DENT", "CLINIC", "VITA", "CARDIO", "LAB", "NOVA", "HELP",
         "CENTRU", "SPERANTA", "FAMILIA", "DOCTOR", "ORTO", "PEDIATRIE"]


def rows(count: int, seed: int = 4):
    """(username, type, cas, employee_code, employee_name, schema, org unit, cui, code, name)."""
    rnd = random.Random(seed)
    houses = sorted(COUNTY_HOUSE_CODES)
    cuis = rnd.sample(range(1_000_000, 49_999_999), count)
    for i, cui in enumerate(cuis):
        cas = houses[i % len(houses)]
        if i % 10 == 0:
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            yield (f"{first}.{last}.{i}".lower(), "internal", cas, f"E{i:06d}", f"{first} {last}",
                   f"SIUI{cas}", f"CAS-{cas}", None, None, None)
        else:
            name = f"SC {rnd.choice(WORDS)} {rnd.choice(WORDS)} SRL"
            yield (f"{cui}_CAS-{cas}", "external", cas, None, None, f"SIUI{cas}", f"CAS-{cas}",
                   str(cui), str(cui), name)


async def load(database_url: str, count: int) -> list[str]:
    await infra.migrate_schema(database_url, "users", "services.users")
    pool = await create_pool(database_url, "users")
    try:
        data = list(rows(count))
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("users", records=data, columns=[
                "username", "type", "cas", "employee_code", "employee_name", "schema_name", "org_unit",
                "provider_cui", "provider_code", "provider_name"])
            await conn.execute("vacuum analyze users")  # as autovacuum leaves it
        return [r[7] for r in data if r[7] and r[2] == "B"]
    finally:
        await pool.close()


async def measure(session: aiohttp.ClientSession, url: str, headers: dict, params: dict, n: int):
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url, headers=headers, params=params) as response:
            body = await response.json()
            assert response.status == 200, body
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))], body["total"]


async def main(users: int, requests: int) -> None:
    b_cuis: list[str] = []

    async def prepare(database_url: str) -> None:
        started = time.perf_counter()
        b_cuis.extend(await load(database_url, users))
        print(f"loaded {users} users in {time.perf_counter() - started:.1f} s")

    async with users_service("siui_bench_users", prepare=prepare,
                             hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)) as service:
        pki = service.pki
        county = {"Authorization": "Bearer " + infra.make_token(pki.token_signing_key, cas="B")}
        national = {"Authorization": "Bearer " + infra.make_token(pki.token_signing_key, cas="CNAS",
                                                                   rights=ALL_RIGHTS)}
        scenarios = [
            ("B operator, all types, page 1", county, {}),
            ("B operator, external, page 10", county, {"type": "external", "page": "10"}),
            ("B operator, q=<provider code>", county, {"q": b_cuis[len(b_cuis) // 2]}),
            ("B operator, q=popescu (name)", county, {"q": "popescu"}),
            ("CNAS, every house, page 1", national, {}),
            ("CNAS, cas=CJ internal, 50/page", national, {"cas": "CJ", "type": "internal", "per_page": "50"}),
            ("CNAS, q=<6 digits of a CUI>", national, {"q": b_cuis[7][1:7]}),
            ("CNAS, q=sana (provider name)", national, {"q": "sana", "per_page": "100"}),
            ("CNAS, q=po (two letters)", national, {"q": "po"}),
            ("B operator, q=a (one letter)", county, {"q": "a"}),
            ("CNAS, page 2500 of 5000", national, {"page": "2500"}),
        ]
        url = service.base + "/v1/users"
        async with aiohttp.ClientSession() as session:
            await measure(session, url, county, {}, 20)  # warm the pool and the caches
            print(f"{'scenario':40} {'total':>7} {'p50 ms':>8} {'p99 ms':>8}")
            for name, headers, params in scenarios:
                p50, p99, total = await measure(session, url, headers, params, requests)
                print(f"{name:40} {total:7d} {p50:8.2f} {p99:8.2f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    configure_logging("users-bench", "console", level=logging.WARNING)  # no line per request
    asyncio.run(main(args.users, args.requests))
