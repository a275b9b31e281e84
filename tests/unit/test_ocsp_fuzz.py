"""A property-based fuzz of the OCSP parser and responder (hypothesis): whatever bytes
or GET path arrive, the answer is a proper OCSP response — one of the constant error
statuses, or a successful response that parses as DER (asn1crypto and cryptography both)
with one SingleResponse per CertID. Nothing raises, nothing hangs.

Inputs: random bytes; valid requests (cryptography's builder and hand-built ones with
serials of every size, several CertIDs, nonces of every length) mutated byte by byte;
and malformed GET paths. Deterministic (derandomize) so CI sees the same cases."""
from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ocsp.responder.answering import Responder, SigningQueue
from services.ocsp.responder.codec import MAX_REQUEST_BYTES, MalformedRequest, decode_get_path
from services.ocsp.responder.registry import Registry, ResponseCache
from services.ocsp.responder.responses import ERROR_STATUSES, ResponderIdentity, error_response
from tests.support import pki

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ERRORS = {error_response(name) for name in ERROR_STATUSES}
STATUSES = {"successful", "malformed", "unauthorized", "try_later", "internal_error"}
def fuzz(examples: int) -> settings:
    """Deterministic (the same cases in every run), no deadline (CI machines vary)."""
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


class World:
    """A responder over a registry with one issuer: a good, a suspended, a revoked certificate."""

    def __init__(self):
        authority = pki.root_ca("Fuzz CA", now=NOW)
        self.ca = authority.cert
        self.leaves = {serial: pki.client(authority, f"leaf {serial}", now=NOW, serial=serial).cert
                       for serial in (10, 11, 2 ** 150 + 7)}
        registry = Registry()
        registry.add_issuer("ca", self.ca.public_bytes(serialization.Encoding.DER))
        registry.upsert_certificate("ca", 10, certificate_id="c10", username="1_CAS-B", cas="B")
        registry.upsert_certificate("ca", 11, certificate_id="c11", username="1_CAS-B", cas="B", suspended=True,
                                    suspended_at=NOW)
        registry.upsert_certificate("ca", 2 ** 150 + 7, certificate_id="c3", username="1_CAS-B", cas="B",
                                    status="revoked", revoked_at=NOW, revocation_reason="key_compromise")
        responder = pki.ocsp_signer(authority, "Fuzz Responder", now=NOW)
        identity = ResponderIdentity(responder.cert, responder.key)
        self.responder = Responder(registry, identity, SigningQueue(1000, 64), ResponseCache(1000),
                                   timedelta(hours=1), clock=lambda: NOW)
        public = self.ca.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        # (name hash, key hash) of the CA per CertID hash, as asn1crypto names them.
        self.hashes = {name: (hashlib.new(name, self.ca.subject.public_bytes()).digest(),
                              hashlib.new(name, public[-65:]).digest())
                       for name in ("sha1", "sha256", "sha384", "sha512")}
        self.loop = asyncio.new_event_loop()

    def answer(self, der: bytes):
        return self.loop.run_until_complete(self.responder.respond(der))

    def built(self, serial: int, algorithm, nonce: bytes | None) -> bytes:
        builder = ocsp.OCSPRequestBuilder().add_certificate(self.leaves.get(serial, self.leaves[10]), self.ca,
                                                            algorithm)
        if nonce:
            builder = builder.add_extension(x509_nonce(nonce), critical=False)
        return builder.build().public_bytes(serialization.Encoding.DER)


def x509_nonce(value: bytes):
    from cryptography import x509

    return x509.OCSPNonce(value)


# Built once at import: hypothesis strategies cannot take fixtures, and it is all memory.
WORLD = World()


@pytest.fixture(scope="module")
def world():
    yield WORLD
    WORLD.loop.close()


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def check(world: World, der: bytes, result) -> None:
    """The property: a proper OCSP answer for every input."""
    assert result.status in STATUSES
    if result.status != "successful":
        assert result.der in ERRORS
        return
    parsed = asn1_ocsp.OCSPResponse.load(result.der, strict=True)
    assert parsed["response_status"].native == "successful"
    basic = parsed["response_bytes"]["response"].parsed
    answers = basic["tbs_response_data"]["responses"]
    assert len(answers) == len(result.answers) >= 1
    loaded = ocsp.load_der_ocsp_response(result.der)  # what OpenSSL-based clients do
    assert loaded.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL


@fuzz(1000)
@given(data=st.one_of(
    st.binary(max_size=300),
    # Near and beyond the size bound, cheaply: a short pattern repeated.
    st.tuples(st.binary(min_size=1, max_size=16), st.integers(MAX_REQUEST_BYTES - 8, MAX_REQUEST_BYTES + 64))
    .map(lambda pattern_size: (pattern_size[0] * (pattern_size[1] // len(pattern_size[0]) + 1))[:pattern_size[1]])))
def test_random_bytes_get_a_proper_answer(world, data):
    check(world, data, world.answer(data))


_ALGORITHMS = {"sha1": "06052b0e03021a", "sha256": "0609608648016503040201", "sha384": "0609608648016503040202",
               "sha512": "0609608648016503040203"}


def _integer(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True) if value >= 0 else \
        value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)


@st.composite
def hand_built(draw) -> bytes:
    """OCSP requests assembled from parts: mostly well-formed (so that real answers are
    signed and checked), with every part sometimes wrong: the number of CertIDs (0, 101),
    an unknown hash or a hash of the wrong length, serials empty, padded, negative or
    beyond 20 octets, parameters NULL or absent, nonces from 1 to 200 octets."""
    entries = []
    count = draw(st.integers(0, 19).map(lambda n: {0: 0, 19: 101}.get(n, 1 + n % 6)))
    if count == 101:  # beyond the bound: the same CertID again is as good as any
        count, repeat = 1, 101
    else:
        repeat = 1
    for _ in range(count):
        name = draw(st.sampled_from(sorted(_ALGORITHMS)))
        algorithm = bytes.fromhex(_ALGORITHMS[name]) if draw(st.integers(0, 9)) else bytes.fromhex("0603550403")
        params = draw(st.sampled_from([b"\x05\x00", b""]))
        name_hash, key_hash = WORLD.hashes[name]
        if not draw(st.integers(0, 4)):
            size = draw(st.sampled_from([19, 20, 32, 64, 65]))
            name_hash, key_hash = draw(st.binary(min_size=size, max_size=size)), draw(st.binary(min_size=size, max_size=size))
        serial = draw(st.one_of(
            st.sampled_from([10, 11, 2 ** 150 + 7]).map(_integer),
            st.integers(-2 ** 40, 2 ** 168).map(_integer),
            st.sampled_from([b"", b"\x00\x0a", b"\xff\xff", b"\x01" * 22]),
        ))
        cert_id = tlv(0x30, tlv(0x30, algorithm + params) + tlv(0x04, name_hash) + tlv(0x04, key_hash)
                      + tlv(0x02, serial))
        entries.append(tlv(0x30, cert_id) * repeat)
    tbs = tlv(0x30, b"".join(entries))
    if draw(st.booleans()):
        nonce = draw(st.binary(max_size=200))
        ext = tlv(0x30, bytes.fromhex("06092b0601050507300102") + tlv(0x04, tlv(0x04, nonce)))
        tbs += tlv(0xA2, tlv(0x30, ext))
    return tlv(0x30, tlv(0x30, tbs))


@fuzz(1000)
@given(der=hand_built())
def test_hand_built_requests_get_a_proper_answer(world, der):
    check(world, der, world.answer(der))


@st.composite
def mutated(draw) -> bytes:
    serial = draw(st.sampled_from([10, 11, 2 ** 150 + 7, 99]))
    algorithm = draw(st.sampled_from([hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()]))
    nonce = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=32)))
    der = bytearray(WORLD.built(serial, algorithm, nonce))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        at = draw(st.integers(0, max(len(der) - 1, 0)))
        if kind == "flip" and der:
            der[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del der[at:at + draw(st.integers(1, 8))]
        elif kind == "insert":
            der[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif der:
            der[at] = draw(st.sampled_from([0x00, 0x80, 0x81, 0x82, 0xFF, 0x30, 0x02, 0x04]))
    return bytes(der)


@fuzz(1500)
@given(data=st.data())
def test_mutated_valid_requests_get_a_proper_answer(world, data):
    der = data.draw(mutated())
    result = world.answer(der)
    check(world, der, result)


def test_the_unmutated_requests_are_answered_with_their_state(world):
    good = world.answer(world.built(10, hashes.SHA1(), None))
    held = world.answer(world.built(11, hashes.SHA256(), b"n" * 16))
    assert (good.status, held.status) == ("successful", "successful")
    assert ocsp.load_der_ocsp_response(good.der).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert ocsp.load_der_ocsp_response(held.der).certificate_status == ocsp.OCSPCertStatus.REVOKED


@fuzz(1000)
@given(tail=st.one_of(st.text(max_size=400), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                               "0123456789+/=%-_ ", max_size=600)))
def test_malformed_get_paths_are_refused_or_answered_properly(world, tail):
    try:
        der = decode_get_path(tail)
    except MalformedRequest:
        return
    assert len(der) <= MAX_REQUEST_BYTES
    check(world, der, world.answer(der))


@fuzz(400)
@given(data=st.data())
def test_mutated_requests_sent_as_get_paths(world, data):
    der = data.draw(mutated())
    text = base64.b64encode(der).decode()
    style = data.draw(st.sampled_from(["plain", "quoted", "urlsafe", "slashes-merged"]))
    if style == "quoted":
        text = text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    elif style == "urlsafe":
        text = base64.urlsafe_b64encode(der).decode().rstrip("=")
    elif style == "slashes-merged":
        text = text.replace("//", "/")
    try:
        decoded = decode_get_path("/" + text)
    except MalformedRequest:
        return
    check(world, decoded, world.answer(decoded))
