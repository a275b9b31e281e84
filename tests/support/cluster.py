"""RabbitMQ nodes and PostgreSQL servers of the tests' own, for failover: independent
nodes, a cluster of three, a primary with a streaming standby.

Built on the fault suite's ``tests.chaos.infra`` (its own ports, data directories, OS
users, and processes ended by their own pids): never the machine's PostgreSQL (5432) or
RabbitMQ (5672), which other checkouts use.

A RabbitMQ cluster is nodes that share one Erlang cookie (each node's HOME holds it, and
its ``rabbitmqctl`` runs with the same HOME), the second and third joined to the first
with ``rabbitmqctl join_cluster``. The standby is ``pg_basebackup -R`` of the primary
(it writes ``standby.signal`` and ``primary_conninfo``), started on a port of its own,
and promoted by hand with ``pg_ctl promote``: what Patroni does in production.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path

import aio_pika

from shared.broker import declare_topology
from tests.chaos.infra import InfraError, Postgres, Rabbit, _owned_dir, _run, free_port

__all__ = ["workspace", "InfraError", "Rabbit", "start_nodes", "start_cluster", "stop_all", "declare_on", "Standby",
           "streaming_pair", "wait_for", "cluster_members"]


def workspace(prefix: str) -> Path:
    """A new directory under /tmp the daemons' OS users (postgres, rabbitmq) can enter:
    pytest's own tmp_path is inside a 0700 directory of root's."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


async def wait_for(check, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``check()`` (sync or async) until it returns something true; that value.
    Raises AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(interval)


def _give_cookie(node: Rabbit, cookie: str) -> None:
    path = node.home / ".erlang.cookie"
    path.chmod(0o600)
    path.write_text(cookie)
    path.chmod(0o400)
    if node.account is not None:
        os.chown(path, node.account.pw_uid, node.account.pw_gid)


async def start_nodes(base: Path, count: int, *, prefix: str = "failover") -> list[Rabbit]:
    """``count`` independent nodes, started together (each boot is mostly waiting)."""
    nodes = [Rabbit(base / f"n{i}", name=f"{prefix}{i}-{secrets.token_hex(3)}@localhost") for i in range(count)]
    try:
        await asyncio.gather(*(node.start() for node in nodes))
    except BaseException:
        await stop_all(nodes)
        raise
    return nodes


async def start_cluster(base: Path, count: int = 3) -> list[Rabbit]:
    """``count`` nodes with one cookie, the others joined to the first."""
    nodes = [Rabbit(base / f"c{i}", name=f"cluster{i}-{secrets.token_hex(3)}@localhost") for i in range(count)]
    cookie = secrets.token_hex(20).upper()
    for node in nodes:
        _give_cookie(node, cookie)
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        for node in nodes[1:]:
            await node.ctl("stop_app")
            await node.ctl("join_cluster", nodes[0].name)
            await node.ctl("start_app")
            await node.wait_up()
    except BaseException:
        await stop_all(nodes)
        raise
    return nodes


async def cluster_members(node: Rabbit) -> set[str]:
    """The running members as ``node`` sees them."""
    import json

    done = await node.ctl("-q", "cluster_status", "--formatter", "json")
    return set(json.loads(done.stdout).get("running_nodes", []))


async def stop_all(nodes: list[Rabbit]) -> None:
    for node in nodes:
        with contextlib.suppress(Exception):
            await node.stop()


async def declare_on(node: Rabbit, exchange: str) -> None:
    """The deployment's topology (quorum queues and all) for ``exchange`` on ``node``,
    as its administrator (guest, from loopback)."""
    connection = await aio_pika.connect(node.admin_url, timeout=10)
    try:
        await declare_topology(await connection.channel(), exchange)
    finally:
        await connection.close()


class Standby:
    """A streaming standby of ``primary``: ``pg_basebackup -R``, its own port, started,
    ``promote``d by hand, stopped and its processes ended by its own pid."""

    def __init__(self, primary: Postgres, base: Path):
        self.primary = primary
        self.bin = primary.bin
        self.account = primary.account
        self.root = _owned_dir(base / "standby", self.account)
        self.data = self.root / "data"
        self.sockets = _owned_dir(self.root / "sock", self.account)
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.started = False

    # The primary's own environment and pg_ctl: they read only bin, data, log, account, root.
    _env = Postgres._env
    _pg_ctl = Postgres._pg_ctl

    async def start(self) -> None:
        # Trust on 127.0.0.1 (the primary's initdb) lets the backup connect as postgres;
        # a fast checkpoint, because the default spread one makes the backup wait minutes.
        await _run([str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                    "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "--no-sync",
                    "--checkpoint=fast"],
                   account=self.account, env=self._env(), cwd=str(self.root), timeout=120)
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            # The copied postgresql.conf names the primary's port and socket directory.
            conf.write(f"\nport = {self.port}\nunix_socket_directories = '{self.sockets}'\n")
        self.started = True
        await self._pg_ctl("-w", "-t", "60", "start")

    async def promote(self) -> None:
        await self._pg_ctl("-w", "-t", "60", "promote")

    async def stop(self) -> None:
        if self.started and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(InfraError):
                await self._pg_ctl("-w", "-t", "30", "-m", "fast", "stop", timeout=60)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            if str(self.data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                os.kill(pid, signal.SIGKILL)
        self.started = False


@contextlib.asynccontextmanager
async def streaming_pair(base: Path, role: str, password: str, database: str, *, synchronous: bool = False):
    """A primary with ``role``'s ``database`` and its streaming standby, both started and
    stopped here: yields ``(primary, standby)`` once the standby streams (and, with
    ``synchronous``, confirms every commit: a commit returns once the standby has it)."""
    import asyncpg

    primary = Postgres(base / "primary")
    standby = Standby(primary, base)
    try:
        await primary.start()
        await primary.create_database(role, password, database)
        await standby.start()
        admin = await asyncpg.connect(primary.admin_dsn)
        try:
            await wait_for(lambda: admin.fetchval("select count(*) from pg_stat_replication where state = 'streaming'"),
                           timeout=30, what="the standby streaming")
            if synchronous:
                await admin.execute("alter system set synchronous_standby_names = '*'")
                await admin.execute("select pg_reload_conf()")
                await wait_for(lambda: admin.fetchval(
                    "select count(*) from pg_stat_replication where sync_state = 'sync'"),
                    timeout=30, what="the standby synchronous")
        finally:
            await admin.close()
        yield primary, standby
    finally:
        await standby.stop()
        await primary.stop()
