"""``python -m services.ocsp`` as deployed: two worker processes sharing the port, each
kept current through NOTIFY, stopped cleanly by SIGTERM to the parent."""
from __future__ import annotations

import aiohttp
from cryptography.x509 import ocsp

from tests.support.ocsp_harness import Issuer, request_der
from tests.support.ocsp_process import ask_anew, running_ocsp
from tests.support.wait import eventually


async def test_two_workers_follow_a_suspension_and_stop_on_sigterm(common_config, feed, tmp_path):
    ca = Issuer.new("Workers Test CA")
    leaf = ca.issue("provider")
    async with running_ocsp(common_config, tmp_path / "ocsp.log") as service:
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf.serial)
        der = request_der(ca, leaf)
        async with aiohttp.ClientSession() as session:
            async def twelve_answers(status: ocsp.OCSPCertStatus) -> bool:
                # Twelve new connections: every worker, not just the one whose consumer took the event.
                assert service.process.returncode is None, service.log_tail()
                try:
                    answers = [await ask_anew(session, service.url, der) for _ in range(12)]
                except aiohttp.ClientError:
                    return False
                return all(a.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                           and a.certificate_status == status for a in answers)

            await eventually(lambda: twelve_answers(ocsp.OCSPCertStatus.GOOD), timeout=60, interval=0.2,
                             what="both workers up and answering good")
            assert b"ocsp_workers_started" in service.log_path.read_bytes()

            await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
            await eventually(lambda: twelve_answers(ocsp.OCSPCertStatus.REVOKED), timeout=5, interval=0.05,
                             what="every worker answering revoked")
        assert await service.stop() == 0
