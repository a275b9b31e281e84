"""services.ocsp.answering and signers: the answer chain, load shedding, keys at rest."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from services.ocsp.responder.answering import Overloaded, Responder, SigningQueue
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.responses import ResponderIdentity
from services.ocsp.state.signers import (
    DataKeyError, check_signer, decrypt_identity, encrypt_key, load_data_key,
)
from shared import errors
from tests.support.clock import FrozenClock
from tests.support.pki import TestPki, ocsp_signer

# check_signer judges a signer's validity by the real clock.
PKI = TestPki.current()
NOW = PKI.now


@pytest.fixture(scope="module")
def world() -> SimpleNamespace:
    """The test PKI's issuing CA, its good leaf, the responder trusted by name, and the
    issuing CA's delegated signer."""
    return SimpleNamespace(ca=PKI.issuing.cert, ca_issued=PKI.issuing, leaf=PKI.good.cert,
                           responder=ResponderIdentity(PKI.responder.cert, PKI.responder.key),
                           delegate=PKI.ocsp_signer.cert, delegate_key=PKI.ocsp_signer.key)


def _request(world, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(world.leaf, world.ca, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _responder(world, *, max_pending=100, cache=True) -> Responder:
    registry = Registry()
    registry.add_issuer("ca", world.ca.public_bytes(serialization.Encoding.DER))
    registry.upsert_certificate("ca", world.leaf.serial_number, certificate_id="c", username="u", cas="B")
    return Responder(registry, world.responder, SigningQueue(max_pending, 8),
                     ResponseCache() if cache else None, timedelta(hours=1), FrozenClock(NOW))


async def test_cached_until_the_state_changes(world):
    responder = _responder(world)
    first = await responder.respond(_request(world))
    assert first.status == "successful" and first.etag
    assert (await responder.respond(_request(world))).der is first.der  # from the cache
    responder.registry.upsert_certificate("ca", world.leaf.serial_number, certificate_id="c", username="u", cas="B",
                                          suspended=True, suspended_at=NOW)
    held = await responder.respond(_request(world))
    assert ocsp.load_der_ocsp_response(held.der).revocation_reason == x509.ReasonFlags.certificate_hold


async def test_nonce_answers_are_signed_each_time(world):
    responder = _responder(world)
    one, two = [await responder.respond(_request(world, bytes([n]) * 16)) for n in (1, 2)]
    assert one.der != two.der and one.etag is None


async def test_load_is_shed_with_try_later(world):
    responder = _responder(world, max_pending=4)
    results = await asyncio.gather(*(responder.respond(_request(world, bytes([n + 1]) * 8)) for n in range(10)))
    statuses = [r.status for r in results]
    assert statuses.count("successful") == 4 and statuses.count("try_later") == 6
    assert ocsp.load_der_ocsp_response(results[-1].der).response_status == ocsp.OCSPResponseStatus.TRY_LATER
    # Once the queue drained, answers come again.
    assert (await responder.respond(_request(world, b"later"))).status == "successful"


async def test_signing_queue_refuses_beyond_its_bound_and_skips_cancelled():
    queue = SigningQueue(max_pending=2, batch=1)
    calls = []
    first = queue.submit(lambda: calls.append(1) or b"1")
    second = queue.submit(lambda: calls.append(2) or b"2")
    with pytest.raises(Overloaded):
        queue.submit(lambda: b"3")
    second.cancel()
    assert await first == b"1"
    # A job queued behind the cancelled one: once it is done, the queue has passed over it.
    third = queue.submit(lambda: calls.append(3) or b"3")
    assert await third == b"3"
    assert calls == [1, 3] and queue.pending == 0


async def test_a_failing_signer_answers_internal_error(world):
    responder = _responder(world, cache=False)
    cannot_sign = SimpleNamespace(_sign=None, executor=None, not_after=NOW + timedelta(days=1),
                                  valid_at=lambda moment: True)
    responder.registry.set_signer("ca", cannot_sign)
    result = await responder.respond(_request(world))
    assert result.status == "internal_error"
    assert ocsp.load_der_ocsp_response(result.der).response_status == ocsp.OCSPResponseStatus.INTERNAL_ERROR


async def test_unknown_issuer_and_garbage(world):
    responder = _responder(world)
    responder.registry.remove_issuer("ca")
    assert (await responder.respond(_request(world))).status == "unauthorized"
    assert (await responder.respond(b"\x30\x00")).status == "malformed"


# --- signers ------------------------------------------------------------------------------------

def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key, password: bytes | None = None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def test_signer_key_round_trip_is_bound_to_its_issuer(world):
    checked = check_signer(world.ca.public_bytes(serialization.Encoding.DER), _pem(world.delegate),
                           _key_pem(world.delegate_key))
    data_key, issuer = b"k" * 32, uuid.uuid4()
    nonce, ciphertext = encrypt_key(data_key, issuer, checked.private_key_der)
    assert checked.private_key_der not in ciphertext
    identity = decrypt_identity(data_key, issuer, checked.certificate_der, nonce, ciphertext)
    assert identity.certificate == world.delegate
    with pytest.raises(InvalidTag):  # moved to another issuer's row
        decrypt_identity(data_key, uuid.uuid4(), checked.certificate_der, nonce, ciphertext)
    with pytest.raises(InvalidTag):  # another data key
        decrypt_identity(b"x" * 32, issuer, checked.certificate_der, nonce, ciphertext)


def test_signer_refusals_name_the_field(world):
    ca_der = world.ca.public_bytes(serialization.Encoding.DER)
    expired = ocsp_signer(world.ca_issued, "Old", now=NOW, key=world.delegate_key,
                          not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)).cert
    cases = [
        (_pem(world.delegate), _key_pem(world.delegate_key, b"secret"), "private_key_pem", "encrypted"),
        (_pem(expired), _key_pem(world.delegate_key), "certificate_pem", "not valid now"),
        (_pem(world.leaf), _key_pem(world.delegate_key), "certificate_pem", "OCSPSigning"),
    ]
    for cert_pem, key_pem, field, words in cases:
        with pytest.raises(errors.Invalid) as caught:
            check_signer(ca_der, cert_pem, key_pem)
        assert words in caught.value.errors[field]


def test_data_key_file(tmp_path):
    path = tmp_path / "data-key"
    path.write_text("ab" * 32)
    assert load_data_key(path) == bytes.fromhex("ab" * 32)
    for bad in ("ab" * 16, "not hex"):
        path.write_text(bad)
        with pytest.raises(DataKeyError):
            load_data_key(path)
    with pytest.raises(DataKeyError):
        load_data_key(tmp_path / "missing")
