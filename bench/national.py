"""Benchmark: the OCSP responder at national scale (issue 14's "national scale" figures).

    .venv/bin/python -m bench.national [--certificates 1000000] [--houses 43] [--refresh-seconds 120]

A benchmark, not a test: it prints figures beside their targets and says which are met.

The data: a scratch database of its own (never the deployment's), the ocsp schema
migrated, then, with COPY, ``--certificates`` registered certificates spread over the
first ``--houses`` houses of ``shared.houses.HOUSES`` (CAS-AB ... OPSNAJ), issued by a few
authorities as the real data is (the dev PKI's demo issuer and two more CAs made here;
the certificates split 60/30/10 among them), each with its holder (what the online
channel reads at start), a provider CUI, validity times spread over two years, ~1 %
suspended and ~0.3 % revoked. Then the responder's own pre-signed answers for every
certificate and every hash of ``SIUI_OCSP_PRESIGN_HASHES`` (sha1, sha256), signed here
with the same code the presigner uses (``presigned.sign_answer``) and the responder key
of the run's dev PKI, produced 65 % of the validity ago: servable at start, and every
one of them due for its refresh (at half its life, plus up to an eighth), so the
presigner's first sweep after the start refreshes every answer once.

The service: the real process, ``python -m services.ocsp`` with SIUI_OCSP_WORKERS=1 (the
process is the worker), started three times against the scratch database:

1. *empty*: the issuers only (no certificate, no pre-signed answer): the baseline RSS;
2. *registry*: the N certificates, pre-signing off (``SIUI_OCSP_PRESIGN_HASHES=``): what
   the registry costs per certificate;
3. *national*: the N certificates and their 2N pre-signed answers, pre-signing on, as
   deployed. Measured: process start → ``/readyz`` 200 → the first pre-signed answer
   served (an OCSP request for a random certificate, answered with the pre-signed
   bytes: its producedAt is the table's, not now); RSS after the load (and the peak,
   VmHWM, which a memory limit must allow); the service's own ``ocsp_start_gc`` log
   line (GC collections and their longest pause during the load); then for
   ``--refresh-seconds`` the presigner's refresh of every answer (rows of the table
   re-signed since the start, polled), extrapolated to all 2N when not finished, against
   the window the answers leave (refreshes fall due at half the validity; an answer
   stops being served ``margin`` before its nextUpdate).

``--profile FILE`` runs the national start under cProfile (FILE.pstats), for finding
where the start's time goes (its figures are then slower than without).
Run it under ``flock /work/notes/bench.lock`` on a shared machine.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from bench.ocsp_service import OcspService
from deploy.devpki import ensure_dev_pki
from shared.holders import Holder, holder_key
from shared.houses import HOUSES
from tests.support import infra

VALIDITY = 3600            # SIUI_OCSP_VALIDITY's default: the answers' life
MARGIN = 300               # PresignedStore's margin: not served from next_update - margin
PRESIGN_HASHES = ("sha1", "sha256")
READY_TIMEOUT = 600.0
AGE = 0.65                 # the pre-signed answers' age at the start, in validities: all due

TARGET_START_S = 30.0      # for 1,000,000 certificates
TARGET_BYTES_PER_CERT = 1024


# -- the data ------------------------------------------------------------------------------------

@dataclass
class IssuerData:
    issuer_id: uuid.UUID
    certificate: x509.Certificate
    share: float

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def make_ca(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Qualified CA")])
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))


def make_issuers(pki) -> list[IssuerData]:
    demo = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    return [IssuerData(uuid.uuid4(), demo, 0.6), IssuerData(uuid.uuid4(), make_ca("Bench Trust Services"), 0.3),
            IssuerData(uuid.uuid4(), make_ca("Bench Certificare"), 0.1)]


@dataclass
class Certificates:
    """The registered certificates as COPY rows, and what the pre-signing needs of them."""

    rows: list[tuple] = field(default_factory=list)
    #: (issuer index, serial, state) per certificate; state: 'good', or (kind, time).
    signing: list[tuple] = field(default_factory=list)


def make_certificates(n: int, houses: int, issuers: list[IssuerData], seed: int = 14) -> Certificates:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    codes = [h.code for h in HOUSES[:houses]]
    weights = [i.share for i in issuers]
    out = Certificates()
    for k in range(n):
        house = codes[k % len(codes)]
        cui = str(10_000_000 + k)
        username = f"{cui}_CAS-{house}"
        which = rng.choices(range(len(issuers)), weights)[0]
        issuer = issuers[which]
        serial = rng.getrandbits(126) | (1 << 126)
        not_before = now - timedelta(seconds=rng.randrange(0, 700 * 86400))
        not_after = not_before + timedelta(days=730)
        changed_at = not_before + timedelta(seconds=rng.randrange(0, 3600))
        roll = rng.random()
        status, suspended_at, revoked_at, reason = "active", None, None, None
        if roll < 0.01:
            status, suspended_at = "suspended", changed_at
        elif roll < 0.013:
            status, revoked_at, reason = "revoked", changed_at, rng.choice(("key_compromise", "superseded",
                                                                             "cessation_of_operation"))
        holder = {"subject": f"2.5.4.6=RO;2.5.4.10=PROVIDER {cui} SRL;2.5.4.97=VATRO-{cui};"
                             f"2.5.4.3=Medic {k:07d};2.5.4.5=PNORO-{1800101000000 + k}",
                  "serial_number": f"pnoro-{1800101000000 + k}", "organization_identifier": f"vatro-{cui}"}
        out.rows.append((issuer.issuer_id, Decimal(serial), uuid.UUID(int=rng.getrandbits(128), version=4), username,
                         house, cui, status, suspended_at, revoked_at, reason, not_before, not_after, changed_at,
                         json.dumps(holder), holder_key(Holder.from_json(holder))))
        if status == "suspended":
            state = ("suspended", suspended_at, None)
        elif status == "revoked":
            state = ("revoked", revoked_at, reason)
        else:
            state = None
        out.signing.append((which, serial, state))
    return out


CERTIFICATE_COLUMNS = ["issuer_id", "serial", "certificate_id", "username", "cas", "provider_cui", "status",
                       "suspended_at", "revoked_at", "revocation_reason", "not_before", "not_after", "changed_at",
                       "holder", "holder_key"]


async def load_issuers(url: str, issuers: list[IssuerData]) -> None:
    await infra.migrate_schema(url, "ocsp", "services.ocsp")
    conn = await asyncpg.connect(infra.owner_url(url), server_settings={"search_path": "ocsp"})
    try:
        now = datetime.now(timezone.utc)
        for issuer in issuers:
            await conn.execute("insert into issuers (id, subject_dn, certificate_der, event_at) values ($1, $2, $3, $4)",
                               issuer.issuer_id, issuer.certificate.subject.rfc4514_string(), issuer.der, now)
    finally:
        await conn.close()


async def copy_rows(url: str, table: str, columns: list[str], rows: list[tuple], chunk: int = 100_000) -> float:
    started = time.monotonic()
    conn = await asyncpg.connect(infra.owner_url(url), server_settings={"search_path": "ocsp"})
    try:
        for start in range(0, len(rows), chunk):
            await conn.copy_records_to_table(table, columns=columns, records=rows[start:start + chunk])
        await conn.execute(f"analyze {table}")
    finally:
        await conn.close()
    return time.monotonic() - started


# -- pre-signing, as the presigner does it (in two processes: the machine's two cores) ----------

_SIGNER = {}


def _signer_init(cert_path: str, key_path: str, issuer_ders: list[bytes]) -> None:
    from services.ocsp.responder.registry import issuer_hashes
    from services.ocsp.responder.responses import ResponderIdentity
    _SIGNER["identity"] = ResponderIdentity.from_pem(Path(cert_path).read_bytes(), Path(key_path).read_bytes())
    _SIGNER["hashes"] = [issuer_hashes(der) for der in issuer_ders]


def _sign_part(issuer_ids: list[str], part: list[tuple], produced_at: datetime) -> list[tuple]:
    from services.ocsp.responder.presigned import canonical_cert_id, sign_answer
    from services.ocsp.responder.registry import CertificateRecord
    identity, hashes = _SIGNER["identity"], _SIGNER["hashes"]
    rows = []
    for which, serial, state in part:
        if state is None:
            record = CertificateRecord(issuer_ids[which], serial, "", "", "")
        elif state[0] == "suspended":
            record = CertificateRecord(issuer_ids[which], serial, "", "", "", suspended=True, suspended_at=state[1])
        else:
            record = CertificateRecord(issuer_ids[which], serial, "", "", "", status="revoked", revoked_at=state[1],
                                       revocation_reason=state[2])
        for algorithm in PRESIGN_HASHES:
            entry = sign_answer(identity, record, canonical_cert_id(algorithm, hashes[which], serial), produced_at,
                                timedelta(seconds=VALIDITY))
            rows.append((uuid.UUID(issuer_ids[which]), Decimal(serial), algorithm, entry[0], entry[1], entry[2],
                         entry[3], entry[4]))
    return rows


def presign(pki, issuers: list[IssuerData], certificates: Certificates, produced_at: datetime,
            workers: int = 2) -> list[tuple]:
    issuer_ids = [str(i.issuer_id) for i in issuers]
    step = 20_000
    parts = [certificates.signing[s:s + step] for s in range(0, len(certificates.signing), step)]
    rows: list[tuple] = []
    with ProcessPoolExecutor(workers, initializer=_signer_init,
                             initargs=(str(pki.responder_cert), str(pki.responder_key), [i.der for i in issuers])) as pool:
        for done in pool.map(_sign_part, [issuer_ids] * len(parts), parts, [produced_at] * len(parts)):
            rows.extend(done)
    return rows


PRESIGNED_COLUMNS = ["issuer_id", "serial", "hash_algorithm", "der", "state", "signer_key_hash", "produced_at",
                     "next_update"]


# -- the service ------------------------------------------------------------------------------------

@dataclass
class Start:
    name: str
    ready_s: float = 0.0
    first_answer_s: float = 0.0
    rss: int = 0           # bytes, after the load
    hwm: int = 0           # peak RSS during the start
    log: list[dict] = field(default_factory=list)
    answer_produced_at: datetime | None = None
    presigned_answer: bool = False
    all_loaded_s: float = 0.0

    def event(self, name: str) -> dict | None:
        return next((e for e in self.log if e.get("event") == name), None)


def proc_status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def ocsp_request(issuer: IssuerData, serial: int) -> bytes:
    from services.ocsp.responder.registry import issuer_hashes
    name_hash, key_hash = issuer_hashes(issuer.der)["sha1"]
    return (ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1()).build()
            .public_bytes(serialization.Encoding.DER))


class Service:
    """One start of the responder and what it measured (``Start``)."""

    def __init__(self, url: str, exchange: str, pki, work: Path, name: str, *, presign: bool,
                 profile: str | None = None):
        # blank is the default: "," names no hash, so no pre-signing
        self.ocsp = OcspService(url, exchange, pki.data_dir, work / f"ocsp-{name}.log", workers=1,
                                env={"SIUI_OCSP_PRESIGN_HASHES": ",".join(PRESIGN_HASHES) if presign else ","})
        self.name = name
        self.profile = profile

    def logged(self, event: str) -> bool:
        return f'"event": "{event}"' in self.ocsp.log_path.read_text(errors="replace")

    async def start(self, probe: bytes | None, stored=None, wait_for_event: str | None = None) -> Start:
        result = Start(self.name)
        self.ocsp.start(self.profile)
        result.ready_s = await self.ocsp.wait(self.ocsp.readyz, timeout=READY_TIMEOUT, interval=0.05)
        if probe is not None:
            async def presigned(session) -> bool:
                # Until the answer is the stored pre-signed one (the table's bytes, the
                # loaded ones or the presigner's refresh of them), not one signed live.
                async with session.post(f"{self.ocsp.url}/", data=probe,
                                        headers={"Content-Type": "application/ocsp-request"}) as response:
                    der = await response.read()
                if stored is not None and der not in await stored():
                    return False
                answer = ocsp.load_der_ocsp_response(der)
                if answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
                    result.answer_produced_at = answer.produced_at_utc
                    result.presigned_answer = stored is not None
                return True

            result.first_answer_s = await self.ocsp.wait(presigned, timeout=READY_TIMEOUT, interval=0.05)
        if wait_for_event:
            async def loaded(session) -> bool:
                return self.logged(wait_for_event)

            result.all_loaded_s = await self.ocsp.wait(loaded, timeout=READY_TIMEOUT, interval=0.2)
        await asyncio.sleep(1.0)  # the loop settles (the presigner's election, first sweep slice)
        status = proc_status(self.ocsp.process.pid)
        result.rss, result.hwm = status["VmRSS"], status["VmHWM"]
        return result

    async def stop(self) -> None:
        await asyncio.to_thread(self.ocsp.stop, signal.SIGTERM, 60)


def read_log(path: Path, result: Start) -> None:
    """The service's JSON log lines into ``result.log``."""
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                result.log.append(entry)


def stored_answers(url: str, issuer: IssuerData, serial: int):
    async def read() -> list[bytes]:
        conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
        try:
            return [bytes(r["der"]) for r in await conn.fetch(
                "select der from presigned_answers where issuer_id = $1 and serial = $2 and hash_algorithm = 'sha1'",
                issuer.issuer_id, Decimal(serial))]
        finally:
            await conn.close()
    return read


async def refreshed_since(url: str, since: datetime) -> int:
    conn = await asyncpg.connect(url, server_settings={"search_path": "ocsp"})
    try:
        return await conn.fetchval("select count(*) from presigned_answers where produced_at >= $1", since)
    finally:
        await conn.close()


async def watch_refresh(url: str, since: datetime, total: int, seconds: float) -> tuple[float, int, float]:
    """Poll the table until every answer is re-signed or ``seconds`` pass; (elapsed, done, rate/s
    over the watch after the first re-signed answer)."""
    started = time.monotonic()
    first_at, done = None, 0
    while time.monotonic() - started < seconds:
        done = await refreshed_since(url, since)
        now = time.monotonic()
        if done and first_at is None:
            first_at, first_done = now, done
        if done >= total:
            break
        await asyncio.sleep(2.0)
    elapsed = time.monotonic() - started
    rate = (done - first_done) / (time.monotonic() - first_at) if first_at and time.monotonic() > first_at + 1 \
        else 0.0
    return elapsed, done, rate


# -- the report -------------------------------------------------------------------------------------

def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def report(args, empty: Start, registry: Start, national: Start, refresh: tuple[float, int, float], load: str) -> None:
    n = args.certificates
    answers = n * len(PRESIGN_HASHES)
    per_cert = (registry.rss - empty.rss) / n
    per_answer = (national.rss - registry.rss) / answers
    per_cert_all = (national.rss - empty.rss) / n
    # The target is for 1,000,000 certificates; another N is held to it scaled (the
    # empty start's fixed part added), and its start is extrapolated to 1,000,000.
    start_target = empty.ready_s + (TARGET_START_S - empty.ready_s) * n / 1_000_000
    extrapolated = empty.ready_s + (national.ready_s - empty.ready_s) * 1_000_000 / n
    gc_line = national.event("ocsp_start_gc") or {}
    loaded = national.event("ocsp_registry_loaded") or {}
    presigned = national.event("ocsp_presigned_loaded") or {}
    elapsed, done, rate = refresh
    window = VALIDITY * (1 - 0.625) - MARGIN   # from the last due moment to the end of serving
    refresh_all = answers / rate if rate else float("inf")
    if done >= answers:
        refresh_all = elapsed
    served_presigned = national.answer_produced_at is not None and \
        national.answer_produced_at < datetime.now(timezone.utc) - timedelta(seconds=VALIDITY / 2)
    rows = [
        ("start → /readyz (national)", f"{national.ready_s:.1f} s"
         + ("" if n == 1_000_000 else f" (extrapolated to 1M: {extrapolated:.0f} s)"), f"≤ {start_target:.1f} s",
         verdict(national.ready_s <= start_target)),
        ("start → first pre-signed answer served", f"{national.first_answer_s:.1f} s"
         + ("" if served_presigned else " (NOT the pre-signed bytes)"), f"≤ {start_target:.1f} s",
         verdict(served_presigned and national.first_answer_s <= start_target)),
        ("start → /readyz (registry only, pre-signing off)", f"{registry.ready_s:.1f} s", "", ""),
        ("start → /readyz (empty)", f"{empty.ready_s:.1f} s", "", ""),
        ("RSS empty / registry / national", f"{mb(empty.rss)} / {mb(registry.rss)} / {mb(national.rss)}", "", ""),
        ("peak RSS during the national start (VmHWM)", mb(national.hwm), "", ""),
        ("registry: bytes per certificate", f"{per_cert:,.0f} B", f"≤ {TARGET_BYTES_PER_CERT} B",
         verdict(per_cert <= TARGET_BYTES_PER_CERT)),
        (f"pre-signed answers: bytes per answer ({len(PRESIGN_HASHES)} per certificate)", f"{per_answer:,.0f} B",
         "say", ""),
        ("everything per certificate (registry + its answers)", f"{per_cert_all:,.0f} B", "", ""),
        ("GC during the load: collections, longest pause, total",
         f"{gc_line.get('collections', '?')}, {gc_line.get('max_pause_ms', '?')} ms, {gc_line.get('total_ms', '?')} ms",
         "≈ 0", verdict(gc_line.get("max_pause_ms", 1e9) < 50) if gc_line else "n/a"),
        ("presigner: refresh of every answer once",
         f"{refresh_all:,.0f} s ({done:,} of {answers:,} in {elapsed:.0f} s, {rate:,.0f}/s"
         + ("" if done >= answers else ", extrapolated") + ")",
         f"well within {window:,.0f} s", verdict(refresh_all <= window / 2)),
    ]
    width = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print(f"\nbench.national: {n:,} certificates over {args.houses} houses, 3 issuers, "
          f"{answers:,} pre-signed answers; one worker (SIUI_OCSP_WORKERS=1); load before: {load}")
    print(f"{'what':<{width[0]}}  {'figure':<{width[1]}}  {'target':<{width[2]}}  met?")
    for row in rows:
        print(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]:<{width[2]}}  {row[3]}")
    if loaded:
        print(f"\nthe service's log: registry loaded ({loaded.get('certificates')} certificates) "
              f"{loaded.get('seconds', '?')} s after its start of load; pre-signed answers loaded: "
              f"{presigned.get('answers')} ({mb(presigned.get('bytes', 0))} of DER) in {presigned.get('seconds', '?')} s")
    print(f"the refresh window: answers fall due at 50-62.5 % of their {VALIDITY} s life and are served until "
          f"{MARGIN} s before it ends, so the last due answer has {window:,.0f} s to be re-signed; "
          "'MET' asks the whole refresh in half of that.")


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="siui-bench-national-"))
    pki = ensure_dev_pki(work / "data")
    infra.install_broker_secrets(pki.data_dir)
    issuers = make_issuers(pki)
    url = await infra.create_database("siui_bench_national")
    exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
    service = None
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        await infra.declare_exchange(exchange)
        await load_issuers(url, issuers)
        t = time.monotonic()
        certificates = make_certificates(args.certificates, args.houses, issuers)
        print(f"made {args.certificates:,} certificates in {time.monotonic() - t:.1f} s", flush=True)
        probe_cert = certificates.signing[0]  # COPYed first: the first page the service reads
        probe = ocsp_request(issuers[probe_cert[0]], probe_cert[1])

        service = Service(url, exchange, pki, work, "empty", presign=True)
        empty = await service.start(None)
        await service.stop()
        print(f"empty start: {empty.ready_s:.1f} s, RSS {mb(empty.rss)}", flush=True)

        copied = await copy_rows(url, "certificates", CERTIFICATE_COLUMNS, certificates.rows)
        print(f"COPY certificates: {copied:.1f} s", flush=True)
        certificates.rows.clear()

        service = Service(url, exchange, pki, work, "registry", presign=False)
        registry = await service.start(probe)
        await service.stop()
        print(f"registry start: {registry.ready_s:.1f} s, RSS {mb(registry.rss)}", flush=True)

        t = time.monotonic()
        produced_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=VALIDITY * AGE)
        rows = await asyncio.to_thread(presign, pki, issuers, certificates, produced_at)
        print(f"pre-signed {len(rows):,} answers in {time.monotonic() - t:.1f} s", flush=True)
        copied = await copy_rows(url, "presigned_answers", PRESIGNED_COLUMNS, rows)
        print(f"COPY presigned_answers: {copied:.1f} s", flush=True)
        del rows

        service = Service(url, exchange, pki, work, "national", presign=True, profile=args.profile)
        since = datetime.now(timezone.utc).replace(microsecond=0)
        national = await service.start(probe, stored_answers(url, issuers[probe_cert[0]], probe_cert[1]),
                                       "ocsp_presigned_loaded")
        print(f"national start: {national.ready_s:.1f} s, RSS {mb(national.rss)}", flush=True)
        refresh = await watch_refresh(url, since, args.certificates * len(PRESIGN_HASHES), args.refresh_seconds)
        await service.stop()
        for name, start in (("empty", empty), ("registry", registry), ("national", national)):
            read_log(work / f"ocsp-{name}.log", start)
        report(args, empty, registry, national, refresh, load)
        print(f"\nwork directory (logs): {work}")
    finally:
        if service is not None:
            await service.stop()
        await infra.drop_database(url)
        await infra.delete_exchange(exchange)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--houses", type=int, default=43, choices=range(1, len(HOUSES) + 1), metavar="1-43")
    parser.add_argument("--refresh-seconds", type=float, default=120.0,
                        help="how long to watch the presigner's refresh before extrapolating")
    parser.add_argument("--profile", default=None, help="run the national start under cProfile into this file")
    asyncio.run(main(parser.parse_args()))
