"""``python -m services.ocsp`` as deployed: two worker processes sharing the port, each
kept current through NOTIFY, stopped cleanly by SIGTERM to the parent; a worker killed
is replaced while the other answers."""
from __future__ import annotations

import asyncio
import base64
import os
import signal
import time

import aiohttp
from cryptography.x509 import ocsp

from tests.support import infra
from tests.support.ocsp_harness import Issuer, request_der
from tests.support.ocsp_process import ask_anew, running_ocsp
from tests.support.stack import descendants
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


async def test_both_workers_serve_one_pre_signed_answer_per_state(common_config, feed, tmp_path):
    """GETs on new connections (so to both workers): one body, one ETag, a 304 for it from
    either; after a suspension, one new body and ETag from both."""
    ca = Issuer.new("Workers Presigned CA")
    leaf = ca.issue("provider")
    path = "/" + base64.b64encode(request_der(ca, leaf)).decode()
    async with running_ocsp(common_config, tmp_path / "ocsp.log") as service:
        await feed.issuer(ca)
        certificate_id = await feed.certificate(ca, leaf.serial)
        async with aiohttp.ClientSession() as session:
            async def get(etag: str | None = None) -> tuple[int, bytes, str | None]:
                headers = {"Connection": "close", **({"If-None-Match": etag} if etag else {})}
                async with session.get(service.url.rstrip("/") + path, headers=headers) as response:
                    return response.status, await response.read(), response.headers.get("ETag")

            async def one_answer(status: ocsp.OCSPCertStatus):
                assert service.process.returncode is None, service.log_tail()
                try:
                    answers = [await get() for _ in range(12)]
                except aiohttp.ClientError:
                    return None
                if len({(body, etag) for _, body, etag in answers}) != 1 or answers[0][0] != 200:
                    return None
                answer = ocsp.load_der_ocsp_response(answers[0][1])
                good = answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                return answers[0] if good and answer.certificate_status == status else None

            _, body, etag = await eventually(lambda: one_answer(ocsp.OCSPCertStatus.GOOD), timeout=60, interval=0.2,
                                             what="both workers serving one pre-signed answer")
            assert [(await get(etag))[0] for _ in range(8)] == [304] * 8

            await feed.certificate(ca, leaf.serial, status="suspended", certificate_id=certificate_id)
            _, held, held_etag = await eventually(lambda: one_answer(ocsp.OCSPCertStatus.REVOKED), timeout=5,
                                                  interval=0.05, what="both workers serving one new answer")
            assert held != body and held_etag != etag
            assert [(await get(etag))[0] for _ in range(4)] == [200] * 4
        assert await service.stop() == 0


async def test_a_killed_worker_is_restarted_while_the_other_keeps_answering(common_config, feed, tmp_path):
    """kill -9 of one worker: answers go on from the other (any gap measured, at most a
    second), the parent starts a new worker, reports both, and /metrics counts the restart."""
    ca = Issuer.new("Worker Kill CA")
    leaf = ca.issue("provider")
    async with running_ocsp(common_config, tmp_path / "ocsp.log") as service:
        await feed.issuer(ca)
        await feed.certificate(ca, leaf.serial)
        der = request_der(ca, leaf)
        async with aiohttp.ClientSession() as session:
            async def good() -> bool:
                try:
                    answer = await ask_anew(session, service.url, der)
                except (aiohttp.ClientError, AssertionError):
                    return False
                return answer.certificate_status == ocsp.OCSPCertStatus.GOOD

            await eventually(good, timeout=60, interval=0.2, what="answering good")
            workers = await eventually(lambda: _two_workers(service.process.pid), timeout=30, what="two workers")
            failures: list[float] = []
            asked = 0
            stop = asyncio.Event()

            async def probe():
                nonlocal asked
                while not stop.is_set():
                    asked += 1
                    if not await good():
                        failures.append(time.monotonic())
                    await asyncio.sleep(0.01)

            prober = asyncio.create_task(probe())
            await asyncio.sleep(0.5)  # the prober runs before the kill (its counts are asserted below)
            os.kill(workers[0], signal.SIGKILL)
            replaced = await eventually(lambda: _replaced(service.process.pid, workers), timeout=30,
                                        what="a new worker in the dead one's place")
            await eventually(lambda: _async(b"ocsp_workers_child_restarted" in service.log_path.read_bytes()),
                             what="the restart reported")
            await asyncio.sleep(0.5)
            stop.set()
            await prober
            gap = (failures[-1] - failures[0]) if failures else 0.0
            print(f"worker kill: {asked} asked, {len(failures)} failed, gap {gap:.3f} s")
            assert asked > 50 and gap <= 1.0, (asked, len(failures), gap)
            assert workers[1] in replaced  # the other worker never stopped
            log = service.log_path.read_bytes()
            assert b"ocsp_workers_child_died" in log and str(workers[0]).encode() in log
            # The new worker knows it is a restart; /metrics (any worker) sums the slots.
            token = infra.metrics_headers(common_config.data_dir)

            async def restarts_counted():
                async with session.get(service.url + "metrics", headers={**token, "Connection": "close"}) as r:
                    text = await r.text()
                return any(line.startswith("siui_supervisor_restarts ") and float(line.split()[1]) == 1.0
                           for line in text.splitlines())

            await eventually(restarts_counted, timeout=10, what="siui_supervisor_restarts 1")
        assert await service.stop() == 0


def _worker_pids(parent: int) -> list[int]:
    return sorted(descendants(parent))


async def _two_workers(parent: int) -> list[int] | None:
    pids = _worker_pids(parent)
    return pids if len(pids) == 2 else None


async def _replaced(parent: int, before: list[int]) -> list[int] | None:
    pids = _worker_pids(parent)
    return pids if len(pids) == 2 and before[0] not in pids else None


async def _async(value):
    return value
