"""``python -m services.ocsp`` with two workers: whichever worker a scrape of /metrics
lands on, it counts the answers of both (prometheus_client's multiprocess mode), and the
parent removes the workers' metric files when it stops."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support import infra
from tests.support.ocsp_harness import Issuer, request_der
from tests.support.ocsp_process import ask_anew, running_ocsp
from tests.support.wait import eventually

N = 40


def answers_in(text: str) -> dict[str, float]:
    """siui_ocsp_responses_total by status, from Prometheus text."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "siui_ocsp_responses":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["status"]] = out.get(sample.labels["status"], 0) + sample.value
    return out


def per_worker(metrics_dir: Path, scratch: Path) -> dict[int, float]:
    """Answers counted by each worker alone: its own counter file, read on its own."""
    out = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        alone = scratch / path.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        out[int(path.stem.split("_")[1])] = sum(answers_in(generate_latest(registry).decode()).values())
    return out


async def _scrape(session: aiohttp.ClientSession, url: str, data_dir) -> str:
    async with session.get(url + "metrics", headers={"Connection": "close", **infra.metrics_headers(data_dir)}) as response:
        assert response.status == 200
        return await response.text()


async def test_metrics_count_both_workers_answers(common_config, feed, tmp_path):
    temp = tmp_path / "tmp"  # the parent's mkdtemp lands here, where the test can look
    temp.mkdir()
    ca = Issuer.new("Metrics Workers CA")
    leaf = ca.issue("provider")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    async with running_ocsp(common_config, tmp_path / "ocsp.log", env={"TMPDIR": str(temp)}) as service:
        url, process = service.url, service.process
        await feed.issuer(ca)
        await feed.certificate(ca, leaf.serial)
        der = request_der(ca, leaf)
        async with aiohttp.ClientSession() as session:
            async def both_answering():  # both workers up and answering (not just one bound yet)
                assert process.returncode is None, service.log_tail()
                try:
                    await ask_anew(session, url, der)
                except aiohttp.ClientError:
                    return False
                dirs = list(temp.glob(f"siui-ocsp-metrics-{process.pid}-*"))
                counts = per_worker(dirs[0], scratch) if dirs else {}
                return dirs[0] if len([c for c in counts.values() if c]) == 2 else None

            metrics_dir = await eventually(both_answering, timeout=60, interval=0.1, what="two workers answering")
            assert oct(metrics_dir.stat().st_mode & 0o777) == "0o700"  # private to the service's user
            before = sum(answers_in(await _scrape(session, url, common_config.data_dir)).values())
            split_before = per_worker(metrics_dir, scratch)

            await asyncio.gather(*(ask_anew(session, url, der) for _ in range(N)))

            # Every scrape, whichever worker answers it, holds both workers' answers.
            for _ in range(6):
                assert sum(answers_in(await _scrape(session, url, common_config.data_dir)).values()) == before + N
            split_after = per_worker(metrics_dir, scratch)
            gained = {pid: split_after[pid] - split_before.get(pid, 0) for pid in split_after}
            assert len(gained) == 2 and sum(gained.values()) == N
            assert all(gained.values()), f"one worker took every request: {gained}"
            # A per-process gauge is summed over the live workers, not listed by pid.
            text = await _scrape(session, url, common_config.data_dir)
            assert 'siui_ocsp_log_buffered ' in text and 'pid="' not in text
        assert await service.stop() == 0
        assert not metrics_dir.exists(), "the workers' metric files outlived the service"
