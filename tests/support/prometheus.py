"""A real Prometheus (Debian's /usr/bin/prometheus) for tests: deploy/prometheus's own
scrape configuration and rules, pointed at a test stack's ports, with a short scrape and
evaluation interval, a data directory of its own, on a free port; stopped afterwards."""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from tests.support.infra import free_port
from tests.support.stack import ARTIFACTS, HTTP_SERVICES, Stack

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
# The ports deploy/prometheus/prometheus.yml names (the services' defaults).
DEFAULT_PORTS = {"console": 8100, "keygen": 8101, "users": 8102, "certs": 8103, "ocsp": 8104}
INTERVAL = "1s"


def scrape_config(stack: Stack) -> dict:
    """deploy/prometheus/prometheus.yml with the stack's ports and 1-second intervals.

    Only the addresses, the metrics token's path, the intervals and the rule files'
    (absolute) paths change; jobs,
    labels and relabelling are the deployed ones. Fails if the deployed file stops having
    exactly one job per service, each on that service's default port."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=INTERVAL, scrape_timeout=INTERVAL, evaluation_interval=INTERVAL)
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config.pop("alerting", None)
    seen = []
    for job in config["scrape_configs"]:
        (static,) = job["static_configs"]
        service = static["labels"]["service"]
        (address,) = static["targets"]
        assert address == f"127.0.0.1:{DEFAULT_PORTS[service]}", (job["job_name"], address)
        static["targets"] = [f"127.0.0.1:{stack.ports[service]}"]
        assert job["authorization"]["type"] == "Bearer", job["job_name"]
        job["authorization"]["credentials_file"] = str(stack.data_dir / "secrets" / "metrics-token")
        seen.append(service)
    assert sorted(seen) == sorted(HTTP_SERVICES), seen
    return config


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    log_path: Path
    http: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def api(self, path: str, **params) -> dict:
        """GET /api/v1/<path>; the answer's ``data`` (asserting status success)."""
        async with self.http.get(f"{self.url}/api/v1/{path}", params=params) as r:
            body = await r.json()
            assert r.status == 200 and body["status"] == "success", (path, params, r.status, body)
            return body["data"]

    async def query(self, expr: str) -> list[dict]:
        """An instant query's result (vector) now."""
        data = await self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return data["result"]

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.asynccontextmanager
async def running_prometheus(stack: Stack, workdir: Path, timeout: float = 30):
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "prometheus not found: deploy/setup.sh installs Debian's prometheus package"
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(scrape_config(stack), sort_keys=False))
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"prometheus-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        async with aiohttp.ClientSession() as http:
            prometheus.http = http
            deadline = time.monotonic() + timeout
            while True:
                assert process.poll() is None, f"prometheus exited with {process.returncode}; see {log_path}"
                assert time.monotonic() < deadline, f"prometheus not ready within {timeout}s; see {log_path}"
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"{prometheus.url}/-/ready", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            yield prometheus
    finally:
        code = prometheus.stop()
    assert code == 0, f"prometheus did not stop cleanly ({code}); see {log_path}"
