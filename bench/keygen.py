"""Benchmark: activation keys issued per second through the real HTTP endpoint, with the
JSON answer and with the signed agreement PDF (``Accept: application/pdf``).

Creates a scratch database, exchange and dev PKI, starts the real keygen service as its
own process (``python -m services.keygen``, as in production: real PostgreSQL, RabbitMQ,
outbox relay), registers providers through the API, then issues one "Generare parola"
per provider from a client process with a fixed number of requests in flight. Each key is
a full transaction: row lock, digest, KeyIssued in the outbox (published with confirms),
and for PDFs rendering and PAdES signing in the service's worker threads.

    .venv/bin/python -m bench.keygen [--json 600] [--pdf 200] [--concurrency 8]

Needs PostgreSQL and RabbitMQ (SIUI_DATABASE_URL / SIUI_AMQP_URL, as the tests). Bounded:
it stops after the given number of keys; scratch database and exchange are removed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from deploy.devpki import ensure_dev_pki
from shared.auth import ALL_RIGHTS
from tests.support import infra

READY_TIMEOUT = 60.0


def _valid_cui(n: int) -> str:
    from stdnum.ro import cui

    body = str(20_000_000 + n)
    return body + cui.calc_check_digit(body)


async def _wait_ready(session: aiohttp.ClientSession, base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"keygen exited with {proc.returncode} before it was ready")
        try:
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("keygen was not ready in time")


async def _providers(session, base: str, headers: dict, count: int, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> str:
        async with gate, session.post(f"{base}/v1/providers", headers=headers, json={
                "cas": "B", "cui": _valid_cui(n), "name": f"SC Bench Medical {n} SRL",
                "trade_register_no": "J40/10/3456",
                "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"}}) as r:
            body = await r.json()
            assert r.status == 201, body
            return body["id"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _issue_all(session, base: str, headers: dict, ids: list[str], concurrency: int,
                     pdf: bool) -> tuple[float, list[float], int]:
    """(seconds, latencies in ms, bytes received) issuing one key for each provider."""
    gate = asyncio.Semaphore(concurrency)
    accept = {"Accept": "application/pdf"} if pdf else {}
    latencies: list[float] = []
    received = 0

    async def one(provider_id: str) -> None:
        nonlocal received
        async with gate:
            started = time.perf_counter()
            async with session.post(f"{base}/v1/providers/{provider_id}/activation-key",
                                    headers={**headers, **accept}, json={"reset": False}) as r:
                body = await r.read()
                assert r.status == 201, body[:300]
                if pdf:
                    assert body.startswith(b"%PDF") and "X-License-Serial" in r.headers
            latencies.append((time.perf_counter() - started) * 1000)
            received += len(body)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    return time.perf_counter() - started, latencies, received


def _report(name: str, count: int, seconds: float, latencies: list[float], received: int) -> None:
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{name:6} {count:6d} keys in {seconds:6.2f} s = {count / seconds:7.1f} keys/s   "
          f"p50 {statistics.median(latencies):7.1f} ms   p99 {p99:7.1f} ms   "
          f"{received / count / 1024:5.1f} KiB/answer", flush=True)


async def main(n_json: int, n_pdf: int, concurrency: int) -> None:
    database_url = await infra.create_database("siui_bench_keygen")
    exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
    port = infra.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        pki = ensure_dev_pki(Path(tmp))
        infra.install_broker_secrets(pki.data_dir)  # keygen logs in as siui-keygen
        await infra.declare_exchange(exchange)  # as the set-up does: services may not
        env = {**os.environ, "SIUI_DATABASE_URL": database_url,
               "SIUI_DATABASE_OWNER_URL": infra.owner_url(database_url), "SIUI_AMQP_URL": infra.amqp_url(),
               "SIUI_DATA_DIR": str(pki.data_dir), "SIUI_EVENTS_EXCHANGE": exchange,
               "SIUI_KEYGEN_PORT": str(port), "SIUI_HOST": "127.0.0.1", "SIUI_LOG_FORMAT": "json"}
        stderr_path = Path(tmp) / "keygen.stderr"
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "services.keygen"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            await _measure(pki, f"http://127.0.0.1:{port}", proc, n_json, n_pdf, concurrency)
        except Exception:
            print(stderr_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            await infra.delete_exchange(exchange)
            await infra.drop_database(database_url)


async def _measure(pki, base: str, proc: subprocess.Popen, n_json: int, n_pdf: int,
                   concurrency: int) -> None:
    headers = {"Authorization": "Bearer " + infra.make_token(
        pki.token_signing_key, cas="CNAS", rights=ALL_RIGHTS, minutes=120)}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _wait_ready(session, base, proc)
        ids = await _providers(session, base, headers, n_json + n_pdf + 20, concurrency)
        # Warm-up: the pool's connections, the fonts, pyHanko's first signature.
        await _issue_all(session, base, headers, ids[-20:-10], concurrency, pdf=False)
        await _issue_all(session, base, headers, ids[-10:], concurrency, pdf=True)
        print(f"keygen keys/s, {concurrency} requests in flight, {os.cpu_count()} CPUs, "
              "one service process, client in another")
        seconds, latencies, size = await _issue_all(session, base, headers, ids[:n_json],
                                                    concurrency, pdf=False)
        _report("JSON", n_json, seconds, latencies, size)
        seconds, latencies, size = await _issue_all(
            session, base, headers, ids[n_json:n_json + n_pdf], concurrency, pdf=True)
        _report("PDF", n_pdf, seconds, latencies, size)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=int, default=600, help="keys issued with the JSON answer")
    parser.add_argument("--pdf", type=int, default=200, help="keys issued with the signed PDF")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()
    asyncio.run(main(args.json, args.pdf, args.concurrency))
