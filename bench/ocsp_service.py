"""The OCSP service of a benchmark: the real process, ``python -m services.ocsp``, against
the benchmark's scratch database and exchange and a dev PKI's data directory, on free
ports; started, waited for until the benchmark's own test of readiness holds, and stopped
(``bench.ocsp``, ``bench.online``, ``bench.national``)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from tests.support import infra

Ready = Callable[[aiohttp.ClientSession], Awaitable[bool]]


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Ask, then (after ``timeout`` seconds) kill; a process already gone is left be."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class OcspService:
    def __init__(self, database_url: str, exchange: str, data_dir: Path, log_path: Path, *, workers: int,
                 env: dict[str, str] | None = None) -> None:
        self.port, self.tls_port = infra.free_port(), infra.free_port()
        self.log_path = log_path
        self.env = {**os.environ,
                    "SIUI_DATABASE_URL": database_url, "SIUI_DATABASE_OWNER_URL": infra.owner_url(database_url),
                    "SIUI_EVENTS_EXCHANGE": exchange, "SIUI_DATA_DIR": str(data_dir),
                    "SIUI_OCSP_PORT": str(self.port), "SIUI_OCSP_TLS_PORT": str(self.tls_port),
                    "SIUI_OCSP_WORKERS": str(workers), "SIUI_LOG_FORMAT": "json",
                    "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})}
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, profile: str | None = None) -> None:
        """``profile``: run it under cProfile, its figures written there at the exit."""
        command = [sys.executable, "-m", "services.ocsp"]
        if profile:
            command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "services.ocsp"]
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"the ocsp service exited with {code}; see {self.log_path}")

    async def wait(self, ready: Ready, *, timeout: float, interval: float = 0.1) -> float:
        """Poll ``ready`` until it holds; the seconds since the start. When the process
        exits or ``timeout`` seconds pass first, it is stopped (nothing left running) and
        this raises."""
        try:
            async with aiohttp.ClientSession() as session:
                while True:
                    self.check_running()
                    try:
                        if await ready(session):
                            return self.elapsed()
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        pass
                    if self.elapsed() > timeout:
                        raise RuntimeError(f"the ocsp service was not ready after {timeout:.0f} s; "
                                           f"see {self.log_path}")
                    await asyncio.sleep(interval)
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise

    async def readyz(self, session: aiohttp.ClientSession) -> bool:
        async with session.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status == 200

    async def tls_listening(self) -> bool:
        return await listening(self.tls_port)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        stop_process(self.process, sig, timeout)


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
