"""services.ocsp.state: applying certificate states (rows or events) to the registry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.ocsp.config import Config, ConfigError
from services.ocsp.responder.registry import Registry
from services.ocsp.state.apply import apply_certificate

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def _row(status: str = "active", at: datetime = T0, **changes) -> dict:
    row = {"issuer_id": "ca", "serial": 12, "certificate_id": "c-12", "username": "12433636_CAS-B", "cas": "B",
           "provider_cui": "12433636", "status": status, "revocation_reason": None,
           "suspended_at": at if status == "suspended" else None, "revoked_at": at if status == "revoked" else None,
           "not_before": None, "not_after": None, "changed_at": at, "issuer_revoked_at": None,
           "issuer_revocation_reason": None}
    row.update(changes)
    return row


def test_the_issuers_revocation_is_answered_with_its_time_and_reason():
    registry = Registry()
    by_issuer = T0 - timedelta(days=2)
    assert apply_certificate(registry, _row("active", T0, issuer_revoked_at=by_issuer,
                                                             issuer_revocation_reason="key_compromise"))
    record = registry.certificate("ca", 12)
    assert record.status == "revoked" and record.revoked_by_issuer
    assert record.revoked_at == by_issuer and record.revocation_reason == "key_compromise"
    # A house's later suspension does not hide it: still the issuer's revocation.
    assert apply_certificate(registry, _row("suspended", T0 + timedelta(minutes=1),
                                                             issuer_revoked_at=by_issuer,
                                                             issuer_revocation_reason="key_compromise"))
    record = registry.certificate("ca", 12)
    assert record.status == "revoked" and record.revoked_by_issuer and record.suspended
    # SIUI's own revocation stands as SIUI's.
    assert apply_certificate(registry, _row("revoked", T0 + timedelta(minutes=2),
                                                             revocation_reason="superseded",
                                                             issuer_revoked_at=by_issuer,
                                                             issuer_revocation_reason="key_compromise"))
    record = registry.certificate("ca", 12)
    assert not record.revoked_by_issuer and record.revocation_reason == "superseded"


def test_newest_state_wins_whatever_the_order():
    registry = Registry()
    assert apply_certificate(registry, _row("suspended", T0 + timedelta(minutes=1)))
    assert not apply_certificate(registry, _row("active", T0))  # older: ignored
    record = registry.certificate("ca", 12)
    assert record.suspended and record.suspended_at == T0 + timedelta(minutes=1)
    assert apply_certificate(registry, _row("revoked", T0 + timedelta(minutes=2),
                                                             revocation_reason="key_compromise"))
    record = registry.certificate("ca", 12)
    assert record.status == "revoked" and record.revocation_reason == "key_compromise" and not record.suspended


def test_an_identical_state_keeps_the_version_so_cached_answers_stay():
    registry = Registry()
    apply_certificate(registry, _row())
    version = registry.certificate("ca", 12).version
    assert not apply_certificate(registry, _row())  # the same again
    assert registry.certificate("ca", 12).version == version


def test_an_unknown_revocation_reason_is_left_out_not_refused():
    registry = Registry()
    apply_certificate(registry, _row("revoked", revocation_reason="some_future_reason"))
    record = registry.certificate("ca", 12)
    assert record.status == "revoked" and record.revocation_reason is None


def test_config_from_env(tmp_path):
    config = Config.from_env({"SIUI_DATA_DIR": str(tmp_path), "SIUI_OCSP_MAX_AGE": "30"})
    assert (config.port, config.tls_port, config.max_age_seconds, config.validity_seconds) == (8104, 8443, 30, 3600)
    assert config.responder_cert == tmp_path / "pki" / "responder.pem"
    for bad in ({"SIUI_OCSP_MAX_AGE": "7200"}, {"SIUI_OCSP_VALIDITY": "10"}, {"SIUI_OCSP_WORKERS": "0"}):
        try:
            Config.from_env({"SIUI_DATA_DIR": str(tmp_path), **bad})
        except ConfigError:
            continue
        raise AssertionError(f"{bad} accepted")


# -- events applied straight to the registry (issue 14: responders follow the broker) ----------

CA = "5f0c8a9e-2b1d-4c3e-8f7a-6d5e4c3b2a19"


def _event(status: str, at: datetime, event_type=None, **fields):
    from shared.events import (CertificateRegistered, CertificateRevoked, CertificateRevokedByIssuer,
                               CertificateSuspended, new_envelope)

    cls = event_type or {"active": CertificateRegistered, "suspended": CertificateSuspended,
                         "revoked": CertificateRevoked, "by_issuer": CertificateRevokedByIssuer}[status]
    return new_envelope(cls(certificate_id="c-12", issuer_id=CA, serial="12", username="12433636_CAS-B",
                            provider_cui="12433636", status="active" if status == "by_issuer" else status,
                            changed_at=at.isoformat(), **fields), "B")


def _apply_event(registry: Registry, envelope) -> bool:
    from services.ocsp.state.apply import certificate_state

    state = certificate_state(envelope, registry.house_record(CA, 12, "12433636_CAS-B"))
    return state is not None and apply_certificate(registry, state)


def test_an_event_merges_as_the_tables_merge_a_row():
    registry = Registry()
    assert _apply_event(registry, _event("active", T0))
    assert _apply_event(registry, _event("suspended", T0 + timedelta(minutes=1)))
    # A repeated suspension keeps the hold's start.
    _apply_event(registry, _event("suspended", T0 + timedelta(minutes=2)))
    assert registry.certificate(CA, 12).suspended_at == T0 + timedelta(minutes=1)
    # An older event, and the same one again, change nothing.
    version = registry.certificate(CA, 12).version
    assert not _apply_event(registry, _event("active", T0 + timedelta(seconds=30)))
    assert registry.certificate(CA, 12).version == version and registry.certificate(CA, 12).suspended


def test_the_issuers_revocation_stays_and_siuis_revocation_is_final():
    registry = Registry()
    by_issuer = T0 - timedelta(days=1)
    _apply_event(registry, _event("by_issuer", T0, issuer_revoked_at=by_issuer.isoformat(),
                                  issuer_revocation_reason="key_compromise"))
    # A later event of a publisher that does not carry the issuer's word yet keeps it.
    _apply_event(registry, _event("suspended", T0 + timedelta(minutes=1)))
    record = registry.certificate(CA, 12)
    assert record.revoked_by_issuer and record.revoked_at == by_issuer and record.suspended
    _apply_event(registry, _event("revoked", T0 + timedelta(minutes=2), reason="superseded"))
    assert not _apply_event(registry, _event("active", T0 + timedelta(minutes=3)))  # final
    record = registry.certificate(CA, 12)
    assert record.status == "revoked" and not record.revoked_by_issuer and record.revocation_reason == "superseded"


def test_pre_signed_answers_travel_bounded_and_the_newest_stays():
    import pytest

    from services.ocsp.responder.presigned import PresignedStore, presigned_answer
    from services.ocsp.state.apply import presigned_event_answers, presigned_rows, put_newer
    from services.ocsp.state.presigner import message_parts
    from shared.events import EventDecodeError

    issuer = "0b8f1c2e-7a53-4a4f-9c1e-3f1d2b6a9e10"
    older = presigned_answer(b"\x30\x01", "good", b"k", T0, T0 + timedelta(hours=1), b"id")
    newer = presigned_answer(b"\x30\x02", "revoked", b"k", T0 + timedelta(seconds=5), T0 + timedelta(hours=1), b"id")
    rows = presigned_rows(presigned_event_answers([((issuer, 12, "sha1"), newer)]))
    assert rows[0]["der"] == b"\x30\x02" and rows[0]["serial"] == 12 and rows[0]["produced_at"] == newer[3]
    store = PresignedStore()
    assert put_newer(store, [((issuer, 12, "sha1"), newer)]) == 1
    assert put_newer(store, [((issuer, 12, "sha1"), older)]) == 0   # late: the newer stays
    assert put_newer(store, [((issuer, 12, "sha1"), newer)]) == 0   # the same bytes again
    with pytest.raises(EventDecodeError):
        presigned_rows([{"der": "not base64!"}])
    with pytest.raises(EventDecodeError):
        presigned_rows([{}] * 5000)
    batch = [((issuer, n, "sha1"), presigned_answer(b"x" * 400, "good", b"k", T0, T0, b"id")) for n in range(10)]
    assert [len(part) for part in message_parts(batch, limit=1000)] == [2, 2, 2, 2, 2]
