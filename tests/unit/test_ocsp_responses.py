"""services.ocsp.responses: responses that cryptography and the openssl CLI both accept."""
from __future__ import annotations

import subprocess
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID

from services.ocsp.responder.codec import CertId, parse_request
from services.ocsp.responder.responses import (
    ERROR_STATUSES,
    ResponderIdentity,
    SingleAnswer,
    build_response,
    error_response,
)
from tests.support.pki import TestPki, certificate, new_key

OPENSSL = "/usr/bin/openssl"
# openssl checks thisUpdate/nextUpdate against the real clock, so these tests use it.
WORLD = TestPki.current()
NOW = WORLD.now
HELD_AT = NOW - timedelta(hours=3)
# a good, b on hold (suspended), c unknown: the declared leaves of the issuing CA.
LEAVES = {"a": WORLD.good, "b": WORLD.suspended, "c": WORLD.unknown}
SERIALS = {label: leaf.serial for label, leaf in LEAVES.items()}


@pytest.fixture(scope="session")
def resp_pki(tmp_path_factory) -> SimpleNamespace:
    """The issuing CA and its three leaves, the responders trusted by name (EC P-256, RSA
    2048) and the issuing CA's delegated signer, as objects and PEM files; ``chain`` is
    the CA hierarchy (issuing CA, root) a validator trusts."""
    directory = tmp_path_factory.mktemp("ocsp-responses")
    issued = {"ca": WORLD.issuing, **LEAVES, "ec": WORLD.responder, "rsa": WORLD.responder_rsa,
              "delegated": WORLD.ocsp_signer}
    files = {label: item.write(directory, label)[0] for label, item in issued.items()}
    files["chain"] = directory / "chain.pem"
    files["chain"].write_text(WORLD.issuing.pem + WORLD.root.pem)
    certs = {label: item.cert for label, item in issued.items()}
    identities = {label: ResponderIdentity(issued[label].cert, issued[label].key)
                  for label in ("ec", "rsa", "delegated")}
    return SimpleNamespace(dir=directory, certs=certs, files=files, identities=identities)


def _openssl(*args: str) -> tuple[int, str]:
    done = subprocess.run([OPENSSL, "ocsp", *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def _request(pki, *flags: str, certs=("a", "b", "c")) -> bytes:
    out = pki.dir / "req.der"
    cert_args = [arg for label in certs for arg in ("-cert", pki.files[label])]
    code, output = _openssl(*flags, "-issuer", pki.files["ca"], *cert_args, "-reqout", out)
    assert code == 0, output
    return out.read_bytes()


def _answers(cert_ids: tuple[CertId, ...]) -> list[SingleAnswer]:
    """a good, b on hold (suspended), c unknown, matched by serial."""
    by_serial = {
        SERIALS["a"]: lambda cid: SingleAnswer(cid, "good"),
        SERIALS["b"]: lambda cid: SingleAnswer(cid, "revoked", HELD_AT, "certificate_hold"),
        SERIALS["c"]: lambda cid: SingleAnswer(cid, "unknown"),
    }
    return [by_serial[cid.serial](cid) for cid in cert_ids]


def _build(identity, parsed, **kw) -> bytes:
    times = dict(produced_at=NOW, this_update=NOW, next_update=NOW + timedelta(hours=1))
    return build_response(identity, _answers(parsed.cert_ids), nonce=kw.pop("nonce", parsed.nonce), **times, **kw)


def _write(pki, der: bytes, name: str = "resp.der"):
    path = pki.dir / name
    path.write_bytes(der)
    return path


# --- cryptography reads and verifies ---------------------------------------------------------

@pytest.mark.parametrize("which, signature_oid", [("ec", SignatureAlgorithmOID.ECDSA_WITH_SHA256),
                                                  ("rsa", SignatureAlgorithmOID.RSA_WITH_SHA256)])
def test_cryptography_accepts_and_verifies(resp_pki, which, signature_oid):
    identity = resp_pki.identities[which]
    parsed = parse_request(_request(resp_pki))

    response = ocsp.load_der_ocsp_response(_build(identity, parsed))

    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    singles = {single.serial_number: single for single in response.responses}
    assert singles[SERIALS["a"]].certificate_status == ocsp.OCSPCertStatus.GOOD
    held = singles[SERIALS["b"]]
    assert held.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold
    assert held.revocation_time_utc == HELD_AT
    assert singles[SERIALS["c"]].certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    for single, cert_id in zip(response.responses, parsed.cert_ids):
        assert (single.serial_number, single.issuer_key_hash, single.issuer_name_hash) == (
            cert_id.serial, cert_id.issuer_key_hash, cert_id.issuer_name_hash)
        assert single.this_update_utc == NOW and single.next_update_utc == NOW + timedelta(hours=1)
    assert response.produced_at_utc == NOW
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == parsed.nonce
    assert response.responder_name is None
    public_key = identity.certificate.public_key()
    # RFC 5280's key identifier method 1 is the same SHA-1 of the subjectPublicKey bits.
    assert response.responder_key_hash == identity.key_hash
    assert identity.key_hash == x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    assert response.certificates == [identity.certificate]
    assert response.signature_algorithm_oid == signature_oid
    if which == "ec":
        public_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    else:
        public_key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())


def test_revocation_reasons_and_no_nonce(resp_pki):
    cert_id = parse_request(_request(resp_pki, "-no_nonce", certs=("a",))).cert_ids[0]
    for reason, flag in [("key_compromise", x509.ReasonFlags.key_compromise),
                         ("superseded", x509.ReasonFlags.superseded), (None, None)]:
        der = build_response(resp_pki.identities["ec"], [SingleAnswer(cert_id, "revoked", HELD_AT, reason)],
                             nonce=None, produced_at=NOW, this_update=NOW, next_update=NOW + timedelta(hours=1))
        response = ocsp.load_der_ocsp_response(der)
        assert response.revocation_reason == flag
        assert len(response.extensions) == 0


# --- the openssl CLI verifies ----------------------------------------------------------------

@pytest.mark.parametrize("which", ["ec", "rsa"])
@pytest.mark.parametrize("digest", [(), ("-sha256",)], ids=["sha1", "sha256"])
def test_openssl_verifies_trusted_responder(resp_pki, which, digest):
    parsed = parse_request(_request(resp_pki, *digest))
    resp = _write(resp_pki, _build(resp_pki.identities[which], parsed))

    code, output = _openssl("-respin", resp, "-VAfile", resp_pki.files[which], "-no_nonce", *digest,
                            "-issuer", resp_pki.files["ca"], "-cert", resp_pki.files["a"],
                            "-cert", resp_pki.files["b"], "-cert", resp_pki.files["c"])

    assert code == 0, output
    assert "Response verify OK" in output
    assert f"{resp_pki.files['a']}: good" in output
    assert f"{resp_pki.files['b']}: revoked" in output
    assert f"{resp_pki.files['c']}: unknown" in output
    assert "Reason: certificateHold" in output
    assert "WARNING" not in output


def test_openssl_checks_the_echoed_nonce(resp_pki):
    request = _request(resp_pki)
    request_file = _write(resp_pki, request, "nonce-req.der")
    parsed = parse_request(request)
    good = _write(resp_pki, _build(resp_pki.identities["ec"], parsed), "nonce-ok.der")
    wrong = _write(resp_pki, _build(resp_pki.identities["ec"], parsed, nonce=b"\x00" * 16), "nonce-bad.der")

    code, output = _openssl("-respin", good, "-reqin", request_file, "-VAfile", resp_pki.files["ec"],
                            "-resp_text")
    assert code == 0 and "Response verify OK" in output and "Nonce Verify error" not in output
    assert "Revocation Reason: certificateHold" in output and "Cert Status: unknown" in output

    code, output = _openssl("-respin", wrong, "-reqin", request_file, "-VAfile", resp_pki.files["ec"])
    assert code != 0 and "Nonce Verify error" in output


def test_openssl_accepts_delegated_responder_with_only_the_ca(resp_pki):
    parsed = parse_request(_request(resp_pki, "-sha256"))
    resp = _write(resp_pki, _build(resp_pki.identities["delegated"], parsed))

    code, output = _openssl("-respin", resp, "-CAfile", resp_pki.files["chain"], "-no_nonce", "-sha256",
                            "-issuer", resp_pki.files["ca"], "-cert", resp_pki.files["a"],
                            "-cert", resp_pki.files["b"])

    assert code == 0, output
    assert "Response verify OK" in output
    assert f"{resp_pki.files['a']}: good" in output and f"{resp_pki.files['b']}: revoked" in output
    assert "Reason: certificateHold" in output


def test_openssl_refuses_trusted_responder_without_vafile(resp_pki):
    # The control for the test above: the CA alone does not vouch for our own responder.
    resp = _write(resp_pki, _build(resp_pki.identities["ec"], parse_request(_request(resp_pki))))
    code, output = _openssl("-respin", resp, "-CAfile", resp_pki.files["chain"], "-no_nonce",
                            "-issuer", resp_pki.files["ca"], "-cert", resp_pki.files["a"])
    assert code != 0 and "Response Verify Failure" in output


# --- encoding details ------------------------------------------------------------------------

def test_tbs_bytes_equal_a_pure_asn1crypto_build(resp_pki):
    # build_response joins SEQUENCEs by hand for speed; asn1crypto must agree to the byte.
    parsed = parse_request(_request(resp_pki))
    identity = resp_pki.identities["ec"]
    der = _build(identity, parsed)
    basic = asn1_ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed
    statuses = {SERIALS["a"]: ("good", None), SERIALS["c"]: ("unknown", None),
                SERIALS["b"]: ("revoked", {"revocation_time": HELD_AT, "revocation_reason": "certificate_hold"})}
    reference = asn1_ocsp.ResponseData({
        "responder_id": asn1_ocsp.ResponderId(name="by_key", value=identity.key_hash),
        "produced_at": NOW,
        "responses": [{
            "cert_id": asn1_ocsp.CertId.load(cid.der),
            "cert_status": asn1_ocsp.CertStatus(name=statuses[cid.serial][0],
                                                value=statuses[cid.serial][1] or core.Null()),
            "this_update": NOW, "next_update": NOW + timedelta(hours=1),
        } for cid in parsed.cert_ids],
        "response_extensions": [{"extn_id": "nonce", "extn_value": core.OctetString(parsed.nonce)}],
    })
    assert basic["tbs_response_data"].dump() == reference.dump(force=True)
    assert asn1_ocsp.OCSPResponse.load(der).dump(force=True) == der  # framing is DER too
    assert basic["certs"][0].dump() == identity.certificate.public_bytes(serialization.Encoding.DER)


def test_cert_id_is_echoed_byte_for_byte(resp_pki):
    # Hash parameters absent instead of NULL: the echo must keep them absent.
    asked = parse_request(_request(resp_pki, certs=("a",))).cert_ids[0]
    absent = asn1_ocsp.CertId.load(asked.der)
    absent["hash_algorithm"] = asn1_ocsp.DigestAlgorithm.load(bytes.fromhex("300706052b0e03021a"))
    cert_id = CertId(asked.hash_algorithm, asked.issuer_name_hash, asked.issuer_key_hash, asked.serial,
                     absent.dump(force=True))
    assert cert_id.der != asked.der
    der = build_response(resp_pki.identities["ec"], [SingleAnswer(cert_id, "good")], nonce=None,
                         produced_at=NOW, this_update=NOW, next_update=NOW + timedelta(hours=1))
    assert cert_id.der in der
    # Without the client's bytes, the CertID is encoded with NULL parameters like openssl.
    plain = CertId(asked.hash_algorithm, asked.issuer_name_hash, asked.issuer_key_hash, asked.serial)
    der = build_response(resp_pki.identities["ec"], [SingleAnswer(plain, "good")], nonce=None,
                         produced_at=NOW, this_update=NOW, next_update=NOW + timedelta(hours=1))
    assert asked.der in der


def test_times_are_whole_seconds_and_must_be_aware(resp_pki):
    cert_id = parse_request(_request(resp_pki, certs=("a",))).cert_ids[0]
    answer = [SingleAnswer(cert_id, "good")]
    later = NOW + timedelta(hours=1)
    der = build_response(resp_pki.identities["ec"], answer, nonce=None,
                         produced_at=NOW.replace(microsecond=654321),
                         this_update=NOW.replace(microsecond=999999), next_update=later)
    response = ocsp.load_der_ocsp_response(der)
    assert response.produced_at_utc == NOW and response.this_update_utc == NOW
    with pytest.raises(ValueError, match="timezone-aware"):
        build_response(resp_pki.identities["ec"], answer, nonce=None, produced_at=NOW.replace(tzinfo=None),
                       this_update=NOW, next_update=later)
    with pytest.raises(ValueError, match="at least one"):
        build_response(resp_pki.identities["ec"], [], nonce=None, produced_at=NOW, this_update=NOW,
                       next_update=later)


@pytest.mark.parametrize("status", sorted(ERROR_STATUSES))
def test_error_responses(status):
    expected = {"malformed_request": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                "internal_error": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
                "try_later": ocsp.OCSPResponseStatus.TRY_LATER,
                "sig_required": ocsp.OCSPResponseStatus.SIG_REQUIRED,
                "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED}[status]
    assert ocsp.load_der_ocsp_response(error_response(status)).response_status == expected
    assert error_response(status) is error_response(status)  # precomputed, not rebuilt


def test_unknown_error_status_is_refused():
    with pytest.raises(ValueError):
        error_response("successful")


# --- identities and answers -------------------------------------------------------------------

def test_identity_refuses_a_key_that_does_not_match(resp_pki):
    with pytest.raises(ValueError, match="does not match"):
        ResponderIdentity(resp_pki.certs["ec"], new_key())


def test_identity_refuses_an_unsupported_curve():
    k1 = certificate("k1", now=NOW, key=new_key("ec-secp256k1"))
    with pytest.raises(ValueError, match="unsupported EC curve"):
        ResponderIdentity(k1.cert, k1.key)


def test_identity_from_pem_with_extra_certificates(resp_pki):
    identity = resp_pki.identities["delegated"]
    key_pem = identity.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
    loaded = ResponderIdentity.from_pem(resp_pki.files["delegated"].read_bytes(), key_pem,
                                        extra_certs_pem=resp_pki.files["ca"].read_bytes())
    assert loaded.key_hash == identity.key_hash
    cert_id = parse_request(_request(resp_pki, certs=("a",))).cert_ids[0]
    der = build_response(loaded, [SingleAnswer(cert_id, "good")], nonce=None, produced_at=NOW,
                         this_update=NOW, next_update=NOW + timedelta(hours=1))
    assert ocsp.load_der_ocsp_response(der).certificates == [resp_pki.certs["delegated"], resp_pki.certs["ca"]]


@pytest.mark.parametrize("kwargs, message", [
    ({"status": "suspended"}, "unknown certificate status"),
    ({"status": "revoked"}, "needs revoked_at"),
    ({"status": "revoked", "revoked_at": HELD_AT, "revocation_reason": "lost"}, "unknown revocation reason"),
])
def test_single_answer_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SingleAnswer(CertId("sha1", b"\x00" * 20, b"\x00" * 20, 1), **kwargs)
