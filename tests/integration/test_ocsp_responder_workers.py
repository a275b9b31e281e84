"""``python -m services.ocsp`` as deployed: two worker processes sharing the port, each
kept current through NOTIFY, stopped cleanly by SIGTERM to the parent."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import aiohttp
from cryptography.x509 import ocsp

from tests.integration.test_ocsp_responder_support import (  # noqa: F401  (fixtures)
    OCSP_REQUEST, TestCa, feed, request_der,
)
from tests.support import infra



async def _status(session: aiohttp.ClientSession, url: str, der: bytes):
    # A new connection each time, so that the kernel spreads requests over both workers.
    async with session.post(url, data=der, headers={**OCSP_REQUEST, "Connection": "close"}) as response:
        return ocsp.load_der_ocsp_response(await response.read())


async def test_two_workers_follow_a_suspension_and_stop_on_sigterm(common_config, feed, tmp_path):
    port = infra.free_port()
    env = {**os.environ, "SIUI_DATABASE_URL": common_config.database_url, "SIUI_AMQP_URL": common_config.amqp_url,
           "SIUI_EVENTS_EXCHANGE": common_config.events_exchange, "SIUI_DATA_DIR": str(common_config.data_dir),
           "SIUI_OCSP_PORT": str(port), "SIUI_OCSP_TLS_PORT": str(infra.free_port()), "SIUI_OCSP_WORKERS": "2",
           "SIUI_LOG_FORMAT": "json"}
    log = open(tmp_path / "ocsp.log", "wb")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.ocsp", env=env, stdout=log,
                                                   stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    ca = TestCa.create("Workers Test CA")
    leaf, _ = ca.issue("provider")
    try:
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf.serial_number)
        der = request_der(ca, leaf)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:  # up, and both workers know the certificate
                try:
                    answers = [await _status(session, url, der) for _ in range(12)]
                    if all(a.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                           and a.certificate_status == ocsp.OCSPCertStatus.GOOD for a in answers):
                        break
                except aiohttp.ClientError:
                    pass
                assert process.returncode is None, (tmp_path / "ocsp.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the workers never answered good"
                await asyncio.sleep(0.2)
            assert b"ocsp_workers_started" in (tmp_path / "ocsp.log").read_bytes()

            await feed.certificate(ca, leaf.serial_number, status="suspended", certificate_id=certificate_id)
            started = time.monotonic()
            while True:  # every worker, not just the one whose consumer took the event
                answers = [await _status(session, url, der) for _ in range(12)]
                if all(a.certificate_status == ocsp.OCSPCertStatus.REVOKED for a in answers):
                    break
                assert time.monotonic() - started < 5, "a worker kept answering good"
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
