"""The whole stack as `make up` runs it (``python -m deploy.run``), on free ports, against
a fresh database and an isolated exchange, for end-to-end tests. As after deploy/setup.sh:
the exchange's topology is declared first, and the services log in as their own broker
users with the passwords in the data directory (``SIUI_AMQP_URL`` names no user)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
HTTP_SERVICES = ("console", "keygen", "users", "certs", "ocsp")


@dataclass
class Stack:
    urls: dict[str, str]
    ports: dict[str, int]
    admin_password: str
    database_url: str
    exchange: str
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, service: str, path: str = "") -> str:
        return self.urls[service] + path

    def stop(self, timeout: float = 25) -> int | None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # The services run in process groups of their own: kill every descendant, so
            # that a wedged stack leaves nothing running behind the tests.
            for pid in [*descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return proc.wait()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The command name may hold spaces or parentheses: read after its last ')'.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def stack_env(data_dir: Path, database_url: str, exchange: str, admin_password: str) -> tuple[dict, dict]:
    ports = {name: infra.free_port() for name in (*HTTP_SERVICES, "ocsp_tls")}
    env = dict(os.environ)
    env.update({
        "SIUI_DATABASE_URL": database_url,
        "SIUI_DATABASE_OWNER_URL": infra.owner_url(database_url),
        "SIUI_AMQP_URL": infra.amqp_url(),
        "SIUI_DATA_DIR": str(data_dir),
        "SIUI_EVENTS_EXCHANGE": exchange,
        "SIUI_ADMIN_PASSWORD": admin_password,
        "SIUI_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    })
    for name, port in ports.items():
        env[f"SIUI_{name.upper()}_PORT"] = str(port)
        if name != "ocsp_tls":
            env[f"SIUI_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return env, ports


@contextlib.contextmanager
def isolated_stack(data_dir: Path, prefix: str, **start) -> Iterator[Stack]:
    """``start_stack`` (its keywords in ``start``) on a database and an exchange of its
    own, both removed afterwards; the stack must stop cleanly."""
    database_url = asyncio.run(infra.create_database(f"siui_{prefix}"))
    exchange = f"siui.{prefix}.{uuid.uuid4().hex[:8]}"
    code = None
    try:
        running = start_stack(data_dir, database_url, exchange, **start)
        try:
            yield running
        finally:
            code = running.stop()
    finally:
        asyncio.run(infra.drop_database(database_url))
        asyncio.run(infra.delete_exchange(exchange))
    assert code == 0, f"the stack did not stop cleanly ({code}); see {running.log_path}"


def start_stack(data_dir: Path, database_url: str, exchange: str, *, name: str = "stack",
                services: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> Stack:
    admin_password = secrets.token_urlsafe(12)
    asyncio.run(infra.declare_exchange(exchange))
    infra.install_broker_secrets(data_dir)
    env, ports = stack_env(data_dir, database_url, exchange, admin_password)
    env.update(extra_env or {})
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"{name}-{uuid.uuid4().hex[:6]}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "deploy.run", *services], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in HTTP_SERVICES}
    stack = Stack(urls=urls, ports=ports, admin_password=admin_password, database_url=database_url,
                  exchange=exchange, data_dir=data_dir, log_path=log_path, env=env, process=proc)
    try:
        asyncio.run(wait_ready(stack, services or HTTP_SERVICES))
    except BaseException:
        stack.stop()
        raise
    return stack


async def wait_ready(stack: Stack, services, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = set(services)
    async with aiohttp.ClientSession() as http:
        while pending:
            if stack.process.poll() is not None:
                raise RuntimeError(f"the stack exited with {stack.process.returncode}; see {stack.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {timeout}s: {sorted(pending)}; see {stack.log_path}")
            for service in list(pending):
                try:
                    async with http.get(stack.url(service, "/readyz"), timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            pending.discard(service)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
            await asyncio.sleep(0.2)
