"""The stack under test: ``python -m deploy.run`` (what ``make up`` runs) on our own
PostgreSQL and RabbitMQ, set up as deploy/setup.sh sets up a machine.

Set-up, as setup.sh does it: the data directory from ``python -m deploy.devpki``; the
broker's users, permissions and topology planned by the project's ``deploy.broker`` from
the node's exported definitions and applied step by step with ``rabbitmqctl`` (passwords
on stdin); a role and a database. The stack runs with ``SIUI_DATABASE_URL``,
``SIUI_AMQP_URL`` and ``SIUI_DATA_DIR`` pointing at them, on free ports, the production
exchange name (``siui.events``: the node is ours alone).

Every process is found by pid under the runner we started, and only those are killed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from deploy.broker import Target, plan
from tests.chaos.infra import InfraError, Postgres, Rabbit, free_port
from tests.support.stack import descendants

ROOT = Path(__file__).resolve().parents[2]
HTTP_SERVICES = ("console", "keygen", "users", "certs", "ocsp")
READY_DEADLINE = 120.0
STOP_DEADLINE = 30.0


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _service_of(cmdline: list[str]) -> tuple[str, bool] | None:
    """``(service, is_ocsp_worker)`` for ``python -m services.<name> [--worker]``."""
    if "-m" in cmdline:
        module = cmdline[cmdline.index("-m") + 1] if cmdline.index("-m") + 1 < len(cmdline) else ""
        if module.startswith("services."):
            return module.removeprefix("services."), "--worker" in cmdline
    return None


@dataclass
class Stack:
    """The runner and what it runs; ``restarts_by_harness`` lists every time we restarted it."""

    base: Path
    pg: Postgres
    rabbit: Rabbit
    artifacts: Path
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)
    restarts_by_harness: list[str] = field(default_factory=list)
    pids_seen: set[int] = field(default_factory=set)
    database_url: str = ""

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    # -- set-up ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        """The data directory, the broker's users and topology, the database: setup.sh's steps 4, 6, 7."""
        self.ports = {name: free_port() for name in (*HTTP_SERVICES, "ocsp_tls")}
        self.database_url = await self.pg.create_database("siui", "siui", "siui")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIUI_", "PROMETHEUS_"))}
        env.update({
            "SIUI_DATABASE_URL": self.database_url,
            "SIUI_AMQP_URL": self.rabbit.url,
            "SIUI_DATA_DIR": str(self.data_dir),
            "SIUI_ADMIN_PASSWORD": self.admin_password,
            "SIUI_LOG_FORMAT": "json",
            # One login for the whole run: a fault must not be measured through a re-login.
            "SIUI_TOKEN_MINUTES": "720",
            "PYTHONUNBUFFERED": "1",
        })
        for name, port in self.ports.items():
            env[f"SIUI_{name.upper()}_PORT"] = str(port)
            if name != "ocsp_tls":
                env[f"SIUI_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        self.env = env
        # setup.sh step 6: the dev PKI and secrets.
        done = subprocess.run([sys.executable, "-m", "deploy.devpki", "--data-dir", str(self.data_dir)],
                              cwd=ROOT, env=env, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise InfraError(f"deploy.devpki failed: {done.stderr.decode(errors='replace')[-800:]}")
        await self.setup_broker()

    async def setup_broker(self) -> list[str]:
        """setup.sh step 7 against our node: ``deploy.broker``'s plan, applied with rabbitmqctl."""
        exported = await self.rabbit.ctl("-q", "export_definitions", "-")
        target = Target.from_env(self.env)
        topology_file = self.base / "topology.json"
        steps = plan(json.loads(exported.stdout), target)
        applied = []
        for action, *args in steps:
            if action == "add_vhost":
                await self.rabbit.ctl("-q", "add_vhost", args[0])
            elif action in ("add_user", "change_password"):
                user, service = args
                secret = (self.data_dir / "secrets" / f"amqp-{service}").read_bytes()
                await self.rabbit.ctl("-q", action, user, stdin=secret)
            elif action == "clear_user_tags":
                await self.rabbit.ctl("-q", "set_user_tags", args[0])
            elif action == "set_permissions":
                vhost, user, configure, write, read = args
                await self.rabbit.ctl("-q", "set_permissions", "-p", vhost, user, configure, write, read)
            elif action == "set_topic_permissions":
                vhost, user, exchange, write, read = args
                await self.rabbit.ctl("-q", "set_topic_permissions", "-p", vhost, user, exchange, write, read)
            elif action == "import_topology":
                from deploy.broker import definitions

                topology_file.write_text(json.dumps(definitions(target, with_users=False)))
                topology_file.chmod(0o644)  # read by the CLI, which runs as the rabbitmq user
                await self.rabbit.ctl("-q", "import_definitions", str(topology_file))
            else:
                raise InfraError(f"deploy.broker: unknown step {action}")
            applied.append(action)
        return applied

    # -- running --------------------------------------------------------------------------

    async def start(self) -> float:
        """Start the runner; wait until every service is ready. Returns the seconds it took."""
        started = time.monotonic()
        self.artifacts.mkdir(parents=True, exist_ok=True)
        log_path = self.artifacts / f"stack-{len(self.logs) + 1}.log"
        self.logs.append(log_path)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.pids_seen.add(self.process.pid)
        await self.wait_ready(READY_DEADLINE)
        return time.monotonic() - started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, deadline: float, services=HTTP_SERVICES) -> bool:
        end = time.monotonic() + deadline
        pending = set(services)
        async with aiohttp.ClientSession() as http:
            while pending:
                if not self.running:
                    raise InfraError(f"the stack exited with {self.process.returncode}; see {self.logs[-1]}")
                if time.monotonic() > end:
                    raise InfraError(f"not ready within {deadline:.0f}s: {sorted(pending)}; see {self.logs[-1]}")
                for service in list(pending):
                    if await self.ready(http, service):
                        pending.discard(service)
                self.remember_pids()
                await asyncio.sleep(0.2)
        return True

    async def ready(self, http: aiohttp.ClientSession, service: str) -> bool:
        try:
            async with http.get(self.url(service, "/readyz"), timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    def remember_pids(self) -> None:
        if self.process is not None:
            self.pids_seen.update(descendants(self.process.pid))

    def processes(self) -> dict[str, list[int]]:
        """``{"users": [pid], ..., "ocsp": [supervisor], "ocsp-worker": [pid, pid]}`` under our runner."""
        found: dict[str, list[int]] = {}
        if not self.running:
            return found
        for pid in descendants(self.process.pid):
            self.pids_seen.add(pid)
            named = _service_of(_cmdline(pid))
            if named is not None:
                service, worker = named
                found.setdefault("ocsp-worker" if worker else service, []).append(pid)
        return found

    def pid_of(self, service: str) -> int:
        pids = self.processes().get(service, [])
        if not pids:
            raise InfraError(f"no {service} process under the runner")
        return pids[0]

    def ours(self, pid: int) -> bool:
        """Whether ``pid`` is still a process of this stack: one of the project's, started
        with our data directory (a pid seen earlier may have been reused since, and other
        checkouts run the same commands)."""
        if _service_of(_cmdline(pid)) is None and "deploy.run" not in _cmdline(pid):
            return False
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"SIUI_DATA_DIR={self.data_dir}".encode() in environ

    def kill(self, pid: int) -> None:
        """kill -9 one of our stack's processes (refused for any pid not under our runner)."""
        if pid not in descendants(self.process.pid) or not self.ours(pid):
            raise InfraError(f"pid {pid} is not one of this stack's processes")
        os.kill(pid, signal.SIGKILL)

    def log_tail(self, needle: str = "", lines: int = 400) -> list[str]:
        """The runner log's lines holding ``needle`` (plain lines and JSON events alike)."""
        if not self.logs:
            return []
        text = self.logs[-1].read_text(errors="replace").splitlines()[-lines:]
        return [line for line in text if needle in line]

    async def restart_by_harness(self, why: str) -> float:
        """The harness restarts the whole stack (and says so); returns the seconds it took."""
        self.restarts_by_harness.append(why)
        self.stop()
        return await self.start()

    def stop(self) -> int | None:
        """SIGTERM the runner (it stops every service); then SIGKILL whatever of ours is left."""
        proc = self.process
        if proc is None:
            return None
        self.remember_pids()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                pass
        for pid in sorted(self.pids_seen):
            if self.ours(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        return proc.wait()
