"""The fault suite's own PostgreSQL cluster and RabbitMQ node, in temporary directories.

Faults are injected into these, never into the machine's PostgreSQL (127.0.0.1:5432) or
RabbitMQ (127.0.0.1:5672): other checkouts and engineers use those. Both run on free
ports; every process is started here and ended here by its own pid (the postmaster's
from its pid file, the Erlang VM's from the process we started), also after a failure.

PostgreSQL: Debian's binaries (``/usr/lib/postgresql/<newest>/bin``), run as the
``postgres`` OS user when we are root (initdb refuses root), a data directory owned by
it, trust authentication on 127.0.0.1 and on its own Unix socket directory.

RabbitMQ: ``/usr/lib/rabbitmq/bin/rabbitmq-server`` in the foreground with a node name,
ports, data, logs, configuration and plugin list of its own. Debian's wrapper
(/usr/sbin/rabbitmq-server) runs the server as the ``rabbitmq`` user with HOME
/var/lib/rabbitmq, where the Erlang cookie lives; we do the same with a HOME of our own
holding our own cookie, and run ``rabbitmqctl -n <node>`` as that user with that HOME,
so the node and its CLI share one cookie and the machine's node's cookie is never read.
The machine's epmd (4369) is shared, as any two nodes on a host share it; it is never
stopped. The environment file is ours too (RABBITMQ_CONF_ENV_FILE): the machine's
/etc/rabbitmq/rabbitmq-env.conf names the machine's node.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.infra import free_port  # noqa: F401  (the stack takes it from here)

PG_ROOT = Path("/usr/lib/postgresql")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
START_DEADLINE = 120.0  # seconds: a loaded 2-core machine boots RabbitMQ in ~10-30 s


class InfraError(RuntimeError):
    """Our PostgreSQL or RabbitMQ could not be started or driven."""


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _as_root() -> bool:
    return os.geteuid() == 0


def _account(name: str) -> pwd.struct_passwd | None:
    """The OS user a daemon runs as when we are root (None: run as ourselves)."""
    if not _as_root():
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise InfraError(f"no OS user {name!r}: install the Debian package that creates it") from None


def _owned_dir(path: Path, account: pwd.struct_passwd | None) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


def _user_kw(account: pwd.struct_passwd | None) -> dict:
    # subprocess drops to that user itself (no su/runuser in between): the pid we get is
    # the daemon's own, which is what kill -9 must hit.
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


async def _run(argv: list[str], *, account=None, env=None, cwd=None, stdin: bytes | None = None,
               timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command to its end (bounded), as ``account``; its output captured."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, **_user_kw(account))
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise InfraError(f"{' '.join(argv[:3])}... did not finish within {timeout:.0f}s") from None
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise InfraError(f"{' '.join(argv)} exited with {proc.returncode}: "
                         f"{(err or out).decode(errors='replace').strip()[-800:]}")
    return done


# -- PostgreSQL ------------------------------------------------------------------------------

def _pg_bin() -> Path:
    versions = sorted((p for p in PG_ROOT.glob("*/bin/initdb")), key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    if not versions:
        raise InfraError(f"no PostgreSQL binaries under {PG_ROOT} (apt-get install postgresql)")
    return versions[-1].parent


@dataclass
class Postgres:
    """One PostgreSQL cluster of ours: ``start``, ``restart(mode)``, ``stop``."""

    base: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.bin = _pg_bin()
        self.account = _account("postgres")
        self.root = _owned_dir(self.base / "pg", self.account)
        self.data = self.root / "data"
        self.sockets = _owned_dir(self.root / "sock", self.account)
        self.log = self.root / "postgres.log"
        self.started = False

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def _env(self) -> dict[str, str]:
        # C.UTF-8 ships with glibc: initdb fails on a locale the machine lacks.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    async def _pg_ctl(self, *args: str, timeout: float = 120.0) -> None:
        await _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args],
                   account=self.account, env=self._env(), cwd=str(self.root), timeout=timeout)

    async def start(self) -> None:
        await _run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                    "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=trust", "--no-sync"],
                   account=self.account, env=self._env(), cwd=str(self.root))
        with open(self.data / "postgresql.conf", "a") as conf:
            # The stack's pools (10 per service, the ocsp workers', the listeners') and ours.
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.sockets}'\nmax_connections = 300\n"
                       "log_line_prefix = '%m [%p] %a '\n")
        self.started = True
        await self._pg_ctl("-w", "-t", "60", "start")

    async def restart(self, mode: str) -> None:
        """``pg_ctl restart -m fast|immediate`` (immediate: a crash and its recovery)."""
        await self._pg_ctl("-w", "-t", "60", "-m", mode, "restart")

    async def stop(self) -> None:
        if self.started and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(InfraError):
                await self._pg_ctl("-w", "-t", "30", "-m", "fast", "stop", timeout=60)
        self._kill_leftover()
        self.started = False

    def _kill_leftover(self) -> None:
        """The postmaster of *our* data directory, if pg_ctl could not stop it."""
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if str(self.data).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)

    async def create_database(self, user: str, password: str, database: str) -> str:
        """A login role and a database it owns; returns their DSN."""
        import asyncpg

        conn = await asyncpg.connect(self.admin_dsn)
        try:
            # DDL takes no parameters; the names and password are this module's constants.
            await conn.execute(f"create role {user} login createdb password '{password}'")
            await conn.execute(f"create database {database} owner {user} encoding 'UTF8' template template0")
        finally:
            await conn.close()
        return self.dsn(user, password, database)


# -- RabbitMQ --------------------------------------------------------------------------------

@dataclass
class Rabbit:
    """One RabbitMQ node of ours: ``start``, ``stop_app``/``start_app``, ``kill`` (-9), ``stop``."""

    base: Path
    name: str = field(default_factory=lambda: f"chaos-{secrets.token_hex(3)}@localhost")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    ctl_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise InfraError(f"no {RABBIT_BIN}/rabbitmq-server (apt-get install rabbitmq-server)")
        self.account = _account("rabbitmq")
        self.root = _owned_dir(self.base / "rabbit", self.account)
        self.home = _owned_dir(self.root / "home", self.account)
        self.log = self.root / "server.log"
        self.process: subprocess.Popen | None = None
        self.pids_seen: set[int] = set()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie others may read
        if self.account is not None:
            os.chown(cookie, self.account.pw_uid, self.account.pw_gid)
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"      # guest: the administrator, from loopback only
            "log.console = false\nlog.file.level = info\n")
        (self.root / "enabled_plugins").write_text("[].\n")   # management and the rest off
        # Our own env file: the machine's names the machine's node. Distribution on loopback.
        (self.root / "rabbitmq-env.conf").write_text(
            'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
            'CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
        for path in (self.root / "rabbitmq.conf", self.root / "enabled_plugins", self.root / "rabbitmq-env.conf"):
            path.chmod(0o644)

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
            "HOME": str(self.home), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.ctl_port + 10),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.root / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    @property
    def admin_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """What the services get: no user (each logs in as its own)."""
        return f"amqp://127.0.0.1:{self.port}/"

    async def ctl(self, *args: str, stdin: bytes | None = None, timeout: float = 90.0,
                  check: bool = True) -> subprocess.CompletedProcess:
        """``rabbitmqctl -n <our node> ...`` with our cookie."""
        return await _run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, *args], account=self.account,
                          env=self._env(), cwd=str(self.home), stdin=stdin, timeout=timeout, check=check)

    def _spawn(self) -> None:
        log = open(self.log, "ab")
        # In the foreground the script keeps running as a proxy that turns SIGTERM into a
        # clean stop; the VM (beam.smp) is its child: ``vm_pid`` finds it.
        self.process = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self._env(), cwd=str(self.home),
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, **_user_kw(self.account))
        log.close()
        self.pids_seen.add(self.process.pid)

    async def start(self) -> None:
        """Start the node and wait until it serves AMQP."""
        if listening(self.port):
            raise InfraError(f"port {self.port} is taken: not starting a node there")
        self._spawn()
        await self.wait_up()

    async def wait_up(self, deadline: float = START_DEADLINE) -> float:
        """Until the node's app runs and its AMQP port accepts; returns when (monotonic)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process is not None and self.process.poll() is not None:
                raise InfraError(f"rabbitmq-server exited with {self.process.returncode}; see {self.log}")
            done = await self.ctl("await_startup", "--timeout", "30", check=False, timeout=60)
            if done.returncode == 0 and listening(self.port):
                return time.monotonic()
            await asyncio.sleep(0.2)
        raise InfraError(f"RabbitMQ node {self.name} not up within {deadline:.0f}s; see {self.log}")

    async def stop_app(self) -> None:
        await self.ctl("stop_app")

    async def start_app(self) -> float:
        await self.ctl("start_app")
        return await self.wait_up()

    def vm_pid(self) -> int:
        """The Erlang VM under the script we started (what a kill -9 must hit)."""
        if self.process is None or self.process.poll() is not None:
            raise InfraError("the RabbitMQ node is not running")
        procs = _processes()
        below, queue = [], [self.process.pid]
        while queue:
            parent = queue.pop()
            for pid, ppid, comm in procs:
                if ppid == parent:
                    below.append((pid, comm))
                    queue.append(pid)
        for pid, comm in below:
            if comm.startswith("beam"):
                self.pids_seen.add(pid)
                return pid
        raise InfraError("no beam.smp under our rabbitmq-server")

    def kill(self) -> int:
        """kill -9 the VM; returns its pid once the script around it has exited."""
        pid = self.vm_pid()
        os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        return pid

    async def restart_after_kill(self) -> float:
        self._spawn()
        return await self.wait_up()

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(InfraError):
                self.vm_pid()  # remembered, so that its helpers can be reaped below
                await self.ctl("stop", timeout=60)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reap_children()

    def _reap_children(self) -> None:
        """Helpers the VM started (erl_child_setup, inet_gethost) that outlived it: only
        those whose parent chain led to a VM of ours. epmd is the machine's: left alone."""
        for pid, ppid, comm in _processes():
            if ppid in self.pids_seen and comm != "epmd":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _processes() -> list[tuple[int, int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                out.append((int(entry.name), ppid, comm))
    return out


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
