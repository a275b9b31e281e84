"""services.ocsp.responder.presigned and the answer chain's use of it: the shared bytes are
served only for their own state and signer, never from their nextUpdate (less the
margin) on, nor past the signer's notAfter; a request finding the old state's answer
waits for the new one, and signs its own only when it does not come."""
from __future__ import annotations

import asyncio
import gc
from datetime import timedelta

import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from services.ocsp.responder.answering import Pending, Responder, SigningQueue
from services.ocsp.responder.presigned import (
    DER, ETAG, GOOD, NEXT_UPDATE, PresignedStore, canonical_cert_id, due, sign_answer, state_of,
)
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.responses import ResponderIdentity
from tests.support.clock import FrozenClock
from tests.support.pki import TestPki

PKI = TestPki.current()
NOW = PKI.now.replace(microsecond=0)
HOUR = timedelta(hours=1)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world():
    registry = Registry()
    ca, leaf = PKI.issuing.cert, PKI.good.cert
    registry.add_issuer("ca", ca.public_bytes(serialization.Encoding.DER))
    record = registry.upsert_certificate("ca", leaf.serial_number, certificate_id="c", username="u", cas="B")
    identity = ResponderIdentity(PKI.responder.cert, PKI.responder.key)
    clock, store = FrozenClock(NOW), PresignedStore(margin=timedelta(minutes=5))
    responder = Responder(registry, identity, SigningQueue(100, 8), ResponseCache(), HOUR, clock,
                          presigned=store, presign_wait=0.05, monotonic=Ticks())
    request = (ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1()).build()
               .public_bytes(serialization.Encoding.DER))

    def presign(at=NOW, signer=identity):
        entry = sign_answer(signer, registry.certificate("ca", leaf.serial_number),
                            canonical_cert_id("sha1", registry.hashes_of("ca"), leaf.serial_number), at, HOUR)
        store.put("ca", leaf.serial_number, "sha1", entry)
        return entry

    return type("World", (), dict(registry=registry, record=record, identity=identity, clock=clock, store=store,
                                  responder=responder, request=request, presign=staticmethod(presign),
                                  serial=leaf.serial_number))


def test_the_canonical_cert_id_is_what_asn1crypto_and_cryptography_encode():
    for algorithm, size in (("sha1", 20), ("sha256", 32), ("sha512", 64)):
        hashes_ = {algorithm: (b"\x01" * size, b"\x02" * size)}
        for serial in (0, 1, 127, 128, 255, 2 ** 63, 2 ** 159 - 1):
            expected = asn1_ocsp.CertId({"hash_algorithm": {"algorithm": algorithm, "parameters": core.Null()},
                                         "issuer_name_hash": b"\x01" * size, "issuer_key_hash": b"\x02" * size,
                                         "serial_number": serial}).dump()
            assert canonical_cert_id(algorithm, hashes_, serial).der == expected


async def test_served_byte_for_byte_with_its_etag(world):
    entry = world.presign()
    result = await world.responder.respond(world.request)
    assert result.source == "presigned" and result.der is entry[DER] and result.etag == entry[ETAG]
    assert ocsp.load_der_ocsp_response(result.der).certificate_status == ocsp.OCSPCertStatus.GOOD


async def test_never_served_from_its_next_update_less_the_margin(world):
    entry = world.presign()
    world.clock.advance(minutes=54, seconds=59)
    assert (await world.responder.respond(world.request)).der is entry[DER]
    world.clock.advance(seconds=1)  # nextUpdate - 5 min: no longer handed out
    late = await world.responder.respond(world.request)
    assert late.der != entry[DER] and late.source == "live" and late.produced_at == world.clock.now
    world.clock.advance(hours=2)  # long expired: still never the old bytes
    assert (await world.responder.respond(world.request)).der not in (entry[DER], late.der)


async def test_never_served_past_the_signer_not_after(world):
    # Signed 30 minutes before the signer's notAfter: nextUpdate is clamped to it.
    not_after = world.identity.not_after
    world.clock.now = not_after - timedelta(minutes=30)
    entry = world.presign(at=world.clock.now)
    assert entry[NEXT_UPDATE] == not_after
    assert (await world.responder.respond(world.request)).der is entry[DER]
    world.clock.now = not_after - timedelta(minutes=5)
    assert (await world.responder.respond(world.request)).der != entry[DER]
    world.clock.now = not_after
    assert (await world.responder.respond(world.request)).status == "unauthorized"


async def test_another_signer_is_not_served(world):
    entry = world.presign()
    delegate = ResponderIdentity(PKI.ocsp_signer.cert, PKI.ocsp_signer.key)
    world.registry.set_signer("ca", delegate)
    outcome = world.responder.answer(world.request)
    assert isinstance(outcome, Pending)  # the signer changed: the presigner re-signs, the request waits
    new = world.presign(signer=delegate)
    result = await outcome.wait()
    assert result.der is new[DER] and result.der != entry[DER]


async def test_a_new_state_waits_for_its_answer_instead_of_signing(world):
    world.presign()
    world.registry.upsert_certificate("ca", world.serial, certificate_id="c", username="u", cas="B",
                                      suspended=True, suspended_at=NOW)
    outcome = world.responder.answer(world.request)
    assert isinstance(outcome, Pending)
    held = world.presign()  # the presigner's answer arrives
    result = await outcome.wait()
    assert result.source == "presigned" and result.der is held[DER]
    assert ocsp.load_der_ocsp_response(result.der).revocation_reason.name == "certificate_hold"


async def test_a_new_state_signs_its_own_when_the_presigner_is_late(world):
    old = world.presign()
    world.registry.upsert_certificate("ca", world.serial, certificate_id="c", username="u", cas="B",
                                      suspended=True, suspended_at=NOW)
    result = await asyncio.wait_for(world.responder.respond(world.request), 5)  # presign_wait passes
    assert result.source == "live" and result.der != old[DER]
    assert ocsp.load_der_ocsp_response(result.der).certificate_status == ocsp.OCSPCertStatus.REVOKED
    # Long after the change the presigner is taken to be away: no more waiting at all.
    world.responder.monotonic.now += 60
    assert (await world.responder.respond(world.request)).source == "cache"


async def test_a_client_gone_while_waiting_leaves_no_waiter(world):
    world.presign()
    world.registry.upsert_certificate("ca", world.serial, certificate_id="c", username="u", cas="B",
                                      suspended=True, suspended_at=NOW)
    outcome = world.responder.answer(world.request)
    assert world.store.waiting == 1
    outcome.future.cancel()
    await asyncio.sleep(0)
    assert world.store.waiting == 0


def test_the_store_holds_what_the_collector_does_not_walk(world):
    # Plain tuples of atoms: untracked after one collection, so never walked again.
    world.presign()
    gc.collect()
    entry = world.store.get("ca", world.serial, "sha1")
    assert not gc.is_tracked(entry)


def test_due_when_missing_changed_or_half_its_life_gone(world):
    entry = world.presign()
    signer = world.identity.key_hash
    assert due(None, GOOD, signer, NOW)
    assert not due(entry, GOOD, signer, NOW + timedelta(minutes=29))
    assert due(entry, GOOD, signer, NOW + timedelta(minutes=30))
    assert due(entry, "revoked 1 certificate_hold", signer, NOW)
    assert due(entry, GOOD, b"\x00" * 20, NOW)


def test_state_text_follows_the_answer(world):
    assert state_of(world.record) == GOOD
    held = world.registry.upsert_certificate("ca", world.serial, certificate_id="c", username="u", cas="B",
                                             suspended=True, suspended_at=NOW + timedelta(microseconds=5))
    assert state_of(held) == f"revoked {int(NOW.timestamp())} certificate_hold"
