"""One run of the fault suite: our PostgreSQL and RabbitMQ, the stack on them, the
operators' login, the issuer and certificates the load toggles, and the OCSP prober;
all of it removed at the end, after a failure or Ctrl-C too."""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from shared.broker import TOPOLOGY
from tests.chaos import ocsp
from tests.chaos.infra import InfraError, Postgres, Rabbit, listening, remove_tree
from tests.chaos.operators import Api, Cert, KeyAsk, Recorder, advance_key, login, user_listed
from tests.chaos.stack import Stack
from tests.support.identities import new_cui

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "chaos"
EXCHANGE = "siui.events"
SETUP_DEADLINE = 90.0


class Session:
    """``async with Session(certs=20) as s``: everything a scenario needs, then nothing left."""

    def __init__(self, *, certs: int = 20, artifacts: Path = ARTIFACTS):
        self.pool_size = certs
        self.artifacts = artifacts
        self.base: Path | None = None
        self.pg: Postgres | None = None
        self.rabbit: Rabbit | None = None
        self.stack: Stack | None = None
        self.api: Api | None = None
        self.prober: ocsp.Prober | None = None
        self.certs: list[Cert] = []
        self.flow_cert: Cert | None = None
        self.issuer: ocsp.Issuer | None = None
        self.issuer_id = ""
        self.ocsp_http: aiohttp.ClientSession | None = None
        self.setup_seconds: dict[str, float] = {}

    # -- the whole run ------------------------------------------------------------------

    async def __aenter__(self) -> "Session":
        atexit.register(self._last_resort)
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _start(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix="siui-chaos-"))
        self.base.chmod(0o755)  # the postgres and rabbitmq users enter their own subdirectories
        self.pg, self.rabbit = Postgres(self.base), Rabbit(self.base)
        began = time.monotonic()
        await asyncio.gather(self.pg.start(), self.rabbit.start())
        self.setup_seconds["postgres+rabbitmq"] = time.monotonic() - began
        self.stack = Stack(self.base, self.pg, self.rabbit, self.artifacts)
        began = time.monotonic()
        await self.stack.prepare()
        self.setup_seconds["set-up"] = time.monotonic() - began
        self.setup_seconds["stack"] = await self.stack.start()
        self.api = await Api(self.stack, await login(self.stack)).__aenter__()
        self.ocsp_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        began = time.monotonic()
        await self._register_certificates()
        self.setup_seconds["certificates"] = time.monotonic() - began
        probe = self.certs.pop()  # the prober's own: never toggled, always good
        self.prober = ocsp.Prober(self.ocsp_url, self.issuer.request(probe.serial))
        self.prober.start()
        self.flow_cert = self.certs.pop()  # toggled only right after a recovery

    @property
    def ocsp_url(self) -> str:
        return self.stack.url("ocsp", "/")

    async def close(self) -> None:
        """Stop and remove everything this session started (safe to call twice)."""
        if self.prober is not None:
            self.prober.stop()
            self.prober = None
        if self.ocsp_http is not None:
            await self.ocsp_http.close()
            self.ocsp_http = None
        if self.api is not None:
            await self.api.__aexit__(None, None, None)
            self.api = None
        if self.stack is not None:
            await asyncio.to_thread(self.stack.stop)
        if self.rabbit is not None:
            await self.rabbit.stop()
        if self.pg is not None:
            await self.pg.stop()
        if self.base is not None:
            remove_tree(self.base)
            self.base = None
        atexit.unregister(self._last_resort)

    def _last_resort(self) -> None:
        """At interpreter exit, if ``close`` never ran (a second Ctrl-C): kill what is ours."""
        with contextlib.suppress(Exception):
            if self.stack is not None:
                self.stack.stop()
        with contextlib.suppress(Exception):
            if self.rabbit is not None and self.rabbit.process is not None and self.rabbit.process.poll() is None:
                with contextlib.suppress(InfraError):
                    os.kill(self.rabbit.vm_pid(), signal.SIGKILL)
                self.rabbit.process.kill()
                self.rabbit._reap_children()
        with contextlib.suppress(Exception):
            if self.pg is not None:
                self.pg._kill_leftover()
        if self.base is not None:
            remove_tree(self.base)

    # -- set-up of the load's certificates ----------------------------------------------

    async def _register_certificates(self) -> None:
        """The demo issuing authority, then ``pool_size + 2`` providers with keys and a
        certificate each (the prober's, the recovery probe's, the pool), all good in OCSP."""
        pem = (self.stack.data_dir / "pki" / "demo-issuer-ca.pem").read_bytes()
        self.issuer = ocsp.Issuer.from_pem(pem)
        status, body, _ = await self.api.call("POST", "certs", "/v1/issuers", json={"certificate_pem": pem.decode()})
        if status != 201:
            raise InfraError(f"registering the issuer: {status} {body}")
        self.issuer_id = body["id"]
        asks = [KeyAsk(new_cui(), "B", "SETUP") for _ in range(self.pool_size + 2)]
        deadline = time.monotonic() + SETUP_DEADLINE
        while not all(a.issued for a in asks):
            for ask in asks:
                if not ask.issued:
                    await advance_key(self.api, ask)
            if time.monotonic() > deadline:
                raise InfraError("set-up: keys not issued")
        for ask in asks:
            self.certs.append(await self._register(ask, deadline))
        for cert in self.certs:
            await self.wait_ocsp(cert, "good", deadline)
        self.api.recorder = Recorder()  # the set-up's answers are no scenario's

    async def _register(self, ask: KeyAsk, deadline: float) -> Cert:
        serial = random.getrandbits(63) | 1 << 62
        while True:
            # 422 until certs has heard of the user (ExternalUserCreated from users).
            status, body, _ = await self.api.call("POST", "certs", "/v1/certificates", json={
                "username": ask.username, "serial": str(serial), "issuer_id": self.issuer_id})
            if status == 201:
                return Cert(body["id"], serial, ask.username)
            if time.monotonic() > deadline:
                raise InfraError(f"set-up: certificate of {ask.username}: {status} {body}")
            await asyncio.sleep(0.1)

    async def wait_ocsp(self, cert: Cert, reading: str, deadline: float) -> float | None:
        """Ask OCSP until it answers ``reading`` for ``cert``; when (monotonic), or None."""
        while time.monotonic() < deadline:
            if await ocsp.ask(self.ocsp_http, self.ocsp_url, self.issuer.request(cert.serial)) == reading:
                return time.monotonic()
            await asyncio.sleep(0.05)
        return None

    async def wait_user(self, ask: KeyAsk, deadline: float) -> float | None:
        while time.monotonic() < deadline:
            if await user_listed(self.api, ask):
                return time.monotonic()
            await asyncio.sleep(0.05)
        return None

    # -- looking inside (the harness's own view, for the ledger) ------------------------

    @property
    def db_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg.port}/siui"

    async def sql(self, query: str, *args):
        conn = await asyncpg.connect(self.db_dsn, timeout=5)
        try:
            return await conn.fetch(query, *args, timeout=10)
        finally:
            await conn.close()

    async def dead_letters(self) -> dict[str, int]:
        """Messages in each dead-letter queue (as the broker's administrator: passive declares)."""
        connection = await aio_pika.connect(self.rabbit.admin_url, timeout=5)
        try:
            channel = await connection.channel()
            depths = {}
            for spec in TOPOLOGY:
                queue = await channel.declare_queue(f"{EXCHANGE}.{spec.name}.dlq", passive=True)
                depths[spec.name] = queue.declaration_result.message_count
            return depths
        finally:
            await connection.close()

    async def wait_port(self, port: int, deadline: float) -> float | None:
        """Poll a TCP port every 20 ms; the first moment it accepts (monotonic)."""
        while time.monotonic() < deadline:
            if await asyncio.to_thread(listening, port):
                return time.monotonic()
            await asyncio.sleep(0.02)
        return None

    async def database_answers(self) -> bool:
        """One new connection and ``select 1``, within a second."""
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError):
            conn = await asyncpg.connect(self.db_dsn, timeout=1)
            try:
                await conn.fetchval("select 1", timeout=1)
                return True
            finally:
                await conn.close(timeout=1)
        return False
