"""services.ocsp.codec: real requests (openssl CLI, cryptography) parse; bad ones are refused."""
from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from services.ocsp.responder.codec import (
    MAX_CERTS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    CertId,
    MalformedRequest,
    ParsedRequest,
    decode_get_path,
    parse_request,
)
from tests.support.pki import TestPki, client

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
OPENSSL = "/usr/bin/openssl"


@pytest.fixture(scope="session")
def codec_pki(tmp_path_factory) -> SimpleNamespace:
    """The test PKI's issuing CA and two leaves of chosen serials (the second's top bit set,
    so its DER needs a leading zero), as objects and as PEM files for the openssl CLI."""
    directory = tmp_path_factory.mktemp("ocsp-codec")
    issuing = TestPki.at(NOW).issuing
    leaves = {label: client(issuing, f"leaf {label}", now=NOW, serial=serial)
              for label, serial in (("a", 0x1001), ("b", 0xA1B2C3D4E5F60718))}
    files = {label: issued.write(directory, label)[0] for label, issued in {"ca": issuing, **leaves}.items()}
    return SimpleNamespace(dir=directory, ca=issuing.cert, leaves=[leaves["a"].cert, leaves["b"].cert], files=files)


def _openssl_request(pki: SimpleNamespace, *flags: str) -> bytes:
    out: Path = pki.dir / "req.der"
    subprocess.run([OPENSSL, "ocsp", *flags, "-issuer", str(pki.files["ca"]), "-cert", str(pki.files["a"]),
                    "-cert", str(pki.files["b"]), "-reqout", str(out)], check=True, capture_output=True)
    return out.read_bytes()


def _crypto_request(pki: SimpleNamespace, algorithm=hashes.SHA1(), nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(pki.leaves[0], pki.ca, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _expected_hashes(pki: SimpleNamespace, name: str) -> tuple[bytes, bytes]:
    spki = pki.ca.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    key_bits = spki[-65:]  # P-256 uncompressed point: the BIT STRING's value
    return hashlib.new(name, pki.ca.subject.public_bytes()).digest(), hashlib.new(name, key_bits).digest()


def _asn1_request(cert_ids: list[dict], nonce_value=None) -> bytes:
    """A request built field by field, to reach shapes no real client produces."""
    tbs = {"request_list": [{"req_cert": cid} for cid in cert_ids]}
    if nonce_value is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": nonce_value}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def _cid(serial: int = 5, algorithm: str = "sha1", size: int = 20) -> dict:
    return {"hash_algorithm": {"algorithm": algorithm}, "issuer_name_hash": b"\x01" * size,
            "issuer_key_hash": b"\x02" * size, "serial_number": serial}


# --- real clients -------------------------------------------------------------------------

@pytest.mark.parametrize("flags, algorithm", [((), "sha1"), (("-sha256",), "sha256")])
def test_openssl_request_with_two_certificates_parses(codec_pki, flags, algorithm):
    parsed = parse_request(_openssl_request(codec_pki, *flags))

    assert [c.serial for c in parsed.cert_ids] == [0x1001, 0xA1B2C3D4E5F60718]
    name_hash, key_hash = _expected_hashes(codec_pki, algorithm)
    for cert_id in parsed.cert_ids:
        assert (cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash) == (
            algorithm, name_hash, key_hash)
    assert parsed.nonce is not None and len(parsed.nonce) == 16  # openssl's default nonce


def test_openssl_request_without_nonce(codec_pki):
    assert parse_request(_openssl_request(codec_pki, "-no_nonce")).nonce is None


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_cryptography_request_matches_cryptographys_own_reading(codec_pki, algorithm):
    der = _crypto_request(codec_pki, algorithm, nonce=b"n" * 32)
    theirs = ocsp.load_der_ocsp_request(der)

    parsed = parse_request(der)

    assert parsed == ParsedRequest(cert_ids=(CertId(algorithm.name, theirs.issuer_name_hash,
                                                    theirs.issuer_key_hash, theirs.serial_number),),
                                   nonce=b"n" * 32)
    # The raw CertID is kept so the response can echo it byte for byte.
    assert parsed.cert_ids[0].der in der and parsed.cert_ids[0].der[0] == 0x30


def test_bytearray_and_memoryview_accepted(codec_pki):
    der = _crypto_request(codec_pki)
    assert parse_request(bytearray(der)) == parse_request(memoryview(der)) == parse_request(der)


# --- refusals -----------------------------------------------------------------------------

def _refused(der, fragment: str) -> None:
    with pytest.raises(MalformedRequest) as info:
        parse_request(der)
    assert fragment in info.value.reason


@pytest.mark.parametrize("garbage", [
    b"\x00", b"\x30", b"\x30\x80", b"hello world", b"\x30\x03\x02\x01\x01", bytes(range(256)),
    b"\x30\x82\xff\xff" + b"\x00" * 50,
])
def test_garbage_is_malformed(garbage):
    _refused(garbage, "undecodable")


def test_empty_body_is_malformed():
    _refused(b"", "empty")


def test_truncated_and_trailing_bytes_are_malformed(codec_pki):
    der = _crypto_request(codec_pki)
    _refused(der[:-1], "undecodable")
    _refused(der + b"\x00", "undecodable")


def test_other_der_structures_are_malformed(codec_pki):
    _refused(codec_pki.ca.public_bytes(serialization.Encoding.DER), "undecodable")


def test_garbage_deep_inside_is_found_eagerly():
    # A well-framed request whose requestorName [1] holds junk: lazily it would look fine.
    good = _asn1_request([_cid()])
    tbs_start = 4  # outer SEQUENCE header (2) + tbsRequest header (2)
    junk = b"\xa1\x03\x30\x01\xff"
    body = good[tbs_start:]
    tbs = bytes([0x30, len(body) + len(junk)]) + junk + body
    _refused(bytes([0x30, len(tbs)]) + tbs, "undecodable")


def test_zero_entries_is_malformed():
    _refused(_asn1_request([]), "no certificates")


def test_entry_limit():
    assert len(parse_request(_asn1_request([_cid(n) for n in range(MAX_CERTS_PER_REQUEST)])).cert_ids) == 100
    _refused(_asn1_request([_cid(n) for n in range(MAX_CERTS_PER_REQUEST + 1)]), "more than 100")


def test_body_over_the_size_limit_is_malformed():
    _refused(b"\x30" + b"\x00" * MAX_REQUEST_BYTES, "larger than")


@pytest.mark.parametrize("algorithm, size", [("md5", 16), ("sha224", 28), ("sha3_256", 32)])
def test_unsupported_hash_algorithm_is_malformed(algorithm, size):
    _refused(_asn1_request([_cid(algorithm=algorithm, size=size)]), "unsupported CertID hash")


def test_hash_of_the_wrong_length_is_malformed():
    _refused(_asn1_request([_cid(algorithm="sha256", size=20)]), "not sha256 digests")


@pytest.mark.parametrize("length", [1, 16, 32, 128])
def test_nonce_lengths_accepted(length):
    assert parse_request(_asn1_request([_cid()], core.OctetString(b"\x07" * length))).nonce == b"\x07" * length


@pytest.mark.parametrize("length", [0, 129])
def test_nonce_lengths_refused(length):
    _refused(_asn1_request([_cid()], core.OctetString(b"\x07" * length)), f"got {length}")


def test_nonce_not_wrapped_in_an_octet_string_is_malformed():
    # Pre-RFC 8954 clients put raw bytes in extnValue; here they happen to start 0x01.
    wrapped = _asn1_request([_cid()], core.OctetString(b"\xaa\xbb"))
    raw = wrapped.replace(b"\x04\x04\x04\x02\xaa\xbb", b"\x04\x04\x01\x02\xaa\xbb")
    assert raw != wrapped
    _refused(raw, "undecodable")


# --- RFC 5019 GET ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def awkward_request(codec_pki) -> tuple[bytes, str]:
    """A request whose base64 has '+', '//' and '=' padding: every case GET must survive."""
    for counter in range(200_000):
        # Vary the length too, so that some encodings end in '=' padding.
        nonce = hashlib.sha256(counter.to_bytes(4, "big")).digest()[: 16 + counter % 3]
        der = _crypto_request(codec_pki, nonce=nonce)
        text = base64.b64encode(der).decode()
        if "+" in text and "//" in text and "///" not in text and text.endswith("="):
            return der, text
    raise AssertionError("no request with an awkward base64 form found")


def test_get_plain_base64(awkward_request):
    der, text = awkward_request
    assert decode_get_path(text) == der


@pytest.mark.parametrize("transform", [
    lambda t: quote(t, safe=""),                      # fully percent-encoded: %2B %2F %3D
    lambda t: quote(t, safe="/"),                     # slashes left alone
    lambda t: t.replace("+", "%2B"),                  # only some characters encoded
    lambda t: t.rstrip("="),                          # padding dropped
    lambda t: quote(t.rstrip("="), safe="").replace("%2B", "%2b").replace("%2F", "%2f"),
    lambda t: "/" + t,                                # URL join left a leading slash
    lambda t: "//" + t.rstrip("="),
    lambda t: t.replace("//", "/"),                   # a proxy merged the doubled slash
    lambda t: "/" + t.replace("//", "/").rstrip("="),
    lambda t: t.replace("+", " "),                    # '+' turned into a space on the way
    lambda t: t.replace("+", "-").replace("/", "_"),  # URL-safe alphabet
], ids=["quoted", "quoted-keep-slash", "partly-quoted", "no-padding", "lower-escapes",
        "leading-slash", "double-leading-no-padding", "merged-slashes", "merged-leading-no-padding",
        "space-for-plus", "urlsafe"])
def test_get_variants_decode_to_the_same_der(awkward_request, transform):
    der, text = awkward_request
    assert decode_get_path(transform(text)) == der
    assert parse_request(decode_get_path(transform(text))).cert_ids


def test_get_keeps_real_doubled_slashes(awkward_request):
    # '//' inside the base64 is data: collapsing it blindly would corrupt the request.
    der, text = awkward_request
    assert "//" in text and decode_get_path(text) == der


@pytest.mark.parametrize("tail", ["", "/", "///", "not base64!", "%zz", "AAAA", "MA", "M" * 5,
                                  base64.b64encode(b"\x30\x05abc").decode(), "A" * 40_000])
def test_get_garbage_is_malformed(tail):
    with pytest.raises(MalformedRequest):
        decode_get_path(tail)


def test_get_decodes_but_does_not_judge_the_structure():
    # A complete DER value that is not a request passes decoding; parse_request refuses it.
    der = core.Sequence.load(bytes.fromhex("3003020101")).dump()
    assert decode_get_path(base64.b64encode(der).decode()) == der
    with pytest.raises(MalformedRequest):
        parse_request(der)


# --- the hand-written fast path agrees with asn1crypto ----------------------------------------

def _fast_path_corpus(pki) -> list[bytes]:
    corpus = [_openssl_request(pki), _openssl_request(pki, "-sha256"), _openssl_request(pki, "-no_nonce")]
    for algorithm in (hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        corpus += [_crypto_request(pki, algorithm), _crypto_request(pki, algorithm, nonce=b"\x01" * 127)]
    for serial in (0, 1, 127, 128, 255, 256, -1, -129, 2**159 - 1, 2**200):
        corpus.append(_asn1_request([_cid(serial)]))
    corpus.append(_asn1_request([_cid(7, "sha256", 32)] * 100, core.OctetString(b"n" * 200)))
    corpus.append(_asn1_request([_cid()] * 3, core.OctetString(b"")))
    with_version = asn1_ocsp.OCSPRequest({"tbs_request": {"version": "v1", "request_list": [{"req_cert": _cid()}]}})
    corpus.append(with_version.dump(force=True))
    critical = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": _cid()}], "request_extensions": [
        {"extn_id": "nonce", "critical": True, "extn_value": core.OctetString(b"abc")}]}})
    corpus.append(critical.dump())
    return corpus


def _outcome(parse, der: bytes):
    try:
        return parse(der)
    except MalformedRequest:
        return "malformed"


def test_fast_path_and_asn1crypto_agree_on_every_shape_and_mutation(codec_pki):
    from services.ocsp.responder import codec

    taken = 0
    for original in _fast_path_corpus(codec_pki):
        # Every single-byte change (a sample of values), and every truncation.
        variants = [original] + [original[:cut] for cut in range(0, len(original), 1 + len(original) // 300)]
        # Long requests repeat one entry: mutating their first 300 bytes covers the shapes.
        for index in range(min(len(original), 300)):
            for value in (0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF, original[index] ^ 0x01):
                variants.append(original[:index] + bytes((value,)) + original[index + 1:])
        for der in variants:
            fast = codec._fast_parse(der)
            if fast is None:
                continue
            taken += 1
            slow = _outcome(codec._parse_with_asn1crypto, der)
            assert fast == slow, der.hex()
            assert [c.der for c in fast.cert_ids] == [c.der for c in slow.cert_ids]
    assert taken > 1000  # the fast path really is the common path


def test_fast_path_takes_what_real_clients_send(codec_pki):
    from services.ocsp.responder import codec

    for der in (_openssl_request(codec_pki), _openssl_request(codec_pki, "-sha256", "-no_nonce"),
                _crypto_request(codec_pki, hashes.SHA256(), nonce=b"x" * 32)):
        assert codec._fast_parse(der) == codec._parse_with_asn1crypto(der)
