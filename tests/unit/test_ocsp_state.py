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
