"""Benchmark: GET /v1/users while 40 bogus logins at a time hit POST /v1/sessions.

Starts the real users app (production argon2id parameters, default login settings) on
a free port against a scratch database, measures the users list alone, then again while
waves of ``--parallel`` logins with made-up names (each from its own address, as a
botnet would send them) follow one another: p50 / p95 / max of the list, and how the
logins were answered.

    .venv/bin/python -m bench.login_storm [--parallel 40] [--waves 5]

Needs PostgreSQL and RabbitMQ (SIUI_DATABASE_URL / SIUI_AMQP_URL, as the tests).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import statistics
import time

import aiohttp

from bench.users_service import users_service
from shared.auth import ALL_RIGHTS
from shared.logging import configure_logging
from tests.support import infra


def summary(timings: list[float]) -> str:
    timings = sorted(timings)
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    return (f"p50 {statistics.median(timings) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
            f"max {timings[-1] * 1000:7.1f} ms  ({len(timings)} requests)")


async def main(parallel: int, waves: int) -> None:
    async with users_service("siui_bench_login", trusted_proxies=frozenset({"127.0.0.1"})) as users:
        base = users.base
        national = {"Authorization": "Bearer " + infra.make_token(users.pki.token_signing_key, cas="CNAS",
                                                                   rights=ALL_RIGHTS)}
        connector = aiohttp.TCPConnector(limit=parallel + 10)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def timed_get() -> float:
                started = time.perf_counter()
                async with http.get(base + "/v1/users", headers=national) as response:
                    await response.read()
                    assert response.status == 200, response.status
                return time.perf_counter() - started

            for _ in range(20):
                await timed_get()  # warm the pool
            quiet = [await timed_get() for _ in range(100)]
            print(f"GET /v1/users alone:                {summary(quiet)}", flush=True)

            statuses: collections.Counter[int] = collections.Counter()
            login_times: list[float] = []
            done = asyncio.Event()

            async def bogus(i: int, wave: int) -> None:
                started = time.perf_counter()
                async with http.post(base + "/v1/sessions",
                                     json={"username": f"bogus.{wave}.{i}", "password": "not-a-password-1"},
                                     headers={"X-Forwarded-For": f"10.{wave % 250}.{i % 250}.1"}) as r:
                    await r.read()
                    statuses[r.status] += 1
                login_times.append(time.perf_counter() - started)

            async def storm() -> None:
                for wave in range(waves):
                    await asyncio.gather(*(bogus(i, wave) for i in range(parallel)))
                done.set()

            started = time.perf_counter()
            storming = asyncio.create_task(storm())
            loaded = []
            while not done.is_set():
                loaded.append(await timed_get())
            await storming
            elapsed = time.perf_counter() - started
            print(f"GET /v1/users, {waves} waves of {parallel} bogus logins: {summary(loaded)}")
            print(f"logins: {dict(sorted(statuses.items()))} in {elapsed:.1f} s; each {summary(login_times)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, default=40)
    parser.add_argument("--waves", type=int, default=5)
    args = parser.parse_args()
    configure_logging("users-bench", "console", level=logging.WARNING)  # no line per request
    asyncio.run(main(args.parallel, args.waves))
