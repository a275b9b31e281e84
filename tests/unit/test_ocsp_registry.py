"""services.ocsp.registry: lookups by every CertID hash, answers, and the response cache."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from services.ocsp.responder.codec import CertId, ParsedRequest, parse_request
from services.ocsp.responder.registry import Registry, ResponseCache, issuer_hashes
from services.ocsp.responder.responses import ResponderIdentity, SingleAnswer, build_response
from tests.support.pki import TestPki, client

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
HASHES = [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()]


@pytest.fixture(scope="session")
def reg_pki() -> SimpleNamespace:
    """The test PKI's issuing CAs (EC and RSA, so key hashes cover both key encodings),
    leaves of serials 10 and 11 (and 10 under the RSA CA), the responder trusted by name."""
    pki = TestPki.at(NOW)
    leaves = {serial: client(pki.issuing, f"leaf {serial}", now=NOW, serial=serial).cert for serial in (10, 11)}
    rsa_leaf = client(pki.issuing_rsa, "rsa leaf", now=NOW, serial=10).cert
    return SimpleNamespace(ec_ca=pki.issuing.cert, rsa_ca=pki.issuing_rsa.cert, leaves=leaves, rsa_leaf=rsa_leaf,
                           responder=ResponderIdentity(pki.responder.cert, pki.responder.key))


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _cert_id(leaf, issuer, algorithm=hashes.SHA1()) -> CertId:
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
    return parse_request(request.public_bytes(serialization.Encoding.DER)).cert_ids[0]


@pytest.fixture
def registry(reg_pki) -> Registry:
    registry = Registry()
    registry.add_issuer("ca-ec", _der(reg_pki.ec_ca))
    registry.add_issuer("ca-rsa", issuer_hashes(_der(reg_pki.rsa_ca)))  # the precomputed form
    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="RO123_CAS-B", cas="B")
    return registry


# --- hashes and lookups ------------------------------------------------------------------------

@pytest.mark.parametrize("ca", ["ec_ca", "rsa_ca"])
@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
def test_issuer_hashes_match_what_clients_compute(reg_pki, ca, algorithm):
    issuer = getattr(reg_pki, ca)
    leaf = reg_pki.leaves[10] if ca == "ec_ca" else reg_pki.rsa_leaf
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
    assert issuer_hashes(_der(issuer))[algorithm.name] == (request.issuer_name_hash, request.issuer_key_hash)


@pytest.mark.parametrize("algorithm", HASHES, ids=lambda h: h.name)
def test_lookup_finds_issuer_by_any_supported_hash(registry, reg_pki, algorithm):
    found = registry.lookup(_cert_id(reg_pki.leaves[10], reg_pki.ec_ca, algorithm))
    assert found.outcome == "found" and found.issuer.issuer_id == "ca-ec"
    assert (found.record.certificate_id, found.record.username, found.record.cas) == ("c-10", "RO123_CAS-B", "B")

    other = registry.lookup(_cert_id(reg_pki.rsa_leaf, reg_pki.rsa_ca, algorithm))
    assert other.outcome == "unknown_serial" and other.issuer.issuer_id == "ca-rsa"


def test_unknown_issuer_is_reported_and_has_no_answer(registry, reg_pki):
    stranger = CertId("sha1", b"\x01" * 20, b"\x02" * 20, 10)
    lookup = registry.lookup(stranger)
    assert lookup.outcome == "unknown_issuer" and lookup.issuer is None
    with pytest.raises(ValueError, match="unauthorized"):
        lookup.answer(stranger)


def test_answers_good_unknown_held_revoked(registry, reg_pki):
    cid10, cid11 = (_cert_id(reg_pki.leaves[s], reg_pki.ec_ca) for s in (10, 11))
    assert registry.lookup(cid10).answer(cid10) == SingleAnswer(cid10, "good")
    assert registry.lookup(cid11).answer(cid11) == SingleAnswer(cid11, "unknown")

    held_at = NOW - timedelta(hours=1)
    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="u", cas="B",
                                suspended=True, suspended_at=held_at)
    assert registry.lookup(cid10).answer(cid10) == SingleAnswer(cid10, "revoked", held_at, "certificate_hold")

    # A permanent revocation wins over a suspension.
    revoked_at = NOW - timedelta(minutes=5)
    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="u", cas="B", status="revoked",
                                revoked_at=revoked_at, revocation_reason="key_compromise",
                                suspended=True, suspended_at=held_at)
    assert registry.lookup(cid10).answer(cid10) == SingleAnswer(cid10, "revoked", revoked_at, "key_compromise")

    assert registry.remove_certificate("ca-ec", 10) is True
    assert registry.remove_certificate("ca-ec", 10) is False
    assert registry.lookup(cid10).outcome == "unknown_serial"


def test_issuer_management(registry, reg_pki):
    cid = _cert_id(reg_pki.leaves[10], reg_pki.ec_ca)
    with pytest.raises(ValueError, match="already registered"):
        registry.add_issuer("ca-ec-again", _der(reg_pki.ec_ca))
    assert registry.lookup(cid).issuer.signer is None

    registry.set_signer("ca-ec", reg_pki.responder)
    assert registry.lookup(cid).issuer.signer is reg_pki.responder
    assert registry.issuer("ca-ec").signer is reg_pki.responder
    registry.set_signer("ca-ec", None)
    assert registry.lookup(cid).issuer.signer is None
    with pytest.raises(KeyError):
        registry.set_signer("nobody", reg_pki.responder)

    assert registry.remove_issuer("ca-ec") is True
    assert registry.lookup(cid).outcome == "unknown_issuer"
    registry.add_issuer("ca-ec", _der(reg_pki.ec_ca))  # records survive re-registration
    assert registry.lookup(cid).outcome == "found"


@pytest.mark.parametrize("kwargs, message", [
    ({"status": "suspended"}, "status must be"),
    ({"status": "revoked"}, "needs revoked_at"),
    ({"suspended": True}, "needs suspended_at"),
    ({"status": "revoked", "revoked_at": NOW, "revocation_reason": "lost"}, "unknown revocation reason"),
])
def test_upsert_validation(registry, kwargs, message):
    with pytest.raises(ValueError, match=message):
        registry.upsert_certificate("ca-ec", 12, certificate_id="c", username="u", cas="B", **kwargs)


def test_every_change_gives_a_new_state_version(registry, reg_pki):
    cid = _cert_id(reg_pki.leaves[10], reg_pki.ec_ca)
    seen = [registry.lookup(cid).state_version]
    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="u", cas="B",
                                suspended=True, suspended_at=NOW)
    seen.append(registry.lookup(cid).state_version)
    registry.set_signer("ca-ec", reg_pki.responder)
    seen.append(registry.lookup(cid).state_version)
    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="u", cas="B")
    seen.append(registry.lookup(cid).state_version)
    assert seen == sorted(set(seen))
    assert registry.lookup(cid).state_version == registry.lookup(cid).state_version  # reads change nothing


# --- the response cache --------------------------------------------------------------------------

def _sign(reg_pki, lookup, cid, now=NOW, ttl=timedelta(hours=1)) -> bytes:
    return build_response(reg_pki.responder, [lookup.answer(cid)], nonce=None, produced_at=now,
                          this_update=now, next_update=now + ttl)


def test_cache_serves_until_a_suspension_changes_the_answer(registry, reg_pki):
    cache = ResponseCache()
    cid = _cert_id(reg_pki.leaves[10], reg_pki.ec_ca, hashes.SHA256())
    lookup = registry.lookup(cid)
    assert cache.get(lookup, cid, NOW) is None
    entry = cache.put(lookup, cid, _sign(reg_pki, lookup, cid), produced_at=NOW,
                      next_update=NOW + timedelta(hours=1))
    assert cache.get(registry.lookup(cid), cid, NOW + timedelta(minutes=1)) is entry
    assert entry.etag.startswith('"') and entry.etag.endswith('"') and len(entry.etag) == 66

    registry.upsert_certificate("ca-ec", 10, certificate_id="c-10", username="u", cas="B",
                                suspended=True, suspended_at=NOW)
    lookup = registry.lookup(cid)
    assert cache.get(lookup, cid, NOW + timedelta(minutes=1)) is None  # immediately, no waiting
    fresh = cache.put(lookup, cid, _sign(reg_pki, lookup, cid), produced_at=NOW,
                      next_update=NOW + timedelta(hours=1))
    assert fresh.etag != entry.etag
    assert ocsp.load_der_ocsp_response(fresh.der).certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_cache_separates_hash_algorithms_and_signers(registry, reg_pki):
    cache = ResponseCache()
    sha1, sha256 = (_cert_id(reg_pki.leaves[10], reg_pki.ec_ca, h) for h in (hashes.SHA1(), hashes.SHA256()))
    lookup = registry.lookup(sha1)
    cache.put(lookup, sha1, b"sha1-answer", produced_at=NOW, next_update=NOW + timedelta(hours=1))
    assert cache.get(registry.lookup(sha256), sha256, NOW) is None
    assert cache.get(registry.lookup(sha1), sha1, NOW).der == b"sha1-answer"
    registry.set_signer("ca-ec", reg_pki.responder)  # answers must now carry another signature
    assert cache.get(registry.lookup(sha1), sha1, NOW) is None


def test_cache_checks_the_echoed_cert_id_encoding(registry, reg_pki):
    cache = ResponseCache()
    cid = _cert_id(reg_pki.leaves[10], reg_pki.ec_ca)
    lookup = registry.lookup(cid)
    cache.put(lookup, cid, b"answer", produced_at=NOW, next_update=NOW + timedelta(hours=1))
    # Same CertID, other bytes (say hash parameters absent): the cached echo would not match.
    other_encoding = CertId(*cid.issuer_key, cid.serial, der=b"\x30\x00")
    assert other_encoding == cid
    assert cache.get(lookup, other_encoding, NOW) is None
    assert cache.get(lookup, cid, NOW).der == b"answer"


def test_cache_expires_before_next_update(registry, reg_pki):
    cache = ResponseCache(refresh_margin=timedelta(minutes=10))
    cid = _cert_id(reg_pki.leaves[11], reg_pki.ec_ca)  # an unknown serial is cacheable too
    lookup = registry.lookup(cid)
    cache.put(lookup, cid, b"unknown", produced_at=NOW, next_update=NOW + timedelta(hours=1))
    assert cache.get(lookup, cid, NOW + timedelta(minutes=49, seconds=59)) is not None
    assert cache.get(lookup, cid, NOW + timedelta(minutes=50)) is None
    assert len(cache) == 0  # the expired entry was dropped, not kept


def test_cache_is_a_bounded_lru(registry, reg_pki):
    cache = ResponseCache(max_entries=2)
    ids = [CertId(*_cert_id(reg_pki.leaves[10], reg_pki.ec_ca).issuer_key, serial) for serial in (20, 21, 22)]
    lookups = [registry.lookup(cid) for cid in ids]
    for lookup, cid in zip(lookups[:2], ids[:2]):
        cache.put(lookup, cid, b"x", produced_at=NOW, next_update=NOW + timedelta(hours=1))
    assert cache.get(lookups[0], ids[0], NOW) is not None  # 20 is now the most recent
    cache.put(lookups[2], ids[2], b"x", produced_at=NOW, next_update=NOW + timedelta(hours=1))
    assert len(cache) == 2
    assert cache.get(lookups[1], ids[1], NOW) is None  # 21 was the least recently used
    assert cache.get(lookups[0], ids[0], NOW) is not None and cache.get(lookups[2], ids[2], NOW) is not None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        ResponseCache(max_entries=0)


def test_only_single_nonce_less_requests_are_cacheable(registry):
    cid = CertId("sha1", b"\x00" * 20, b"\x00" * 20, 1)
    assert ResponseCache.cacheable(ParsedRequest((cid,), None))
    assert not ResponseCache.cacheable(ParsedRequest((cid,), b"nonce"))
    assert not ResponseCache.cacheable(ParsedRequest((cid, cid), None))
    with pytest.raises(ValueError, match="never cached"):
        ResponseCache().get(registry.lookup(cid), cid, NOW)


def test_the_response_cache_is_bounded_in_bytes_as_well_as_entries(reg_pki):
    registry = Registry()
    issuer_der = _der(reg_pki.ec_ca)
    registry.add_issuer("i", issuer_der)
    cache = ResponseCache(max_entries=1000, max_bytes=10_000)
    now = NOW
    for serial in range(100):
        cert_id = CertId("sha1", *issuer_hashes(issuer_der)["sha1"], serial)
        cache.put(registry.lookup(cert_id), cert_id, b"x" * 1000, produced_at=now, next_update=now + timedelta(hours=1))
    assert len(cache) == 10 and cache.size_bytes == 10_000  # the oldest went first
    newest = CertId("sha1", *issuer_hashes(issuer_der)["sha1"], 99)
    assert cache.get(registry.lookup(newest), newest, now) is not None
    oldest = CertId("sha1", *issuer_hashes(issuer_der)["sha1"], 0)
    assert cache.get(registry.lookup(oldest), oldest, now) is None


# -- the compact record (issue 14: a million in every worker) --------------------------------------

import dataclasses  # noqa: E402
import gc  # noqa: E402
import tracemalloc  # noqa: E402
import uuid  # noqa: E402

from hypothesis import given, strategies as st  # noqa: E402

from services.ocsp.responder.registry import CertificateRecord  # noqa: E402
from services.ocsp.responder.responses import REVOCATION_REASONS  # noqa: E402
from services.ocsp.state.apply import load_certificates  # noqa: E402
from shared.holders import Holder, holder_key  # noqa: E402

_moments = st.one_of(st.none(), st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                             timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2))])))
_records = st.fixed_dictionaries({
    "issuer_id": st.sampled_from(["issuer-1", str(uuid.UUID(int=7))]),
    "serial": st.integers(0, (1 << 160) - 1),
    "certificate_id": st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.text(max_size=40)),
    "username": st.sampled_from(["12433636_CAS-B", "1800101221144_CAS-CJ", "odd", "_CAS-B"]),
    "cas": st.sampled_from(["B", "CJ"]),
    "status": st.sampled_from(["good", "revoked"]),
    "suspended": st.booleans(),
    "suspended_at": _moments, "revoked_at": _moments,
    "revocation_reason": st.one_of(st.none(), st.sampled_from(sorted(REVOCATION_REASONS))),
    "version": st.integers(0, 1 << 40),
    "changed_at": _moments, "not_before": _moments, "not_after": _moments,
    "provider_cui": st.one_of(st.none(), st.sampled_from(["12433636", "1800101221144", "99", ""])),
    "revoked_by_issuer": st.booleans(),
    "holder_key": st.one_of(st.none(), st.binary(min_size=24, max_size=24)),
})


@given(_records)
def test_a_record_gives_back_every_field_it_was_made_with(values):
    record = CertificateRecord(**values)
    assert record.fields() == values
    assert CertificateRecord(*(values[name] for name in CertificateRecord.FIELDS)) == record and hash(CertificateRecord(**values)) == hash(record)
    assert record.replace(version=values["version"] + 1).fields() == {**values, "version": values["version"] + 1}
    assert record.replace(version=values["version"] + 1) != record


def test_a_record_is_immutable_and_refuses_what_it_cannot_hold():
    record = CertificateRecord("issuer-1", 1, "c1", "12433636_CAS-B", "B")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "revoked"  # type: ignore[misc]
    with pytest.raises(ValueError, match="time zone"):
        CertificateRecord("issuer-1", 1, "c1", "12433636_CAS-B", "B", changed_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown revocation reason"):
        CertificateRecord("issuer-1", 1, "c1", "12433636_CAS-B", "B", revocation_reason="bored")
    assert "revocation_reason=None" in repr(record) and "12433636_CAS-B" in repr(record)


def test_a_loaded_registry_holds_well_under_a_kilobyte_a_certificate():
    """What bench.national measures in the real service at a million (there: RSS), here
    on 20,000 rows as the database gives them, every object the registry keeps counted."""
    issuers = [uuid.uuid4() for _ in range(3)]
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def rows(lo: int, hi: int) -> list[dict]:
        return [{"issuer_id": issuers[k % 3], "serial": (1 << 126) | (k * 7919), "certificate_id": uuid.uuid4(),
                 "username": f"{10_000_000 + k}_CAS-B", "cas": "CJ" if k % 2 else "B",
                 "provider_cui": str(10_000_000 + k), "status": "suspended" if k % 100 == 0 else "active",
                 "suspended_at": at + timedelta(seconds=k) if k % 100 == 0 else None, "revoked_at": None,
                 "revocation_reason": None, "not_before": at + timedelta(seconds=k),
                 "not_after": at + timedelta(days=730, seconds=k), "changed_at": at + timedelta(seconds=k + 1),
                 "holder": Holder(f"2.5.4.6=ro;2.5.4.97=vatro-{10_000_000 + k};2.5.4.3=medic {k:07d}",
                                  f"pnoro-{1_800_101_000_000 + k}", f"vatro-{10_000_000 + k}").to_json(),
                 "issuer_revoked_at": None, "issuer_revocation_reason": None, "der_for_holder": None}
                for k in range(lo, hi)]

    n = 20_000
    registry = Registry()
    gc.collect()
    tracemalloc.start()
    try:
        for lo in range(0, n, 5_000):
            load_certificates(registry, rows(lo, lo + 5_000))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(registry) == n
    first = registry.certificate(str(issuers[0]), 1 << 126)
    assert first.suspended and first.provider_cui == "10000000" and first.holder_key == holder_key(
        Holder("2.5.4.6=ro;2.5.4.97=vatro-10000000;2.5.4.3=medic 0000000", "pnoro-1800101000000", "vatro-10000000"))
    assert held / n <= 800, f"{held / n:.0f} bytes a certificate"
