"""Real OCSP requests (RFC 6960, built with cryptography's builder, POSTed over HTTP) and
the prober that sends one every 50 ms through every fault and records the gaps.

The prober runs in a thread with an event loop of its own, so that the load and the
ledger's bookkeeping in the main loop never delay a probe and show up as a false gap.
Each probe opens a new connection, as ``openssl ocsp`` does: a connection is accepted
by whichever ocsp worker the kernel picks (SO_REUSEPORT), so a dead worker shows as the
probes it would have taken.
"""
from __future__ import annotations

import asyncio
import bisect
import threading
import time
from dataclasses import dataclass

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Issuer:
    """What a CertID needs of the issuing CA: the hashes of its name and key."""

    name_hash: bytes
    key_hash: bytes

    @classmethod
    def from_pem(cls, pem: bytes) -> "Issuer":
        cert = x509.load_pem_x509_certificate(pem)
        digest = hashes.Hash(hashes.SHA1())
        digest.update(cert.subject.public_bytes(serialization.Encoding.DER))
        # RFC 6960: the key hash is SHA-1 of the subjectPublicKey bits, which is exactly
        # RFC 5280's method-1 key identifier.
        key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
        return cls(digest.finalize(), key_hash)

    def request(self, serial: int) -> bytes:
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            self.name_hash, self.key_hash, serial, hashes.SHA1())
        return builder.build().public_bytes(serialization.Encoding.DER)


def reading(body: bytes) -> str:
    """``good``, ``revoked``, ``unknown``, or ``status:<responseStatus>`` of an answer."""
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError:
        return "undecodable"
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"status:{response.response_status.name.lower()}"
    status = response.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return "good"
    if status == ocsp.OCSPCertStatus.REVOKED:
        reason = response.revocation_reason
        return "revoked" if reason in (None, x509.ReasonFlags.certificate_hold) else f"revoked:{reason.name}"
    return "unknown"


async def ask(http: aiohttp.ClientSession, url: str, der: bytes, timeout: float = 3.0) -> str:
    """One OCSP request; its reading, or ``http:<status>`` / ``error:<kind>``."""
    try:
        async with http.post(url, data=der, headers={"Content-Type": "application/ocsp-request"},
                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            if response.status != 200:
                return f"http:{response.status}"
            return reading(body)
    except asyncio.TimeoutError:
        return "error:timeout"
    except (aiohttp.ClientError, OSError) as exc:
        return f"error:{type(exc).__name__}"


class Prober:
    """An OCSP request for one good certificate every 50 ms, in its own thread; every
    answer's time kept so that any window's longest gap can be read afterwards."""

    def __init__(self, url: str, der: bytes, interval: float = PROBE_INTERVAL):
        self.url, self.der, self.interval = url, der, interval
        self.answered: list[float] = []     # monotonic times of good answers, increasing
        self.failed: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ocsp-prober", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            next_at = time.monotonic()
            while not self._stop.is_set():
                answer = await ask(http, self.url, self.der, PROBE_TIMEOUT)
                now = time.monotonic()
                if answer == "good":
                    self.answered.append(now)
                else:
                    self.failed.append((now, answer))
                next_at += self.interval
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                else:
                    next_at = now  # late (a slow answer): the next one goes at once

    def window(self, start: float, end: float) -> "ProbeWindow":
        """What the prober saw between ``start`` and ``end`` (monotonic)."""
        lo, hi = bisect.bisect_left(self.answered, start), bisect.bisect_right(self.answered, end)
        times = [start, *self.answered[lo:hi], end]
        gaps = [(b - a, a) for a, b in zip(times, times[1:])]
        longest, at = max(gaps) if gaps else (end - start, start)
        failures: dict[str, int] = {}
        for when, what in self.failed:
            if start <= when <= end:
                failures[what] = failures.get(what, 0) + 1
        return ProbeWindow(hi - lo, failures, longest, at - start)


@dataclass(frozen=True)
class ProbeWindow:
    answered: int
    failures: dict[str, int]
    longest_gap: float
    gap_began_after: float  # seconds into the window
