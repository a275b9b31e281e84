"""OCSP responders asked from outside, as an array's clients and its balancer ask them:
one GET (its status, bytes and ETag), the certificate status an answer says, the wait
until every responder answers a new state, continuous traffic with its outcomes and
latencies counted, and a whole host's processes killed (-9)."""
from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import os
import signal
import time
from pathlib import Path

import aiohttp
import yarl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.support.stack import Stack, descendants


def get_path(leaf_pem: Path, issuer_pem: Path) -> str:
    """The GET path asking for ``leaf_pem``'s status (SHA-1 CertID, no nonce: the request
    whose answer is pre-signed), percent-encoded as RFC 6960 appendix A asks."""
    leaf = x509.load_pem_x509_certificate(leaf_pem.read_bytes())
    issuer = x509.load_pem_x509_certificate(issuer_pem.read_bytes())
    der = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    return "/" + base64.b64encode(der).decode().replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")


async def ask(http: aiohttp.ClientSession, base: str, path: str, etag: str | None = None,
              close: bool = True) -> tuple[int, bytes, str | None]:
    """One GET of ``base`` + ``path``; ``close`` asks for a new connection each time, so
    that an instance's SO_REUSEPORT spreads the requests over its workers."""
    headers = {"Connection": "close"} if close else {}
    if etag:
        headers["If-None-Match"] = etag
    # Already percent-encoded: yarl must not encode the '%' again.
    url = yarl.URL(base + path, encoded=True)
    async with http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as r:
        return r.status, await r.read(), r.headers.get("ETag")


def status_of(body: bytes) -> str:
    """``good``, ``revoked``, ``unknown``, or the refusal (``malformed_request``, ...)."""
    answer = ocsp.load_der_ocsp_response(body)
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return answer.response_status.name.lower()
    return answer.certificate_status.name.lower()


async def reached(http: aiohttp.ClientSession, bases: dict[str, str], path: str, expected: str, started: float,
                  *, limit: float = 10, run: int = 20) -> dict[str, float]:
    """Ask every responder (name → base URL) until each has answered ``expected`` ``run``
    times in a row, on new connections (so any of its workers); for each, the seconds
    from ``started`` to the first answer of that run, i.e. after its last answer of the
    old state. Raises AssertionError past ``limit`` seconds."""
    async def follow(base: str) -> float:
        run_from, in_a_row = 0.0, 0
        while in_a_row < run:
            status, body, _ = await ask(http, base, path)
            assert status == 200, status
            if status_of(body) == expected:
                if in_a_row == 0:
                    run_from = time.monotonic()
                in_a_row += 1
            else:
                in_a_row = 0
            if time.monotonic() - started > limit:
                raise AssertionError(f"{base}: not {expected} within {limit:.0f}s")
        return run_from - started

    values = await asyncio.gather(*(follow(base) for base in bases.values()))
    return dict(zip(bases, values))


class Traffic:
    """``clients`` loops asking ``url`` + ``path`` on keep-alive connections, from entry to
    exit (``async with``): every outcome counted (``200 good``, ``503``, an exception's
    name) and every request's latency kept."""

    def __init__(self, http: aiohttp.ClientSession, url: str, path: str, clients: int = 1):
        self.http, self.url, self.path, self.clients = http, url, path, clients
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def failed(self) -> dict[str, int]:
        return {k: v for k, v in self.outcomes.items() if not k.startswith("200 ")}

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                status, body, _ = await ask(self.http, self.url, self.path, close=False)
                self.outcomes[f"{status} {status_of(body)}" if status == 200 else str(status)] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                self.outcomes[type(exc).__name__] += 1
            self.latencies.append(time.monotonic() - began)

    async def __aenter__(self) -> "Traffic":
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.clients)]
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def kill_host(stack: Stack) -> list[int]:
    """SIGKILL every process of ``stack`` (as a host lost): its supervisor first, so that
    nothing is started again, then each service and worker below it. Their pids."""
    pids = [stack.process.pid, *descendants(stack.process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    stack.process.wait(10)
    return pids


def gone(pids: list[int]) -> bool:
    """Whether none of ``pids`` runs (a killed child of a killed parent is reaped by init:
    gone once /proc forgets it, or a zombie until then)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return False
    return True
