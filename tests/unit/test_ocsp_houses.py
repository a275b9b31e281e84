"""One certificate, several houses (issue 15): the OCSP answer across houses
(services/ocsp/state/houses.py) and each house's record kept for the online channel."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.ocsp.responder.codec import CertId
from services.ocsp.responder.registry import Registry
from services.ocsp.state.apply import apply_certificate, forget_certificate

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
ISSUER, SERIAL = "11111111-1111-1111-1111-111111111111", 4242


def state(username: str, status: str = "active", at: datetime = T0, **extra) -> dict:
    cas = username.split("_CAS-")[1]
    return {"issuer_id": ISSUER, "serial": str(SERIAL), "certificate_id": f"0000000{len(cas)}-0000-0000-0000-"
            f"{abs(hash(username)) % 10**12:012d}", "username": username, "cas": cas, "provider_cui": "12433636",
            "status": status, "changed_at": at.isoformat(),
            "suspended_at": at.isoformat() if status == "suspended" else None,
            "revoked_at": at.isoformat() if status == "revoked" else None,
            "revocation_reason": "key_compromise" if status == "revoked" else None, **extra}


def answer(registry: Registry):
    record = registry.certificate(ISSUER, SERIAL)
    return None if record is None else record.answer(CertId("sha1", b"", b"", SERIAL))


def test_good_while_one_house_has_it_unsuspended_and_hold_when_all_suspended():
    registry = Registry()
    apply_certificate(registry, state("12433636_CAS-B"))
    apply_certificate(registry, state("12433636_CAS-CJ"))
    assert answer(registry).status == "good"
    apply_certificate(registry, state("12433636_CAS-CJ", "suspended", T0 + timedelta(minutes=1)))
    assert answer(registry).status == "good"
    # The online channel decides per user: CJ's is suspended, B's is not.
    assert registry.house_record(ISSUER, SERIAL, "12433636_CAS-CJ").suspended
    assert not registry.house_record(ISSUER, SERIAL, "12433636_CAS-B").suspended
    apply_certificate(registry, state("12433636_CAS-B", "suspended", T0 + timedelta(minutes=2)))
    held = answer(registry)
    assert (held.status, held.revocation_reason, held.revoked_at) == ("revoked", "certificate_hold", T0 + timedelta(minutes=2))
    apply_certificate(registry, state("12433636_CAS-CJ", "active", T0 + timedelta(minutes=3)))
    assert answer(registry).status == "good" and registry.certificate(ISSUER, SERIAL).username == "12433636_CAS-CJ"


def test_revoked_anywhere_is_revoked_and_a_forgotten_house_leaves_the_others_answer():
    registry = Registry()
    apply_certificate(registry, state("12433636_CAS-B"))
    apply_certificate(registry, state("12433636_CAS-CJ", "revoked", T0 + timedelta(minutes=5)))
    revoked = answer(registry)
    assert (revoked.status, revoked.revocation_reason) == ("revoked", "key_compromise")
    forget_certificate(registry, ISSUER, SERIAL, "12433636_CAS-CJ")
    assert answer(registry).status == "good"
    assert [r.username for r in registry.user_records("12433636_CAS-B")] == ["12433636_CAS-B"]
    forget_certificate(registry, ISSUER, SERIAL, "12433636_CAS-B")
    assert answer(registry) is None and registry.user_records("12433636_CAS-B") == ()


def test_an_older_state_of_one_house_changes_nothing():
    registry = Registry()
    apply_certificate(registry, state("12433636_CAS-B", "suspended", T0 + timedelta(minutes=9)))
    assert not apply_certificate(registry, state("12433636_CAS-B", "active", T0))
    assert answer(registry).status == "revoked"


def test_a_row_stored_before_its_holder_was_gets_it_from_its_der():
    from shared.holders import holder_key, holder_of
    from tests.support.pki import TestPki, client

    pki = TestPki.at(T0, "houses-backfill")
    leaf = client(pki.issuing, pki.name("Dr Backfill"), now=T0)
    registry = Registry()
    apply_certificate(registry, {**state("12433636_CAS-B"), "holder": None, "der_for_holder": leaf.der})
    assert registry.house_record(ISSUER, SERIAL, "12433636_CAS-B").holder_key == holder_key(holder_of(leaf.cert.subject))
    apply_certificate(registry, {**state("12433636_CAS-CJ"), "holder": holder_of(leaf.cert.subject).to_json()})
    assert registry.house_record(ISSUER, SERIAL, "12433636_CAS-CJ").holder_key == holder_key(holder_of(leaf.cert.subject))
