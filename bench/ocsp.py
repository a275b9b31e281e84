"""Benchmark: the OCSP responder against OpenSSL's, with wrk, on 127.0.0.1.

    .venv/bin/python -m bench.ocsp [--seconds 10] [--connections 64] [--threads 2]

Our side: ``python -m services.ocsp`` (SIUI_OCSP_WORKERS=2, as deployed) on a scratch
database holding the dev PKI's demo issuer and 50,000 registered certificates (inserted
straight into the ocsp tables: it is a benchmark), with its log, consumers and online
channel running as usual. The anchor: ``openssl ocsp -index … -rsigner … -rkey … -CA …
-port … -multi 2`` with the same CA, certificates, requests and responder key (EC P-256).
OpenSSL 3.0's ``-port`` listens on every interface, so it and its wrk run inside
``unshare -n`` with only loopback up; and an empty connection wedges it, so the Lua
scripts override ``wrk.resolve`` to skip wrk's probe connection, and readiness is
probed with a real OCSP request.

Scenarios (wrk POSTs one DER request per HTTP request, ``--seconds`` each):
- cached, keep-alive: one certificate, no nonce (our answer comes from the cache);
- cached, ``Connection: close``: a new connection per request, like a lone desktop;
- live signing: a random 16-octet nonce per request (made in Lua), so every answer is
  freshly signed on our side (OpenSSL signs every answer anyway);
- mix: a random one of the 50,000 registered certificates per request, no nonce (our
  cache warmed by a first pass; the first answer for each serial is signed live);
- p99 at half the peak rate: wrk2 is not packaged, so wrk runs closed-loop with a 5 ms
  ``delay()`` after each answer on N connections, N chosen to offer half the measured
  cached keep-alive peak; the rate achieved is printed next to wrk's latency percentiles.
- p99 at saturation: the cached keep-alive run itself (``--connections``, 64 by default),
  its p99 against the target of 15 ms, beside OpenSSL's in the same run.
- after a state change (ours only): ``CHANGED`` certificates are suspended at once as
  certs' events would (rows and notes in one transaction), then asked about for a few
  seconds; /metrics says how many answers were signed on the request path (the target:
  none, every one is the presigner's) and the log how many said revoked.

Before the runs the bench waits until the presigner has signed every certificate's
answers (``presigned_answers`` full), so the runs measure serving, not the first fill
(whose rate is printed: signatures per second of the one elected presigner).

Our answers are checked, not just counted: after each run the OCSP log (written by the
service under that load) is read back, and the share of answers that were ``good``
(``ok``) is printed. Everything stops by itself; the scratch database and exchange are
removed.

The log's live stream under that load (``--stream``): during each of our measured runs one
reader in this process holds ``GET /v1/log/stream`` open (a national token signed with the dev PKI
key), from the newest id before the run on, reconnecting with ``Last-Event-ID`` if the
connection ends. After the run it waits (bounded) for the run's last entry, and a second
table shows the entries logged vs. streamed, duplicates, reconnects, and the lag from an
entry's ``at`` to its arrival (p50/p99/max). Without ``--stream`` the reader is left out,
so that the comparison with OpenSSL (which has no log to stream) is like for like.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.ocsp_service import OcspService
from deploy.devpki import ensure_dev_pki
from services.ocsp.responder.registry import issuer_hashes
from shared.auth import NATIONAL
from tests.support import bus, infra

CERTIFICATES = 50_000
CHANGED = 500            # certificates suspended at once in the state-change run
SATURATION_P99_MS = 15.0
PRESIGN_HASHES = 2       # SIUI_OCSP_PRESIGN_HASHES' default: sha1, sha256
HALF_RATE_DELAY_MS = 5
READY_TIMEOUT = 90.0

_LUA_COMMON = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/ocsp-request"
-- No probe connection: an empty connection wedges openssl's responder.
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*all")
  f:close()
  return data
end
"""
LUA = {
    "fixed": _LUA_COMMON + """
function init(args)
  wrk.body = slurp(args[1])
end
if tonumber(os.getenv("WRK_DELAY_MS") or "0") > 0 then
  function delay() return tonumber(os.getenv("WRK_DELAY_MS")) end
end
""",
    "nonce": _LUA_COMMON + """
function init(args)
  local der = slurp(args[1])
  prefix = der:sub(1, #der - 16)  -- the request ends with its 16 nonce octets
  math.randomseed(os.time() * 131 + id)
end
function request()
  local n = {}
  for i = 1, 16 do n[i] = string.char(math.random(0, 255)) end
  return wrk.format(nil, nil, nil, prefix .. table.concat(n))
end
""",
    "mix": _LUA_COMMON + """
function init(args)
  local data = slurp(args[1])
  reqs = {}
  local pos = 1
  while pos <= #data do
    local hi, lo = data:byte(pos, pos + 1)
    local len = hi * 256 + lo
    reqs[#reqs + 1] = wrk.format(nil, nil, nil, data:sub(pos + 2, pos + 1 + len))
    pos = pos + 2 + len
  end
  math.randomseed(os.time() * 131 + id)
end
function request()
  return reqs[math.random(#reqs)]
end
""",
}


@dataclass
class Run:
    """What wrk measured (and, for our side, what the OCSP log says was answered)."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: str = ""
    ok: float | None = None
    stream: "StreamTally | None" = None


def parse_wrk(text: str) -> Run:
    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    problems = ", ".join(filter(None, [errors.group(1) if errors else "", f"non-2xx {non2xx.group(1)}" if non2xx else ""]))
    return Run(float(rps.group(1)) if rps else float("nan"), ms("50"), ms("99"),
               int(total.group(1)) if total else 0, problems)


def wrk_command(url: str, script: Path, data: Path, *, seconds: int, threads: int, connections: int,
                close: bool = False) -> list[str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    if close:
        command += ["-H", "Connection: close"]
    return command + [url, "--", str(data)]


# -- the data both sides use ----------------------------------------------------------------------

@dataclass
class Data:
    pki: object
    work: Path
    serials: list[int]
    fixed: Path
    nonce: Path
    mix: Path
    index: Path
    changed: Path
    changed_serials: list[int]


def make_data(work: Path) -> Data:
    pki = ensure_dev_pki(work / "data")
    infra.install_broker_secrets(pki.data_dir)  # ocsp logs in as siui-ocsp
    ca = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(pki.demo_provider_cert.read_bytes())
    serials = [leaf.serial_number] + [(int.from_bytes(os.urandom(16), "big") >> 2) | (1 << 126)
                                      for _ in range(CERTIFICATES - 1)]
    fixed = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1()).build()
    (work / "fixed.der").write_bytes(fixed.public_bytes(serialization.Encoding.DER))
    with_nonce = (ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1())
                  .add_extension(x509.OCSPNonce(b"\0" * 16), critical=False).build())
    (work / "nonce.der").write_bytes(with_nonce.public_bytes(serialization.Encoding.DER))
    name_hash, key_hash = issuer_hashes(ca.public_bytes(serialization.Encoding.DER))["sha1"]
    changed = serials[-CHANGED:]
    for name, chosen in (("mix.bin", serials), ("changed.bin", changed)):
        with open(work / name, "wb") as out:
            for serial in chosen:
                der = (ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())
                       .build().public_bytes(serialization.Encoding.DER))
                out.write(len(der).to_bytes(2, "big") + der)
    expiry = (datetime.now(timezone.utc) + timedelta(days=365)).strftime("%y%m%d%H%M%SZ")
    with open(work / "index.txt", "w") as index:
        for n, serial in enumerate(serials):
            index.write(f"V\t{expiry}\t\t{serial:X}\tunknown\t/CN=bench-{n}\n")
    for name, text in LUA.items():
        (work / f"{name}.lua").write_text(text)
    return Data(pki, work, serials, work / "fixed.der", work / "nonce.der", work / "mix.bin", work / "index.txt",
                work / "changed.bin", changed)


async def load_database(url: str, data: Data) -> None:
    await infra.migrate_schema(url, "ocsp", "services.ocsp")
    ca = x509.load_pem_x509_certificate(data.pki.demo_issuer_cert.read_bytes())
    issuer_id = uuid.uuid4()
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        await conn.execute("insert into issuers (id, subject_dn, certificate_der, event_at) values ($1, $2, $3, $4)",
                           issuer_id, ca.subject.rfc4514_string(), ca.public_bytes(serialization.Encoding.DER), now)
        await conn.copy_records_to_table(
            "certificates", columns=["issuer_id", "serial", "certificate_id", "username", "cas", "provider_cui",
                                     "status", "changed_at"],
            records=[(issuer_id, Decimal(s), uuid.uuid4(), f"{10000000 + n}_CAS-B", "B", str(10000000 + n),
                      "active", now) for n, s in enumerate(data.serials)])
    finally:
        await conn.close()


# -- our side ----------------------------------------------------------------------------------

async def start_service(url: str, exchange: str, data: Data) -> OcspService:
    """Ready when it answers the fixed request "good" (the answer kept for OpenSSL's side)."""
    service = OcspService(url, exchange, data.pki.data_dir, data.work / "ocsp-service.log", workers=2)
    service.start()

    async def answers(session: aiohttp.ClientSession) -> bool:
        async with session.post(f"{service.url}/", data=data.fixed.read_bytes()) as response:
            answer = ocsp.load_der_ocsp_response(await response.read())
        if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return False
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
        (data.work / "answer.der").write_bytes(answer.public_bytes(serialization.Encoding.DER))
        return True

    await service.wait(answers, timeout=READY_TIMEOUT, interval=0.2)
    return service


async def log_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        return {r["status"]: r["n"] for r in await conn.fetch("select status, count(*) as n from ocsp_log group by status")}
    finally:
        await conn.close()


async def settled_counts(url: str) -> dict[str, int]:
    """The log's counts once the writers have caught up (no change for a second)."""
    previous, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = await log_counts(url)
        if counts == previous:
            return counts
        previous = counts
        await asyncio.sleep(1.0)
    return previous or {}


# -- the log's live stream under that load ----------------------------------------------------------

STREAM_CATCH_UP = 60.0     # seconds after a run for the stream to deliver the rest of it
STREAM_RECONNECTS = 50     # a stream that drops more often than this is a failure, not a blip
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(rb"\r\n|\n|\r")


@dataclass
class StreamTally:
    """What one SSE reader of ``GET /v1/log/stream`` saw of one run."""

    recorded: int = 0                 # entries the log table holds for the run
    delivered: int = 0                # distinct entries of the run the stream delivered
    duplicates: int = 0
    reconnects: int = 0
    lags_ms: list[float] = field(default_factory=list)   # arrival minus the entry's ``at``
    tail_s: float = float("nan")      # after wrk ended, until the run's last entry arrived
    reader_cpu_s: float = 0.0         # this process's CPU meanwhile: the reader's own cost
    chunks: int = 0                   # socket reads that carried the events
    errors: list[str] = field(default_factory=list)

    def lag(self, share: float) -> float:
        if not self.lags_ms:
            return float("nan")
        ordered = sorted(self.lags_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class StreamReader:
    """One reader of the live stream, in this process, for the span of one run.

    It starts after ``first`` (the newest id before the run) so that it sees exactly the
    run's entries, and when the connection ends for any reason it reconnects with
    ``Last-Event-ID`` (counted), as a browser's EventSource would."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, first: int) -> None:
        self.session, self.url, self.token = session, url, token
        self.last = first
        self.tally = StreamTally()
        self._seen: set[int] = set()
        self._arrived: dict[int, float] = {}   # id -> wall-clock arrival, for the tail
        self._progress = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._cpu = time.process_time()
        self.response: aiohttp.ClientResponse | None = None

    async def _connect(self) -> aiohttp.ClientResponse:
        response = await self.session.get(self.url, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "text/event-stream",
            "Last-Event-ID": str(self.last)})
        if response.status != 200:
            body = await response.text()
            response.release()
            raise RuntimeError(f"the stream answered {response.status}: {body[:300]}")
        return response

    async def start(self) -> None:
        """Connect (so the stream is open before wrk starts), then read in the background."""
        response = await self._connect()
        self._task = asyncio.create_task(self._run(response), name="bench-log-stream")

    async def _run(self, response: aiohttp.ClientResponse) -> None:
        while True:
            try:
                async with response:
                    await self._read(response)
                self.tally.errors.append("the server ended the stream")
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                self.tally.errors.append(repr(exc))
            self.tally.reconnects += 1
            if self.tally.reconnects > STREAM_RECONNECTS:
                return
            await asyncio.sleep(0.1)
            while True:
                try:
                    response = await self._connect()
                    break
                except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                    self.tally.errors.append(repr(exc))
                    await asyncio.sleep(0.5)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        self.response = response  # the open connection (to cut it when checking the resume)
        pending = b""
        async for chunk in response.content.iter_any():
            arrived = time.time()  # per chunk: a reader that falls behind shows as lag
            self.tally.chunks += 1
            *events, pending = _EVENT_END.split(pending + chunk)
            for event in events:
                self._take(event, arrived)
            self._progress.set()

    def _take(self, event: bytes, arrived: float) -> None:
        entry_id, data = None, None
        for line in _LINE_END.split(event):
            if line.startswith(b"id:"):
                entry_id = int(line[3:].strip())
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if entry_id is None or data is None:
            return  # a ": ping" comment
        if entry_id in self._seen:
            self.tally.duplicates += 1
            return
        self._seen.add(entry_id)
        self._arrived[entry_id] = arrived
        self.last = max(self.last, entry_id)
        at = datetime.fromisoformat(json.loads(data)["at"]).timestamp()
        self.tally.lags_ms.append((arrived - at) * 1000.0)

    async def finish(self, first: int, top: int, recorded: int, wrk_ended: float) -> StreamTally:
        """Wait (bounded) until the stream has delivered up to ``top``, then close it and
        return the tally of the run's entries (ids in ``first``..``top``)."""
        deadline = time.monotonic() + STREAM_CATCH_UP
        while self.last < top and time.monotonic() < deadline and not self._task.done():
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 1.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        tally = self.tally
        tally.recorded = recorded
        tally.reader_cpu_s = time.process_time() - self._cpu
        tally.delivered = sum(1 for i in self._seen if first < i <= top)
        if top in self._arrived:
            tally.tail_s = max(0.0, self._arrived[top] - wrk_ended)
        return tally


async def log_span(url: str, after: int) -> tuple[int, int]:
    """(entries with id > ``after``, the newest id) in the log table."""
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        row = await conn.fetchrow("select count(*) as n, coalesce(max(id), $1) as top from ocsp_log where id > $1",
                                  after)
        return row["n"], row["top"]
    finally:
        await conn.close()


async def newest_id(url: str) -> int:
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        return await conn.fetchval("select coalesce(max(id), 0) from ocsp_log")
    finally:
        await conn.close()


def stream_token(data: Data) -> str:
    """A national reader's token, signed with the dev PKI key the service trusts."""
    return infra.make_token(data.pki.token_signing_key, username="bench.cnas", cas=NATIONAL)


async def run_ours(url: str, port: int, data: Data, scenario: str, args, **kw) -> Run:
    before = await settled_counts(url)
    delay = kw.pop("delay", 0)
    watch = kw.pop("stream", False) and args.stream
    session = reader = None
    if watch:
        first = await newest_id(url)
        # No overall timeout: the stream lives as long as the run; a silent socket (no
        # event and no 15 s ping) is still noticed.
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30))
        reader = StreamReader(session, f"http://127.0.0.1:{port}/v1/log/stream", stream_token(data), first)
        try:
            await reader.start()
        except BaseException:
            await session.close()
            raise
    expect = kw.pop("expect", "good")
    script, payload = {"fixed": (data.work / "fixed.lua", data.fixed), "nonce": (data.work / "nonce.lua", data.nonce),
                       "mix": (data.work / "mix.lua", data.mix), "changed": (data.work / "mix.lua", data.changed)
                       }[scenario]
    command = wrk_command(f"http://127.0.0.1:{port}/", script, payload, seconds=kw.pop("seconds", args.seconds),
                          threads=kw.pop("threads", args.threads), connections=kw.pop("connections", args.connections),
                          **kw)
    try:
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                       env={**os.environ, "WRK_DELAY_MS": str(delay)})
        wrk_ended = time.time()
        run = parse_wrk(done.stdout)
        after = await settled_counts(url)
        if reader is not None:
            recorded, top = await log_span(url, first)
            run.stream = await reader.finish(first, top, recorded, wrk_ended)
    finally:
        if session is not None:
            await session.close()
    answered = sum(after.values()) - sum(before.values())
    good = after.get(expect, 0) - before.get(expect, 0)
    run.ok = good / answered if answered else None
    if answered < run.requests:
        run.errors = ", ".join(filter(None, [run.errors, f"log has {answered} of {run.requests}"]))
    return run


# -- pre-signed answers: the first fill, and a state change ---------------------------------------

async def presigned_filled(url: str, expected: int) -> tuple[float, int]:
    """Wait until the presigner has stored ``expected`` answers; (seconds waited, count)."""
    started = time.monotonic()
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        while True:
            count = await conn.fetchval("select count(*) from presigned_answers")
            if count >= expected or time.monotonic() - started > 600:
                return time.monotonic() - started, count
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def suspend(url: str, exchange: str, serials: list[int]) -> None:
    """Suspend ``serials`` as certs does: the rows' new state published as
    CertificateSuspended, all at once (a burst of suspensions); each worker applies them
    from its own queue, the durable consumer stores them."""
    from services.ocsp.state import queries
    from shared.events import CertificateSuspended, iso

    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        rows = await conn.fetch(f"select {queries.CERTIFICATE_COLUMNS} from certificates "
                                "where serial = any($1::numeric[])", [Decimal(s) for s in serials])
    finally:
        await conn.close()
    publishers = infra.Publishers(exchange)
    now = iso(datetime.now(timezone.utc))
    try:
        for row in rows:
            await bus.publish(publishers, CertificateSuspended(
                certificate_id=str(row["certificate_id"]), issuer_id=str(row["issuer_id"]),
                serial=str(int(row["serial"])), username=row["username"], provider_cui=row["provider_cui"],
                status="suspended", changed_at=now), row["cas"])
    finally:
        await publishers.close()


async def answer_sources(port: int, data: Data) -> dict[str, float]:
    """siui_ocsp_answers_by_source_total per source, summed over the workers."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics",
                               headers=infra.metrics_headers(data.pki.data_dir)) as response:
            text = await response.text()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^siui_ocsp_answers_by_source_total\{source="(\w+)"\} (\S+)$', text, re.M)}


# -- context: the HTTP layer's ceiling --------------------------------------------------------------

def bare_server(port: int, body_path: str) -> None:
    """A bare aiohttp handler returning fixed bytes (one of our answers), nothing else."""
    from aiohttp import web

    body = Path(body_path).read_bytes()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/ocsp-response")

    app = web.Application()
    app.router.add_post("/", answer)
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None, loop=loop)


async def run_bare(data: Data, args) -> dict[str, Run]:
    """The same wrk runs against two bare aiohttp processes (what the issue quotes as context)."""
    async with aiohttp.ClientSession() as session:
        port = infra.free_port()
        answer = data.work / "answer.der"
        processes = [subprocess.Popen([sys.executable, "-m", "bench.ocsp", "--bare-server", str(port), str(answer)])
                     for _ in range(2)]
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.post(f"http://127.0.0.1:{port}/", data=b"x") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            runs = {}
            for name, close in (("bare keep-alive", False), ("bare close", True)):
                command = wrk_command(f"http://127.0.0.1:{port}/", data.work / "fixed.lua", data.fixed,
                                      seconds=args.seconds, threads=args.threads, connections=args.connections,
                                      close=close)
                done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
                runs[name] = parse_wrk(done.stdout)
            return runs
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(15)


# -- the anchor ---------------------------------------------------------------------------------

def openssl_script(data: Data, port: int, runs: list[tuple[str, list[str], int]]) -> str:
    """The anchor's side as a shell script, run in its own network and PID namespaces.

    A fresh responder per run: wrk ends a run by closing connections on which it sent
    nothing yet, and such an empty connection wedges openssl's worker for good. When the
    script ends, the PID namespace ends and the kernel stops whatever is left in it.
    """
    pki = data.pki
    lines = ["set -u", "ip link set lo up"]
    for offset, (name, command, delay) in enumerate(runs):
        # A port of its own per run: a restart on the same port sometimes never listened.
        run_port = port + offset
        command = [c.replace(f":{port}/", f":{run_port}/") for c in command]
        start = (f"openssl ocsp -index {data.index} -rsigner {pki.responder_cert} -rkey {pki.responder_key} "
                 f"-CA {pki.demo_issuer_cert} -port {run_port} -multi 2 >>{data.work}/openssl.log 2>&1 &")
        # Ready when the port listens (seen with ss: no connection, as an empty one would
        # wedge it) and a real request is answered.
        listening = f'[ -n "$(ss -Hltn "sport = :{run_port}")" ]'
        probe = (f"openssl ocsp -issuer {pki.demo_issuer_cert} -cert {pki.demo_provider_cert} -no_nonce "
                 f"-url http://127.0.0.1:{run_port}/ -timeout 5 -noverify >/dev/null 2>&1")
        lines += [start, "n=0",
                  f"until {listening}; do n=$((n+1)); [ $n -gt 500 ] && exit 3; sleep 0.02; done",
                  f"{probe} || {{ sleep 0.5; {probe}; }} || exit 4",
                  f"echo '### {name}'", f"WRK_DELAY_MS={delay} " + " ".join(f"'{c}'" for c in command),
                  # SIGKILL to everything but this shell (the namespace's init): a wedged
                  # worker ignores SIGTERM, and so would its parent waiting for it.
                  "kill -KILL -1 2>/dev/null", "wait 2>/dev/null"]
    return "\n".join(lines + ["true"]) + "\n"


def run_openssl(data: Data, args, half_connections: int, want: set[str] | None = None) -> dict[str, Run]:
    port = 9000 + secrets.randbelow(1000)  # its own network namespace: any port is free
    url = f"http://127.0.0.1:{port}/"
    plan = [
        ("cached keep-alive", wrk_command(url, data.work / "fixed.lua", data.fixed, seconds=args.seconds,
                                          threads=args.threads, connections=args.connections), 0),
        ("cached close", wrk_command(url, data.work / "fixed.lua", data.fixed, seconds=args.seconds,
                                     threads=args.threads, connections=args.connections, close=True), 0),
        ("live signing", wrk_command(url, data.work / "nonce.lua", data.nonce, seconds=args.seconds,
                                     threads=args.threads, connections=args.connections), 0),
        ("mix 50k", wrk_command(url, data.work / "mix.lua", data.mix, seconds=args.seconds,
                                threads=args.threads, connections=args.connections), 0),
        ("half rate", wrk_command(url, data.work / "fixed.lua", data.fixed, seconds=args.seconds,
                                  threads=args.threads, connections=half_connections), HALF_RATE_DELAY_MS),
    ]
    plan = [step for step in plan if want is None or step[0] in want]
    script = data.work / "openssl-side.sh"
    script.write_text(openssl_script(data, port, plan))
    done = subprocess.run(["unshare", "--net", "--pid", "--fork", "--kill-child", "sh", str(script)], capture_output=True, text=True,
                          timeout=len(plan) * (args.seconds + 30) + 60)
    if done.returncode:
        raise RuntimeError(f"the OpenSSL side failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    sections = re.split(r"^### (.+)$", done.stdout, flags=re.M)
    return {sections[i].strip(): parse_wrk(sections[i + 1]) for i in range(1, len(sections) - 1, 2)}


def _reap_orphans() -> None:
    """openssl -multi's children outlive their parent; as subreaper we collect them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- the report ---------------------------------------------------------------------------------

def report(ours: dict[str, Run], theirs: dict[str, Run], half_target: float, bare: dict[str, Run]) -> None:
    targets = {"cached keep-alive": ("ratio", 1.5), "cached close": ("ratio", 0.9),
               "live signing": ("rps", 15_000.0), "mix 50k": (None, None), "half rate": ("p99", 10.0),
               "saturation p99": ("p99 saturated", SATURATION_P99_MS)}
    if "cached keep-alive" in ours and "cached keep-alive" in theirs:
        ours["saturation p99"], theirs["saturation p99"] = ours["cached keep-alive"], theirs["cached keep-alive"]
    print("\nOCSP responder vs openssl ocsp -multi 2 (EC P-256 responder key, wrk on 127.0.0.1)")
    header = (f"{'scenario':<19}{'ours req/s':>12}{'openssl req/s':>15}{'ratio':>7}{'ours p50/p99 ms':>17}"
              f"{'openssl p50/p99 ms':>20}{'ok':>7}  target")
    print(header)
    print("-" * len(header))
    for name, (kind, goal) in targets.items():
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            print(f"{name:<19} (not measured)")
            continue
        ratio = a.rps / b.rps if b.rps else float("nan")
        verdict = ""
        if kind == "ratio":
            verdict = f">= {goal}x: {'met' if ratio >= goal else 'NOT met'}"
        elif kind == "rps":
            verdict = f">= {goal:,.0f}/s: {'met' if a.rps >= goal else 'NOT met'}"
        elif kind == "p99":
            verdict = f"p99 < {goal:.0f} ms at {a.rps:,.0f}/s (aimed {half_target:,.0f}): " \
                      f"{'met' if a.p99_ms < goal else 'NOT met'}"
        elif kind == "p99 saturated":
            verdict = f"p99 <= {goal:.0f} ms at saturation (the keep-alive run): " \
                      f"{'met' if a.p99_ms <= goal else 'NOT met'}"
        ok = f"{a.ok * 100:.1f}%" if a.ok is not None else "-"
        print(f"{name:<19}{a.rps:>12,.0f}{b.rps:>15,.0f}{ratio:>7.2f}{a.p50_ms:>8.2f}/{a.p99_ms:<8.2f}"
              f"{b.p50_ms:>11.2f}/{b.p99_ms:<8.2f}{ok:>7}  {verdict}")
        for side, run in (("ours", a), ("openssl", b)):
            if run.errors:
                print(f"{'':<19}{side}: {run.errors}")
    for name, run in bare.items():
        print(f"{name:<19}{run.rps:>12,.0f}{'':>15}{'':>7}{run.p50_ms:>8.2f}/{run.p99_ms:<8.2f}{'':>20}{'':>7}  "
              "context: a bare aiohttp handler returning fixed bytes, 2 processes")


def report_presigned(fill_s: float, filled: int, changed) -> None:
    """The pre-signed answers: the first fill, and what a burst of state changes cost."""
    print(f"\nPre-signed answers: {filled:,} stored ({CERTIFICATES:,} certificates x {PRESIGN_HASHES} hashes) "
          f"{fill_s:.1f} s after the service answered its first request ({filled / fill_s if fill_s else 0:,.0f}/s "
          "by the one elected presigner, while serving)")
    if changed is None:
        return
    run, sources = changed
    answered = sum(sources.values())
    verdict = "met" if sources["live"] == 0 else "NOT met"
    print(f"after a state change ({CHANGED} suspended at once, then asked about): {run.rps:,.0f} req/s, p50/p99 "
          f"{run.p50_ms:.2f}/{run.p99_ms:.2f} ms, revoked {run.ok * 100 if run.ok is not None else float('nan'):.1f}%;"
          f" answers presigned {sources['presigned']:,.0f}, cache {sources['cache']:,.0f}, "
          f"signed on the request path {sources['live']:,.0f} of {answered:,.0f}  target 0: {verdict}")


def report_stream(ours: dict[str, Run]) -> None:
    """The second table: did the live stream deliver the whole run, and how late."""
    runs = {name: run.stream for name, run in ours.items() if run.stream is not None}
    if not runs:
        return
    print("\nThe OCSP log's live stream during our runs (one SSE reader, GET /v1/log/stream, national token)")
    header = (f"{'scenario':<19}{'logged':>9}{'streamed':>10}{'missing':>9}{'dup':>5}{'reconn':>8}"
              f"{'lag p50/p99/max ms':>24}{'tail s':>8}{'reader cpu s':>14}  verdict")
    print(header)
    print("-" * len(header))
    for name, t in runs.items():
        missing = t.recorded - t.delivered
        verdict = "every entry delivered" if missing == 0 and t.duplicates == 0 else "NOT complete"
        lag = f"{t.lag(0.5):.0f}/{t.lag(0.99):.0f}/{max(t.lags_ms, default=float('nan')):.0f}"
        print(f"{name:<19}{t.recorded:>9,}{t.delivered:>10,}{missing:>9,}{t.duplicates:>5}{t.reconnects:>8}"
              f"{lag:>24}{t.tail_s:>8.2f}{t.reader_cpu_s:>14.1f}  {verdict}")
        if t.errors:
            print(f"{'':<19}stream: {'; '.join(sorted(set(t.errors)))[:300]}")
    print("logged: entries the log table holds for the run; streamed: those the reader received (ids in the "
          "run's span);\nlag: arrival in the reader minus the entry's 'at' (answer time); tail: from wrk's end "
          "until the run's last entry arrived; reader cpu: the bench process's CPU seconds\nwhile "
          "reading (the reader shares the cores with wrk and the service: without --stream, throughput "
          "is measured without it).")


async def main(args) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    work = Path(tempfile.mkdtemp(prefix="siui-bench-ocsp-"))
    data = make_data(work)
    url = await infra.create_database("siui_bench")
    exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
    service = None
    try:
        await load_database(url, data)
        await infra.declare_exchange(exchange)  # as the set-up does: services may not
        service = await start_service(url, exchange, data)
        port = service.port
        fill_s, filled = await presigned_filled(url, CERTIFICATES * PRESIGN_HASHES)
        want = set(args.only.split(",")) if args.only else None

        def wanted(name: str) -> bool:
            return want is None or name in want

        ours: dict[str, Run] = {}
        if wanted("cached keep-alive"):
            ours["cached keep-alive"] = await run_ours(url, port, data, "fixed", args, stream=True)
        if wanted("cached close"):
            ours["cached close"] = await run_ours(url, port, data, "fixed", args, close=True, stream=True)
        if wanted("live signing"):
            ours["live signing"] = await run_ours(url, port, data, "nonce", args, stream=True)
        if wanted("mix 50k"):
            await run_ours(url, port, data, "mix", args, seconds=max(3, args.seconds // 2))  # warm the cache
            ours["mix 50k"] = await run_ours(url, port, data, "mix", args, stream=True)
        half_target = ours["cached keep-alive"].rps / 2 if "cached keep-alive" in ours else 10_000.0
        half_connections = max(1, round(half_target * HALF_RATE_DELAY_MS / 1000))
        if wanted("half rate"):
            ours["half rate"] = await run_ours(url, port, data, "fixed", args, connections=half_connections,
                                               delay=HALF_RATE_DELAY_MS, stream=True)
        changed = None
        if wanted("state change"):
            before = await answer_sources(port, data)
            await suspend(url, exchange, data.changed_serials)
            run = await run_ours(url, port, data, "changed", args, seconds=max(3, args.seconds // 2), expect="revoked")
            after = await answer_sources(port, data)
            changed = (run, {k: after.get(k, 0) - before.get(k, 0) for k in ("presigned", "cache", "live")})
        await asyncio.to_thread(service.stop)  # the rest runs without our service taking CPU
        theirs = await asyncio.to_thread(run_openssl, data, args, half_connections, want)
        bare = await run_bare(data, args) if wanted("bare") else {}
        report(ours, theirs, half_target, bare)
        report_presigned(fill_s, filled, changed)
        report_stream(ours)
        print(f"\nwrk: {args.threads} threads, {args.connections} connections, {args.seconds} s per run; "
              f"half rate: {half_connections} connections with a {HALF_RATE_DELAY_MS} ms delay after each answer "
              "(closed loop: wrk2 is not packaged). 'ok': share of our answers during the run that the OCSP log recorded as good\n(a log shorter than wrk's count is flagged).")
    finally:
        if service is not None:
            service.stop()
        await infra.drop_database(url)
        await infra.delete_exchange(exchange)
        _reap_orphans()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare-server"]:
        bare_server(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios to run (cached keep-alive, cached close, live signing, "
                             "mix 50k, half rate, state change, bare); default all")
    parser.add_argument("--stream", action="store_true",
                        help="hold the log's live stream open during our runs and report its delivery "
                             "(the reader shares the two cores, so throughput is lower)")
    asyncio.run(main(parser.parse_args()))
