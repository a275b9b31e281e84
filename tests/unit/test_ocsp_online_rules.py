"""The online channel's decision, its messages, and the trust store's issuer matching."""
from __future__ import annotations

import ssl
from datetime import datetime, timedelta, timezone

import pytest

from services.ocsp.online.keys import KeyRecord
from services.ocsp.online.trust import TrustStore
from services.ocsp.online.rules import (
    MESSAGES, REASONS, ClientCert, evaluate, message_for, pick_language,
)
from services.ocsp.responder.registry import CertificateRecord, Registry
from tests.support.pki import TestPki, client, root_ca

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
USER = "12433636_CAS-B"
CERT = ClientCert(12, NOW - timedelta(days=1), NOW + timedelta(days=30), "issuer-1", "ab" * 32)
KEY = KeyRecord(USER, "B", key_digest="00")
RECORD = CertificateRecord("issuer-1", 12, "cert-1", USER, "B")


def decide(cert=CERT, username=USER, key=KEY, record=RECORD, key_verdict="ok", now=NOW):
    return evaluate(cert, username, key, record, key_verdict, now).reason


def test_online_only_when_everything_holds():
    assert decide() is None


@pytest.mark.parametrize("change, reason", [
    ({"cert": None}, "certificate_missing"),
    ({"username": None}, "credentials_missing"),
    ({"key": None}, "unknown_user"),
    ({"key": KeyRecord(USER, "B", key_digest="00", deleted_at=NOW)}, "unknown_user"),
    ({"record": None}, "certificate_not_registered"),
    ({"record": CertificateRecord("issuer-1", 12, "cert-1", "999_CAS-B", "B")}, "certificate_other_user"),
    ({"record": CertificateRecord("issuer-1", 12, "cert-1", USER, "B", suspended=True,
                                  suspended_at=NOW)}, "certificate_suspended"),
    ({"record": CertificateRecord("issuer-1", 12, "cert-1", USER, "B", status="revoked",
                                  revoked_at=NOW)}, "certificate_revoked"),
    ({"now": NOW + timedelta(days=30)}, "certificate_expired"),
    ({"now": NOW - timedelta(days=2)}, "certificate_not_yet_valid"),
    ({"key_verdict": "wrong_key"}, "wrong_key"),
    ({"key_verdict": "key_replaced"}, "key_replaced"),
    ({"key_verdict": "key_malformed"}, "key_malformed"),
])
def test_each_refusal_has_its_reason(change, reason):
    assert decide(**change) == reason


def test_revocation_is_told_before_suspension():
    record = CertificateRecord("issuer-1", 12, "cert-1", USER, "B", status="revoked", revoked_at=NOW,
                               suspended=True, suspended_at=NOW)
    assert decide(record=record) == "certificate_revoked"


@pytest.mark.parametrize("header, language", [
    (None, "ro"), ("", "ro"), ("en", "en"), ("en-US,en;q=0.9", "en"), ("ro-RO,en;q=0.8", "ro"),
    ("de,en;q=0.5", "en"), ("en;q=0.3,ro;q=0.7", "ro"), ("fr", "ro"), ("en;q=zz", "ro"),
])
def test_language_follows_accept_language(header, language):
    assert pick_language(header) == language


def test_every_reason_has_both_messages_and_they_fill_in():
    assert set(REASONS) | {"online"} == set(MESSAGES)
    for code in MESSAGES:
        for language in ("ro", "en"):
            text = message_for(code, language, username=USER, serial="0C", date="2026-01-01")
            assert text and "{" not in text
    assert "2026-01-01" in message_for("certificate_expired", "en", date="2026-01-01")
    assert message_for("certificate_suspended", "ro").startswith("Certificatul digital este suspendat")


def test_trust_store_finds_the_issuer_that_signed_even_among_namesakes(pki):
    registry = Registry()
    first = root_ca("Same Name CA", now=NOW)
    second = root_ca("Same Name CA", now=NOW)  # a renewed CA: same subject, new key
    registry.add_issuer("first", first.der)
    trust = TrustStore(registry, pki.tls_server_cert, pki.tls_server_key)
    assert trust.context.verify_mode == ssl.CERT_OPTIONAL
    assert trust.refresh() and not trust.refresh()  # nothing new the second time
    registry.add_issuer("second", second.der)
    assert trust.refresh()
    leaf = client(second, "p", now=NOW, serial=77)
    seen = trust.inspect(leaf.der)
    assert (seen.issuer_id, seen.serial) == ("second", 77)
    assert trust.inspect(client(first, "p", now=NOW, serial=78).der).issuer_id == "first"
    stranger = root_ca("Stranger", now=NOW)
    assert trust.inspect(client(stranger, "p", now=NOW, serial=79).der).issuer_id is None
    # An issuer removed from the registry no longer resolves (TLS may still accept it).
    registry.remove_issuer("second")
    trust.refresh()
    assert trust.inspect(leaf.der).issuer_id is None


@pytest.mark.parametrize("leaf, reason", [("good", None), ("expired", "certificate_expired"),
                                          ("not_yet_valid", "certificate_not_yet_valid")])
def test_a_certificates_own_dates_decide_expired_and_not_yet_valid(pki, leaf, reason):
    world = TestPki.at(NOW)
    registry = Registry()
    registry.add_issuer("issuing", world.issuing.der)
    trust = TrustStore(registry, pki.tls_server_cert, pki.tls_server_key)
    trust.refresh()
    presented = getattr(world, leaf)
    seen = trust.inspect(presented.der)
    assert (seen.issuer_id, seen.serial) == ("issuing", presented.serial)
    record = CertificateRecord("issuing", presented.serial, "cert-1", USER, "B")
    assert decide(cert=seen, record=record) == reason
