"""``python -m services.ocsp`` as deployed: a supervising parent and its worker processes
sharing the port, on free ports, against the session's database and exchange."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography.x509 import ocsp

from shared.config import CommonConfig
from tests.support import infra
from tests.support.ocsp_harness import OCSP_REQUEST


@dataclass
class OcspService:
    process: asyncio.subprocess.Process
    url: str  # of the OCSP port, ending in "/"
    log_path: Path

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:]

    async def stop(self) -> int:
        """SIGTERM to the parent, as a service manager stops it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)


@contextlib.asynccontextmanager
async def running_ocsp(common: CommonConfig, log_path: Path, *, workers: int = 2,
                       env: dict[str, str] | None = None) -> AsyncIterator[OcspService]:
    """The service started with ``workers`` workers (``env`` added to its environment);
    killed afterwards if the test did not stop it."""
    port = infra.free_port()
    environment = {**os.environ, "SIUI_DATABASE_URL": common.database_url,
                   "SIUI_DATABASE_OWNER_URL": common.database_owner_url, "SIUI_AMQP_URL": common.amqp_url,
                   "SIUI_EVENTS_EXCHANGE": common.events_exchange, "SIUI_DATA_DIR": str(common.data_dir),
                   "SIUI_OCSP_PORT": str(port), "SIUI_OCSP_TLS_PORT": str(infra.free_port()),
                   "SIUI_OCSP_WORKERS": str(workers), "SIUI_LOG_FORMAT": "json", **(env or {})}
    # The parent makes the workers' metrics directory itself (prometheus_client's multiprocess mode).
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.ocsp", env=environment,
                                                       stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        yield OcspService(process, f"http://127.0.0.1:{port}/", log_path)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def ask_anew(session: aiohttp.ClientSession, url: str, der: bytes) -> ocsp.OCSPResponse:
    """POST an OCSP request on a new connection, so that the kernel spreads requests over
    the workers; the answer."""
    async with session.post(url, data=der, headers={**OCSP_REQUEST, "Connection": "close"}) as response:
        assert response.status == 200
        return ocsp.load_der_ocsp_response(await response.read())
