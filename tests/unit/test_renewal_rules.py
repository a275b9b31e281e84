"""The renewal hand-over's pure rules (issue 15): which registered certificate a presented
one follows and when a house approves automatically (certs), and when the online channel
says renewal_pending / renewal_rejected."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.certs import renewals
from services.ocsp.online.keys import KeyRecord
from services.ocsp.online.rules import ClientCert, evaluate, message_for, renewal_of
from services.ocsp.responder.registry import CertificateRecord
from shared import errors
from shared.holders import Holder, holder_key

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
POP = Holder("2.5.4.3=dr pop", "pnoro-1800101221144")
OTHER = Holder("2.5.4.3=dr ana")
USER = "12433636_CAS-B"


def registered(cid: str, holder=POP, status="active", days=30, **kw) -> renewals.Registered:
    return renewals.Registered(cid, holder, status, NOW + timedelta(days=days), **kw)


def test_a_renewal_follows_the_live_certificate_of_its_holder_valid_longest():
    found = renewals.followed(POP, [registered("a", days=10), registered("b", days=40), registered("c", OTHER, days=90),
                                    registered("d", status="revoked", days=99),
                                    registered("e", days=98, issuer_revoked=True)])
    assert found.certificate_id == "b"
    assert renewals.followed(OTHER, [registered("a")]) is None
    assert renewals.followed(POP, [registered("a", holder=None)]) is None


def test_automatic_approval_only_for_a_valid_unsuspended_old_certificate_and_only_when_switched_on():
    live = registered("a")
    assert renewals.auto_approvable(True, live, NOW)
    assert not renewals.auto_approvable(False, live, NOW)  # the national default
    assert not renewals.auto_approvable(True, registered("a", status="suspended"), NOW)
    assert not renewals.auto_approvable(True, live, NOW + timedelta(days=31))  # the old one expired
    assert not renewals.auto_approvable(True, registered("a", issuer_revoked=True), NOW)


def test_a_decision_is_final_and_a_rejection_says_why():
    renewals.check_pending("pending")
    with pytest.raises(errors.Conflict):
        renewals.check_pending("approved")
    assert renewals.rejection_reason("  lipsă formular  ") == "lipsă formular"
    for bad in ("", "   ", None, 3, "x" * 501):
        with pytest.raises(errors.Invalid):
            renewals.rejection_reason(bad)
    assert renewals.status_filter(None) is None and renewals.status_filter("approved") == "approved"
    with pytest.raises(errors.Invalid):
        renewals.status_filter("maybe")


def cert(holder=POP, issuer_id="ca", serial=77, **kw) -> ClientCert:
    return ClientCert(serial, NOW - timedelta(days=1), NOW + timedelta(days=365), issuer_id, "ff", holder=holder, **kw)


def record(username=USER, holder=POP, status="good") -> CertificateRecord:
    return CertificateRecord("ca", 1, "old-id", username, "B", status,
                             revoked_at=NOW if status == "revoked" else None,
                             holder_key=holder_key(holder) if holder is not None else None,
                             not_after=NOW + timedelta(days=20))


def test_the_online_channel_knows_a_renewal_of_the_users_own_live_certificate():
    assert renewal_of(cert(), USER, (record(),), refused=False) == ("renewal_pending", record())
    assert renewal_of(cert(), USER, (record(),), refused=True) == ("renewal_rejected", None)
    assert renewal_of(cert(OTHER), USER, (record(),), refused=False) is None
    assert renewal_of(cert(), USER, (record(status="revoked"),), refused=False) is None
    assert renewal_of(cert(), USER, (record(username="99999999_CAS-B"),), refused=False) is None
    assert renewal_of(cert(issuer_id=None), USER, (record(),), refused=False) is None
    assert renewal_of(cert(serial=1 << 200), USER, (record(),), refused=False) is None


def test_renewal_pending_is_said_only_to_the_right_key_and_within_validity():
    key = KeyRecord(USER, "B", key_digest="00")
    assert evaluate(cert(), USER, key, None, "ok", NOW, "renewal_pending").reason == "renewal_pending"
    assert evaluate(cert(), USER, key, None, "wrong_key", NOW, "renewal_pending").reason == "certificate_not_registered"
    later = NOW + timedelta(days=400)
    assert evaluate(cert(), USER, key, None, "ok", later, "renewal_pending").reason == "certificate_not_registered"
    assert evaluate(cert(), USER, key, None, "ok", NOW, None).reason == "certificate_not_registered"
    assert "motivul X" in message_for("renewal_rejected", "ro", serial="4D", reason="motivul X")
    assert "4D" in message_for("renewal_pending", "en", serial="4D")


def test_a_process_reports_one_certificate_of_one_user_once_per_interval():
    from services.ocsp.online.renewals import RenewalReporter

    clock = [0.0]
    reporter = RenewalReporter(pool=None, every=300.0, monotonic=lambda: clock[0])
    assert reporter.due(USER, cert()) and not reporter.due(USER, cert())
    assert reporter.due("99999999_CAS-B", cert())  # another user presenting it is its own report
    clock[0] = 301.0
    assert reporter.due(USER, cert())
