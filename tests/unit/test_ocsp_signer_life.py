"""The responder signer's life, without a token: the encodings an HSM key needs, nextUpdate
never past the signer's notAfter, no signing outside its validity, the switch to the next
identity (cache dropped, a signing that straddles it not served), and the start-time
rules of a rotation."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.ocsp.config import Config
from services.ocsp.responder.answering import Responder, SigningQueue
from services.ocsp.responder.hsm import Pkcs11Settings, read_pin
from services.ocsp.responder.identities import RotationError, check_rotation
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.responses import ResponderIdentity
from services.ocsp.responder.signing_keys import SignerUnavailable, digest_info, ecdsa_signature_der
from shared.config import CommonConfig, ConfigError
from tests.support.clock import FrozenClock
from tests.support.pki import TestPki, certificate, new_key, ocsp_signer

PKI = TestPki.current()
NOW = PKI.now.replace(microsecond=0)


# --- what an HSM key returns, made into what X.509 carries ------------------------------------

def test_raw_r_s_becomes_the_der_ecdsa_sig_value():
    # Leading zero octets in r and small s: DER INTEGERs are minimal and positive.
    r, s = 0x00FF << 240, 1
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der = ecdsa_signature_der(raw)
    assert decode_dss_signature(der) == (r, s)
    assert der[0] == 0x30 and der[2] == 0x02
    # A high bit set gets its 0x00 so that the INTEGER stays positive.
    high = (1 << 255) + 5
    assert decode_dss_signature(ecdsa_signature_der(high.to_bytes(32, "big") * 2)) == (high, high)
    with pytest.raises(ValueError):
        ecdsa_signature_der(b"\x01" * 63)


def test_raw_signature_of_a_real_key_verifies_once_encoded():
    key = ec.generate_private_key(ec.SECP256R1())
    data = b"tbsResponseData"
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # as CKM_ECDSA returns it
    key.public_key().verify(ecdsa_signature_der(raw), data, ec.ECDSA(hashes.SHA256()))


def test_digest_info_is_what_pkcs1_v15_signs():
    key = new_key("rsa")
    data = b"tbsResponseData"
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    # Recover the padded block with the public exponent: its tail is our DigestInfo.
    numbers = key.public_key().public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block.endswith(digest_info("sha256", hashlib.sha256(data).digest()))
    with pytest.raises(ValueError):
        digest_info("sha256", b"short")
    with pytest.raises(ValueError):
        digest_info("md5", b"\x00" * 16)


class _TokenKey:
    """An ExternalKey over an in-process key (what the HSM does, here for the identity's rules)."""

    executor = None  # set per test

    def __init__(self, key, *, fail: bool = False):
        self.key, self.fail = key, fail

    def sign_digest(self, digest: bytes, hash_name: str) -> bytes:
        if self.fail:
            raise SignerUnavailable("device away")
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
        return self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_an_external_key_must_prove_it_is_the_certificates():
    signer = PKI.responder
    identity = ResponderIdentity(signer.cert, _TokenKey(signer.key))
    assert identity.executor is None and identity.not_after == signer.cert.not_valid_after_utc
    with pytest.raises(ValueError, match="does not match"):
        ResponderIdentity(signer.cert, _TokenKey(ec.generate_private_key(ec.SECP256R1())))


# --- the answers' validity ----------------------------------------------------------------------

def _world(responder_cert, responder_key, *, clock, next_identity=None, switch_at=None):
    issuer, leaf = PKI.issuing, PKI.good
    registry = Registry()
    registry.add_issuer("ca", issuer.der)
    registry.upsert_certificate("ca", leaf.serial, certificate_id="c", username="u", cas="B")
    identity = ResponderIdentity(responder_cert, responder_key)
    responder = Responder(registry, identity, SigningQueue(100, 8), ResponseCache(), timedelta(hours=1), clock,
                          next_identity=next_identity, switch_at=switch_at)
    der = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, issuer.cert, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    return responder, der


def _short_lived(minutes: float, **kw):
    return ocsp_signer(None, PKI.name(f"Responder ending in {minutes} min"), now=NOW,
                       not_after=NOW + timedelta(minutes=minutes), **kw)


async def test_next_update_never_passes_the_signers_not_after():
    signer = _short_lived(20)
    clock = FrozenClock(NOW)
    responder, der = _world(signer.cert, signer.key, clock=clock)
    result = await responder.respond(der)
    assert result.status == "successful"
    assert result.next_update == signer.cert.not_valid_after_utc  # not now + 1 hour
    single = ocsp.load_der_ocsp_response(result.der)
    assert single.next_update_utc == signer.cert.not_valid_after_utc
    # Far from the end, the configured validity holds.
    lasting = _short_lived(600)
    responder, der = _world(lasting.cert, lasting.key, clock=clock)
    assert (await responder.respond(der)).next_update == NOW + timedelta(hours=1)


async def test_a_signer_past_its_not_after_signs_nothing():
    signer = _short_lived(20)
    clock = FrozenClock(NOW)
    responder, der = _world(signer.cert, signer.key, clock=clock)
    assert (await responder.respond(der)).status == "successful"
    clock.advance(minutes=25)
    result = await responder.respond(der)  # the cache would have served it until nextUpdate - margin
    assert result.status == "unauthorized"
    assert ocsp.load_der_ocsp_response(result.der).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


async def test_the_next_identity_takes_over_at_the_switch_and_the_cache_is_dropped():
    old, new = _short_lived(120), PKI.responder
    clock = FrozenClock(NOW)
    switch_at = NOW + timedelta(minutes=10)
    following = ResponderIdentity(new.cert, new.key)
    switched = []
    responder, der = _world(old.cert, old.key, clock=clock, next_identity=following, switch_at=switch_at)
    responder.on_switch.append(switched.append)
    before = await responder.respond(der)
    assert (await responder.respond(der)).der is before.der  # cached
    assert responder.signers() == (responder.identity, following)
    clock.advance(minutes=10)
    after = await responder.respond(der)
    assert after.der != before.der and switched == [following]
    assert responder.signers() == (following, None)
    answer = ocsp.load_der_ocsp_response(after.der)
    assert answer.responder_key_hash == following.key_hash
    answer.certificates[0].public_key().verify(answer.signature, answer.tbs_response_bytes,
                                               ec.ECDSA(hashes.SHA256()))


async def test_a_signing_queued_before_the_switch_and_done_after_it_is_not_served():
    old, new = _short_lived(120), PKI.responder
    clock = FrozenClock(NOW)
    responder, der = _world(old.cert, old.key, clock=clock, next_identity=ResponderIdentity(new.cert, new.key),
                            switch_at=NOW + timedelta(minutes=10))
    pending = responder.answer(der)  # queued, signed on the loop's next turn
    clock.advance(minutes=10)
    responder.switch_if_due()  # the timer fires first
    assert (await pending.wait()).status == "try_later"
    assert (await responder.respond(der)).status == "successful"  # asked again: the new signer


async def test_a_device_away_answers_try_later():
    from concurrent.futures import ThreadPoolExecutor

    signer = PKI.responder
    with ThreadPoolExecutor(1) as executor:
        key = _TokenKey(signer.key)
        key.executor = executor
        responder, der = _world(signer.cert, key, clock=FrozenClock(NOW))
        assert (await responder.respond(der)).status == "successful"  # signed on the executor
        key.fail = True
        responder.cache.clear()
        assert (await responder.respond(der)).status == "try_later"
        assert responder.signing.pending == 0


# --- the rotation's rules, checked at start -------------------------------------------------------

def test_the_next_signer_must_fit():
    root = PKI.root
    current = ocsp_signer(root, PKI.name("current responder"), now=NOW, days=30)
    switch = NOW + timedelta(days=20)
    check_rotation(current.cert, ocsp_signer(root, PKI.name("next responder"), now=NOW, days=400).cert, switch)
    no_eku = certificate(PKI.name("no eku"), now=NOW, issuer=root, days=400)
    with pytest.raises(RotationError, match="OCSPSigning"):
        check_rotation(current.cert, no_eku.cert, switch)
    stranger = ocsp_signer(PKI.issuing, PKI.name("other issuer"), now=NOW, days=400)
    with pytest.raises(RotationError, match="not by the current one's issuer"):
        check_rotation(current.cert, stranger.cert, switch)
    following = ocsp_signer(root, PKI.name("next responder"), now=NOW, days=400)
    with pytest.raises(RotationError, match="not before the current responder certificate's notAfter"):
        check_rotation(current.cert, following.cert, NOW + timedelta(days=31))
    later = ocsp_signer(root, PKI.name("not yet"), now=NOW, not_before=NOW + timedelta(days=25), days=400)
    with pytest.raises(RotationError, match="not valid at the switch"):
        check_rotation(current.cert, later.cert, switch)


def _config(tmp_path: Path, **kw) -> Config:
    common = CommonConfig(database_url="postgresql://x", amqp_url="amqp://x", data_dir=tmp_path,
                          events_exchange="e", host="127.0.0.1", log_format="console")
    return Config(common=common, **kw)


def test_rotation_settings_go_together(tmp_path):
    next_cert = tmp_path / "next.pem"
    assert _config(tmp_path).switch_time is None
    config = _config(tmp_path, responder_next_cert=next_cert, responder_next_key=tmp_path / "next.key",
                     responder_switch_at="2027-03-01T02:00:00+02:00")
    assert config.switch_time.utcoffset() == timedelta(hours=2)
    with pytest.raises(ConfigError, match="SWITCH_AT"):
        _config(tmp_path, responder_next_cert=next_cert, responder_next_key=tmp_path / "k")
    with pytest.raises(ConfigError, match="no time zone"):
        _config(tmp_path, responder_next_cert=next_cert, responder_next_key=tmp_path / "k",
                responder_switch_at="2027-03-01T02:00:00")
    with pytest.raises(ConfigError, match="needs its key"):
        _config(tmp_path, responder_next_cert=next_cert, responder_switch_at="2027-03-01T02:00:00Z")
    with pytest.raises(ConfigError, match="go with SIUI_OCSP_RESPONDER_NEXT_CERT"):
        _config(tmp_path, responder_switch_at="2027-03-01T02:00:00Z")
    with pytest.raises(ConfigError, match="PKCS#11 key label needs"):
        _config(tmp_path, pkcs11_key_label="responder")
    hsm = _config(tmp_path, pkcs11_module=Path("/m.so"), pkcs11_token="t", pkcs11_pin_file=tmp_path / "pin",
                  pkcs11_key_label="responder")
    assert hsm.pkcs11_key_label == "responder"


def test_the_pin_is_read_from_its_file_only(tmp_path):
    pin_file = tmp_path / "pin"
    env = {"SIUI_OCSP_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so", "SIUI_OCSP_PKCS11_TOKEN": "siui-ocsp",
           "SIUI_OCSP_PKCS11_PIN_FILE": str(pin_file), "SIUI_OCSP_PKCS11_KEY_LABEL": "responder",
           "SIUI_DATA_DIR": str(tmp_path)}
    assert Config.from_env(env).pkcs11_pin_file == pin_file
    pin_file.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_pin(pin_file)
    pin_file.write_text("s3cret-pin\n")
    assert read_pin(pin_file) == "s3cret-pin"
    assert "s3cret" not in repr(Pkcs11Settings(Path(env["SIUI_OCSP_PKCS11_MODULE"]), "siui-ocsp", pin_file))


async def test_off_loop_signing_is_bounded_batched_and_skips_the_cancelled():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from services.ocsp.responder.answering import Overloaded

    release = threading.Event()
    threads: list[tuple[str, int]] = []

    def job(n: int):
        def run() -> bytes:
            release.wait(5)
            threads.append((threading.current_thread().name, n))
            return bytes([n])
        return run

    queue = SigningQueue(max_pending=5, batch=2)
    with ThreadPoolExecutor(1, thread_name_prefix="token") as executor:
        futures = [queue.submit_to(executor, job(n)) for n in range(5)]
        with pytest.raises(Overloaded):
            queue.submit_to(executor, job(9))
        assert queue.pending == 5
        futures[3].cancel()  # waiting in the queue: never run
        release.set()
        results = [await f for n, f in enumerate(futures) if n != 3]
    assert results == [b"\x00", b"\x01", b"\x02", b"\x04"]
    assert [n for _, n in threads] == [0, 1, 2, 4] and all(name.startswith("token") for name, _ in threads)
    assert queue.pending == 0
