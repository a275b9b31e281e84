"""Benchmark: every desktop of the country reconnecting to :8443 at once, against nginx.

    .venv/bin/python -m bench.online [--desktops 7500] [--processes 2] [--seconds 10]

Our side: ``python -m services.ocsp`` (SIUI_OCSP_WORKERS=2 and the default shedding
bounds, as deployed) on a scratch database holding N external users, each with a
licence key (its keyed hash, as keygen would publish it) and a certificate of their own
(a fresh EC P-256 key and certificate from the dev PKI's demo issuer, registered to
that user): inserted straight into the ocsp tables, as bench.ocsp does. The anchor:
Debian's nginx on the same two cores (worker_processes 2), the same server certificate
(EC P-256), ``ssl_verify_client on`` against the same issuer, TLS 1.3 session tickets
on, returning fixed bytes, hit by the same generator with the same certificates.

The generator: ``--processes`` processes, each an asyncio loop holding its share of the
N simulated desktops, each with its own SSL context (its certificate and key), its own
TLS connection per attempt and its own Basic credentials. A desktop acts as
clients.desktop does: ``POST /v1/online/connect`` with ``Connection: close``; on a 503
it waits as ``clients.desktop.backoff.Backoff`` says with the ``Retry-After`` as floor,
on a closed or failed connection as it says without one; on success it keeps its TLS
session (ticket) for the next connect. Scenarios, each against ours then nginx:

- storm, new: all N desktops start within one second, none holding a session (the
  first morning, or tickets lost): time until all N are online, errors by kind
  (each shed attempt is retried), p50/p99 of the successful connects and of the
  time each desktop took to get online, the sustained connects/s;
- storm, resumed: the same N at once again, each resuming its session (a network cut:
  every desktop reconnects);
- closed loop, new / resumed: ``--concurrency`` connects in flight per process for
  ``--seconds``: the rate the server sustains when not overloaded, with p50/p99.

What is simulated and what is not: the desktops run on this machine, sharing its two
cores with the server (so every figure is lower than with the load elsewhere, for both
servers alike); loopback has no latency; a desktop's heartbeats are left out.
Figures to reach (issue 18): all N online within 60 s with no failed connect; new
connects/s at least 0.5x nginx's; resumed at least 2x new.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import multiprocessing
import os
import random
import signal
import ssl
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clients.desktop.backoff import Backoff
from deploy.devpki import ensure_dev_pki
from bench.ocsp_service import OcspService, listening, stop_process
from shared import license
from tests.support import infra

READY_TIMEOUT = 90.0
STORM_DEADLINE = 180.0      # a storm not over by then is reported as such
ATTEMPT_TIMEOUT = 10.0      # what the desktop waits for an answer (transport.DEFAULT_TIMEOUT)
NGINX = "/usr/sbin/nginx"
SERVERS = ("ours", "nginx")
SCENARIOS = ("storm-new", "storm-resumed", "loop-new", "loop-resumed")
PATH = "/v1/online/connect"


@dataclass(frozen=True)
class Desktop:
    username: str
    serial: str
    cert: str
    key: str


# -- the data ---------------------------------------------------------------------------------

def make_desktops(pki, count: int, work: Path) -> list[Desktop]:
    """N users, each with a licence serial and a certificate of its own (EC P-256)."""
    issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    issuer_key = serialization.load_pem_private_key(pki.demo_issuer_key.read_bytes(), None)
    now = datetime.now(timezone.utc)
    folder = work / "desktops"
    folder.mkdir()
    desktops = []
    for n in range(count):
        cui = str(20000000 + n)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cui),
                                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Bench provider {n}")]))
                .issuer_name(issuer.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                .sign(issuer_key, hashes.SHA256()))
        cert_path, key_path = folder / f"{n}.pem", folder / f"{n}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        desktops.append(Desktop(f"{cui}_CAS-B", license.generate(), str(cert_path), str(key_path)))
    return desktops


async def load_database(url: str, pki, desktops: list[Desktop]) -> None:
    await infra.migrate_schema(url, "ocsp", "services.ocsp")
    issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    pepper = license.load_pepper(pki.license_pepper)
    issuer_id, now = uuid.uuid4(), datetime.now(timezone.utc)
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        await conn.execute("insert into issuers (id, subject_dn, certificate_der, event_at) values ($1, $2, $3, $4)",
                           issuer_id, issuer.subject.rfc4514_string(),
                           issuer.public_bytes(serialization.Encoding.DER), now)
        serials = [x509.load_pem_x509_certificate(Path(d.cert).read_bytes()).serial_number for d in desktops]
        await conn.copy_records_to_table(
            "certificates", columns=["issuer_id", "serial", "certificate_id", "username", "cas", "provider_cui",
                                     "status", "changed_at"],
            records=[(issuer_id, Decimal(s), uuid.uuid4(), d.username, "B", d.username.partition("_")[0], "active",
                      now) for s, d in zip(serials, desktops)])
        await conn.copy_records_to_table(
            "external_user_keys", columns=["username", "cas", "provider_cui", "provider_name", "key_digest",
                                           "issued_at", "version"],
            records=[(d.username, "B", d.username.partition("_")[0], "Bench provider",
                      license.digest(d.serial, pepper).hex(), now, 1) for d in desktops])
    finally:
        await conn.close()


# -- the servers --------------------------------------------------------------------------------

async def start_ours(url: str, exchange: str, pki, work: Path) -> tuple[subprocess.Popen, int]:
    service = OcspService(url, exchange, pki.data_dir, work / "ocsp-service.log", workers=2)
    service.start()

    async def ready(session: aiohttp.ClientSession) -> bool:
        return await service.readyz(session) and await service.tls_listening()

    await service.wait(ready, timeout=READY_TIMEOUT, interval=0.3)
    return service.process, service.tls_port


NGINX_CONF = """
user {user};
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 16384; }}
worker_rlimit_nofile 65535;
http {{
    access_log off;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl backlog=2048;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        ssl_session_tickets on;
        ssl_session_timeout 1d;
        keepalive_timeout 0;
        location / {{ default_type application/json; return 200 '{{"semaphore":"online"}}'; }}
    }}
}}
"""


async def start_nginx(pki, work: Path) -> tuple[subprocess.Popen, int]:
    port = infra.free_port()
    folder = work / "nginx"
    folder.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=getpass.getuser(), work=folder, port=port, cert=pki.tls_server_cert,
                                      key=pki.tls_server_key, ca=pki.demo_issuer_cert))
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "stderr.log", "wb"))
    deadline = time.monotonic() + 10
    while not await listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not start; see {folder}")
        await asyncio.sleep(0.1)
    return process, port


# -- one desktop's connect -------------------------------------------------------------------------

class Shed(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


async def connect(port: int, context: ssl.SSLContext, request: bytes, session: ssl.SSLSession | None):
    """One connect on a new TLS connection: (status, retry_after, resumed, session)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1", session=session)

    async def pump() -> None:
        if outgoing.pending:
            writer.write(outgoing.read())
        data = await reader.read(65536)
        if not data:
            raise ConnectionResetError("closed by the server")
        incoming.write(data)

    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await pump()
        tls.write(request)
        writer.write(outgoing.read())
        answer = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                try:
                    await pump()
                except ConnectionResetError:
                    break
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            answer += chunk
        head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        if not head[0].startswith("HTTP/"):
            raise ConnectionResetError("no answer")
        status = int(head[0].split()[1])
        retry_after = next((int(line.partition(":")[2]) for line in head[1:]
                            if line.lower().startswith("retry-after:")), 0)
        return status, retry_after, tls.session_reused, tls.session
    finally:
        writer.close()


def kind_of(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc.__class__.__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "closed (at accept or in the handshake)"
    return exc.__class__.__name__


# -- a generator process ---------------------------------------------------------------------------

class Generator:
    """One process's desktops: their contexts, requests and sessions (per server)."""

    def __init__(self, desktops: list[Desktop], ca: str) -> None:
        self.desktops = desktops
        self.contexts = []
        for d in desktops:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # The generator does not check the server's certificate (a desktop does):
            # its CPU, shared with the server, goes to making load, not to checks.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.load_cert_chain(d.cert, d.key)
            self.contexts.append(context)
        self.requests = [(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic "
                          + base64.b64encode(f"{d.username}:{d.serial}".encode()).decode()
                          + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode() for d in desktops]
        self.sessions: dict[int, list[ssl.SSLSession | None]] = {}

    async def storm(self, port: int, resume: bool, start: float) -> dict:
        sessions = self.sessions.setdefault(port, [None] * len(self.desktops))
        attempts: list[tuple[str, float, bool]] = []  # (kind, latency, resumed)
        online_after: list[float | None] = [None] * len(self.desktops)

        async def desktop(i: int) -> None:
            await asyncio.sleep(max(0.0, start + random.random() - time.time()))  # all within one second
            backoff = Backoff()
            while time.time() < start + STORM_DEADLINE:
                began = time.time()
                try:
                    status, retry_after, reused, session = await asyncio.wait_for(
                        connect(port, self.contexts[i], self.requests[i], sessions[i] if resume else None),
                        ATTEMPT_TIMEOUT)
                except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
                    attempts.append((kind_of(exc), time.time() - began, False))
                    await pause(backoff.next_delay())
                    continue
                if status == 200:
                    attempts.append(("ok", time.time() - began, reused))
                    sessions[i] = session
                    online_after[i] = time.time() - start
                    return
                attempts.append(("503 (shed)" if status == 503 else f"http {status}", time.time() - began, reused))
                await pause(backoff.next_delay(retry_after))

        async def pause(delay: float) -> None:
            # The desktop's wait, cut at the storm's deadline (then the desktop counts as offline).
            await asyncio.sleep(max(0.0, min(delay, start + STORM_DEADLINE - time.time())))

        await asyncio.gather(*(desktop(i) for i in range(len(self.desktops))))
        return {"attempts": attempts, "online_after": online_after}

    async def loop(self, port: int, resume: bool, seconds: float, concurrency: int, start: float) -> dict:
        sessions = self.sessions.setdefault(port, [None] * len(self.desktops))
        attempts: list[tuple[str, float, bool]] = []
        await asyncio.sleep(max(0.0, start - time.time()))
        end = start + seconds

        async def one() -> None:
            while time.time() < end:
                i = random.randrange(len(self.desktops))
                began = time.time()
                try:
                    status, _, reused, session = await asyncio.wait_for(
                        connect(port, self.contexts[i], self.requests[i], sessions[i] if resume else None),
                        ATTEMPT_TIMEOUT)
                except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
                    attempts.append((kind_of(exc), time.time() - began, False))
                    continue
                if status == 200 and session is not None:
                    sessions[i] = session
                attempts.append(("ok" if status == 200 else f"http {status}", time.time() - began, reused))

        await asyncio.gather(*(one() for _ in range(concurrency)))
        return {"attempts": attempts}


def generator_process(desktops: list[Desktop], ca: str, pipe) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    generator = Generator(desktops, ca)
    pipe.send("ready")
    loop = asyncio.new_event_loop()
    while True:
        command = pipe.recv()
        if command[0] == "stop":
            return
        name, args = command[0], command[1:]
        pipe.send(loop.run_until_complete(getattr(generator, name)(*args)))


class Generators:
    def __init__(self, desktops: list[Desktop], ca: Path, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for n in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=generator_process, args=(desktops[n::processes], str(ca), theirs),
                                      daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        for pipe in self.pipes:
            assert pipe.recv() == "ready"

    def run(self, *command) -> dict:
        for pipe in self.pipes:
            pipe.send(command)
        results = [pipe.recv() for pipe in self.pipes]
        merged: dict = {}
        for result in results:
            for key, values in result.items():
                merged.setdefault(key, []).extend(values)
        return merged

    def stop(self) -> None:
        for pipe, process in zip(self.pipes, self.processes):
            try:
                pipe.send(("stop",))
            except OSError:
                pass
            process.join(10)
            if process.is_alive():
                process.kill()


# -- the figures ----------------------------------------------------------------------------------

@dataclass
class Figures:
    name: str
    rate: float
    p50: float
    p99: float
    errors: Counter = field(default_factory=Counter)
    resumed_share: float = 0.0
    all_online: float | None = None   # storms only: seconds until the last desktop was online
    online_p99: float | None = None
    offline: int = 0
    server_cpu: float = 0.0           # CPU seconds the server (all its processes) spent on the scenario
    connects: int = 0

    @property
    def cpu_per_connect(self) -> float:
        return self.server_cpu / self.connects if self.connects else float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def storm_figures(name: str, result: dict) -> Figures:
    ok = [a for a in result["attempts"] if a[0] == "ok"]
    online = [t for t in result["online_after"] if t is not None]
    last = max(online) if online else None
    errors = Counter(a[0] for a in result["attempts"] if a[0] != "ok")
    return Figures(name, len(ok) / last if last else 0.0, statistics.median(a[1] for a in ok) if ok else float("nan"),
                   pct([a[1] for a in ok], 0.99), errors, sum(a[2] for a in ok) / len(ok) if ok else 0.0,
                   last, pct(online, 0.99), sum(t is None for t in result["online_after"]), connects=len(ok))


def loop_figures(name: str, result: dict, seconds: float) -> Figures:
    ok = [a for a in result["attempts"] if a[0] == "ok"]
    errors = Counter(a[0] for a in result["attempts"] if a[0] != "ok")
    return Figures(name, len(ok) / seconds, statistics.median(a[1] for a in ok) if ok else float("nan"),
                   pct([a[1] for a in ok], 0.99), errors, sum(a[2] for a in ok) / len(ok) if ok else 0.0,
                   connects=len(ok))


def show(rows: list[Figures]) -> None:
    print(f"\n{'scenario':34} {'connects/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'resumed':>8} "
          f"{'all online':>10} {'online p99':>10} {'offline':>7} {'srv ms':>6}  errors by kind (each retried)")
    for r in rows:
        online = f"{r.all_online:9.1f}s" if r.all_online is not None else ""
        online99 = f"{r.online_p99:9.1f}s" if r.online_p99 is not None else ""
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.most_common()) or "none"
        print(f"{r.name:34} {r.rate:10.0f} {r.p50 * 1000:8.1f} {r.p99 * 1000:8.1f} {r.resumed_share:8.0%} "
              f"{online:>10} {online99:>10} {r.offline if r.all_online is not None else '':>7} "
              f"{r.cpu_per_connect * 1000:6.2f}  {errors}")


def verdicts(rows: dict[str, Figures], desktops: int) -> None:
    storm = rows["ours: storm, new"]
    new, resumed, nginx_new = rows["ours: loop, new"], rows["ours: loop, resumed"], rows["nginx: loop, new"]
    print("\nTargets (issue 18):")
    within = storm.all_online is not None and storm.all_online <= 60 and storm.offline == 0
    print(f"  all {desktops} online within 60 s, none left offline: "
          f"{'yes' if within else 'NO'} ({storm.all_online or float('nan'):.1f} s, {storm.offline} offline)")
    print(f"  new connects/s >= 0.5x nginx: {new.rate:.0f} vs {nginx_new.rate:.0f} = "
          f"{new.rate / nginx_new.rate if nginx_new.rate else float('nan'):.2f}x")
    print(f"  resumed >= 2x new: {resumed.rate:.0f} vs {new.rate:.0f} = "
          f"{resumed.rate / new.rate if new.rate else float('nan'):.2f}x")


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="siui-bench-online-"))
    pki = ensure_dev_pki(work / "data")
    infra.install_broker_secrets(pki.data_dir)
    started = time.monotonic()
    desktops = make_desktops(pki, args.desktops, work)
    print(f"{args.desktops} desktops: certificates and keys made in {time.monotonic() - started:.1f} s", flush=True)
    url = await infra.create_database("siui_bench_online")
    exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
    ours = nginx = generators = None
    rows: dict[str, Figures] = {}
    try:
        await load_database(url, pki, desktops)
        await infra.declare_exchange(exchange)
        generators = Generators(desktops, pki.root_ca_cert, args.processes)
        print(f"generator: {args.processes} processes ready", flush=True)
        if "ours" in args.servers:
            ours, port = await start_ours(url, exchange, pki, work)
            rows.update(run_scenarios("ours", generators, ours, port, args))
            stop_process(ours)
        if "nginx" in args.servers:
            nginx, port = await start_nginx(pki, work)
            rows.update(run_scenarios("nginx", generators, nginx, port, args))
            stop_process(nginx, signal.SIGQUIT)
        show(list(rows.values()))
        if set(args.servers) == set(SERVERS) and set(args.scenarios) == set(SCENARIOS):
            verdicts(rows, args.desktops)
        else:
            print("\n(a partial run: the targets are judged only on a full one, nginx beside ours)")
        print(f"\n{args.processes} generator processes on the same 2 cores as the server; closed loops: "
              f"{args.concurrency} connects in flight per process for {args.seconds} s. Every desktop has its own "
              "certificate, key, licence serial and TLS connection per attempt (it does not verify the server's certificate); 'resumed' is the share of "
              "successful connects that resumed a TLS 1.3 session; 'srv ms': CPU the server's processes spent "
              "per successful connect (all attempts' work included). Ours: SIUI_OCSP_WORKERS=2, default "
              "SIUI_ONLINE_* (shedding); nginx: 2 workers, fixed bytes.")
    finally:
        if generators is not None:
            generators.stop()
        stop_process(ours)
        stop_process(nginx, signal.SIGQUIT)
        try:
            await infra.delete_exchange(exchange)
        finally:
            await infra.drop_database(url)


def run_scenarios(side: str, generators: Generators, server: subprocess.Popen, port: int,
                  args) -> dict[str, Figures]:
    rows = {}
    for resume in (False, True):
        label = "resumed" if resume else "new"
        if f"storm-{label}" not in args.scenarios:
            continue
        before = cpu_seconds(server.pid)
        result = generators.run("storm", port, resume, time.time() + 1.0)
        row = rows[f"{side}: storm, {label}"] = storm_figures(f"{side}: storm, {label}", result)
        row.server_cpu = cpu_seconds(server.pid) - before
        show([row])
    for resume in (False, True):
        label = "resumed" if resume else "new"
        if f"loop-{label}" not in args.scenarios:
            continue
        before = cpu_seconds(server.pid)
        result = generators.run("loop", port, resume, args.seconds, args.concurrency, time.time() + 0.5)
        row = rows[f"{side}: loop, {label}"] = loop_figures(f"{side}: loop, {label}", result, args.seconds)
        row.server_cpu = cpu_seconds(server.pid) - before
        show([row])
    return rows


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a server process and all its descendants (the
    workers), from /proc: what the server itself spent, apart from the generator."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        walk = pid
        while walk in parents and walk != root:
            walk = parents[walk]
        if walk == root:
            total += seconds
    return total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--desktops", type=int, default=7500)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32, help="closed loops: connects in flight per process")
    parser.add_argument("--servers", type=lambda v: v.split(","), default=list(SERVERS),
                        help="which servers, comma-separated (default: ours,nginx; the targets need both)")
    parser.add_argument("--scenarios", type=lambda v: v.split(","), default=list(SCENARIOS),
                        help="which scenarios, comma-separated (default: all of " + ",".join(SCENARIOS) + ")")
    asyncio.run(main(parser.parse_args()))
