"""Benchmark: OCSP answers signed per second, the responder key in SoftHSM2 against the
key file in the process (the anchor), in the same run.

    .venv/bin/python -m bench.signing [--seconds 3] [--concurrency 64]

Two measures for each key (EC P-256, RSA 2048), one process:

* ``build_response`` in a loop: the answer's encoding and its signature, nothing else;
* ``Responder.respond`` for requests with a nonce (never cached) ``--concurrency`` at a
  time, as the service answers them: for the HSM key the signing goes to the token's
  thread through the signing queue, the event loop meanwhile free.

The token is made by ``deploy.hsm`` in a scratch data directory (removed afterwards).
A deployment runs one such process per core (SIUI_OCSP_WORKERS), each with its own
session, so the service's rate is about the workers times this one.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.devpki import ensure_dev_pki, responder_certificate
from deploy.hsm import SoftHsm, issue_certificate
from services.ocsp.responder.answering import Responder, SigningQueue
from services.ocsp.responder.codec import parse_request
from services.ocsp.responder.hsm import Pkcs11Settings, Pkcs11Token
from services.ocsp.responder.registry import Registry
from services.ocsp.responder.responses import ResponderIdentity, SingleAnswer, build_response
from tests.support.ocsp_harness import Issuer, request_der


def loop_rate(identity: ResponderIdentity, answer: SingleAnswer, seconds: float) -> float:
    """Answers/s of build_response alone (a fresh nonce each, as live signing has)."""
    now = datetime.now(timezone.utc)
    later = now + timedelta(hours=1)
    nonces = [os.urandom(16) for _ in range(256)]
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for nonce in nonces[:64]:
            build_response(identity, [answer], nonce=nonce, produced_at=now, this_update=now, next_update=later)
        count += 64
    return count / (time.perf_counter() - started)


async def responder_rate(identity: ResponderIdentity, ca: Issuer, serial: int, seconds: float,
                         concurrency: int) -> tuple[float, int]:
    """Answers/s of Responder.respond with nonces, ``concurrency`` at a time; and how many
    were not successful (there must be none)."""
    registry = Registry()
    registry.add_issuer("ca", ca.authority.der)
    registry.upsert_certificate("ca", serial, certificate_id="c", username="u", cas="B")
    responder = Responder(registry, identity, SigningQueue(10 * concurrency, 64), None, timedelta(hours=1))
    requests = [request_der(ca, serial, nonce=os.urandom(16)) for _ in range(concurrency * 4)]
    count = failed = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal count, failed
        while time.perf_counter() < deadline:
            result = await responder.respond(requests[n])
            count += 1
            failed += result.status != "successful"
            n = (n + concurrency) % len(requests)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return count / (time.perf_counter() - started), failed


def _in_process_rsa(data_dir: Path) -> ResponderIdentity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ResponderIdentity(responder_certificate(data_dir, key.public_key(), common_name="bench RSA"), key)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signing")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="siui-bench-signing-"))
    try:
        paths = ensure_dev_pki(scratch)
        hsm = SoftHsm.in_data_dir(scratch)
        certs = {label: issue_certificate(scratch, hsm, label, scratch / "pki" / f"{label}.pem",
                                          kind="rsa" if label == "rsa" else "ec") for label in ("ec", "rsa")}
        token = Pkcs11Token(Pkcs11Settings(hsm.module, hsm.token_label, hsm.pin_file))
        try:
            identities = {
                ("EC P-256", "in-process key (anchor)"): ResponderIdentity.from_pem(
                    paths.responder_cert.read_bytes(), paths.responder_key.read_bytes()),
                ("EC P-256", "SoftHSM2 (PKCS#11)"): ResponderIdentity(
                    x509.load_pem_x509_certificate(certs["ec"].read_bytes()), token.key("ec")),
                ("RSA 2048", "in-process key (anchor)"): _in_process_rsa(scratch),
                ("RSA 2048", "SoftHSM2 (PKCS#11)"): ResponderIdentity(
                    x509.load_pem_x509_certificate(certs["rsa"].read_bytes()), token.key("rsa")),
            }
            ca = Issuer.new("Bench Signing CA")
            leaf = ca.issue("bench provider")
            answer = SingleAnswer(parse_request(request_der(ca, leaf)).cert_ids[0], "good")
            rows = []
            for (algorithm, where), identity in identities.items():
                loop = loop_rate(identity, answer, args.seconds)
                served, failed = asyncio.run(responder_rate(identity, ca, leaf.serial, args.seconds,
                                                            args.concurrency))
                rows.append((algorithm, where, loop, served, failed))
        finally:
            token.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'key':<9} {'where':<26} {'build_response/s':>17} {'Responder.respond/s':>20}  failed")
    anchors = {}
    for algorithm, where, loop, served, failed in rows:
        anchors.setdefault(algorithm, (loop, served))
        base_loop, base_served = anchors[algorithm]
        ratio = "" if (loop, served) == (base_loop, base_served) else \
            f"   ({loop / base_loop:.2f}x / {served / base_served:.2f}x the anchor)"
        print(f"{algorithm:<9} {where:<26} {loop:>17,.0f} {served:>20,.0f}  {failed}{ratio}")
    if any(row[4] for row in rows):
        raise SystemExit("some answers were not successful")


if __name__ == "__main__":
    main()
