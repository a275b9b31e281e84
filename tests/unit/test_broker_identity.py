"""Who may publish what, and how a service finds its broker login: shared.broker's naming
rule, shared.inbox's forgery check, and broker_url's reading of the data directory."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.broker import PUBLISHERS, SERVICES, TOPOLOGY, broker_url, publisher_of, read_secret, secret_path
from shared.config import DEFAULT_AMQP_URL, CommonConfig, ConfigError
from shared.events import EVENT_TYPES, Envelope, KeyIssued, SessionRevoked, new_envelope
from shared.inbox import forgery

PASSWORD = "0f" * 32


def test_every_event_type_is_published_by_the_service_its_routing_key_names():
    for event in EVENT_TYPES.values():
        word = event.ROUTING_KEY.partition(".")[0]
        assert PUBLISHERS.get(word) == word, event.TYPE
    assert set(PUBLISHERS.values()) <= set(SERVICES)


def test_every_queue_is_bound_only_to_published_keys_and_named_by_its_consumer():
    names = [spec.name for spec in TOPOLOGY]
    for spec in TOPOLOGY:
        assert spec.service in SERVICES and spec.service != "console"
        assert all(publisher_of(key) for key in spec.routing_keys), spec
        # The permissions match a queue by the end of its name: none may end another's.
        assert not [other for other in names if other != spec.name and other.endswith("." + spec.name)]


def message(routing_key: str, user_id: str | None):
    return SimpleNamespace(routing_key=routing_key, user_id=user_id)


def test_an_event_from_its_publishers_user_is_believed():
    assert forgery(message("keygen.key_issued", "siui-keygen"), "siui-") is None
    assert forgery(message("users.session_revoked", "siui-users"), "siui-") is None


@pytest.mark.parametrize("user_id", [None, "", "guest", "siui-certs", "siui-keygen ", "SIUI-KEYGEN"])
def test_a_key_issued_from_anyone_else_is_forged(user_id):
    assert forgery(message("keygen.key_issued", user_id), "siui-") is not None


def test_the_prefix_is_the_deployments_naming_rule():
    assert forgery(message("keygen.key_issued", "cas-b-keygen"), "cas-b-") is None
    assert forgery(message("keygen.key_issued", "siui-keygen"), "cas-b-") is not None


def test_a_routing_key_no_service_publishes_under_is_forged():
    assert forgery(message("console.anything", "siui-console"), "siui-") is not None
    assert forgery(message("", "siui-keygen"), "siui-") is not None


def test_an_event_type_under_another_services_key_is_forged():
    """certs may publish certs.*, but not a KeyIssued there (consumers act on the type)."""
    body = new_envelope(KeyIssued(provider_id="1", cui="1", provider_code="1", provider_name="x", key_id="k",
                                  key_digest="00", reset=False, issued_at="2026-01-01T00:00:00+00:00",
                                  issued_by="x", external_user="1_CAS-B"), "B")
    assert forgery(message("certs.certificate_registered", "siui-certs"), "siui-", body) is not None
    assert forgery(message("keygen.key_issued", "siui-keygen"), "siui-", body) is None


def test_an_unknown_event_type_from_the_right_publisher_is_not_forged():
    """Producers move first: a type this code does not know yet is ignored, not refused."""
    body = Envelope(id="00000000-0000-0000-0000-000000000000", type="KeyRevoked", version=1,
                    occurred_at="2026-01-01T00:00:00+00:00", cas="B", data={})
    assert forgery(message("keygen.key_revoked", "siui-keygen"), "siui-", body) is None


def test_a_logout_from_anyone_but_users_is_forged():
    body = new_envelope(SessionRevoked(jti="j", username="admin", expires_at="2026-01-01T00:00:00+00:00"), "CNAS")
    assert forgery(message("users.session_revoked", "siui-certs"), "siui-", body) is not None
    assert forgery(message("users.session_revoked", "siui-users"), "siui-", body) is None


# -- broker_url -----------------------------------------------------------------------------

def write_secret(data_dir: Path, service: str, text: str = PASSWORD, mode: int = 0o600) -> Path:
    path = secret_path(data_dir, service)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_default_url_names_no_user():
    assert "@" not in DEFAULT_AMQP_URL
    assert CommonConfig.from_env({}).amqp_user_prefix == "siui-"


def test_a_service_logs_in_as_itself_with_the_password_from_the_data_dir(tmp_path):
    write_secret(tmp_path, "keygen", "a/b:c@d")
    url = broker_url("amqp://broker.example:5673/siui", tmp_path, "keygen")
    assert url == "amqp://siui-keygen:a%2Fb%3Ac%40d@broker.example:5673/siui"


def test_the_prefix_names_the_user(tmp_path):
    write_secret(tmp_path, "ocsp")
    assert broker_url("amqp://127.0.0.1:5672/", tmp_path, "ocsp", user_prefix="cas-b-").startswith(
        "amqp://cas-b-ocsp:")


def test_an_explicit_login_of_the_services_own_user_wins(tmp_path):
    url = "amqp://siui-users:from-vault@10.0.0.5:5672/"
    assert broker_url(url, tmp_path, "users") == url  # no file needed


@pytest.mark.parametrize("user", ["guest", "siui", "siui-keygen"])
def test_an_explicit_login_of_another_user_refuses_to_start(tmp_path, user):
    with pytest.raises(ConfigError) as refused:
        broker_url(f"amqp://{user}:pw-1f3e9@127.0.0.1:5672/", tmp_path, "certs")
    assert "siui-certs" in str(refused.value) and "pw-1f3e9" not in str(refused.value)
    assert "deploy/setup.sh" in str(refused.value)


def test_no_password_file_says_to_run_the_set_up(tmp_path):
    with pytest.raises(ConfigError, match="Run deploy/setup.sh"):
        broker_url("amqp://127.0.0.1:5672/", tmp_path, "keygen")


def test_a_password_file_others_can_read_is_refused(tmp_path):
    write_secret(tmp_path, "keygen", mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        broker_url("amqp://127.0.0.1:5672/", tmp_path, "keygen")


@pytest.mark.parametrize("text", ["", "   \n", "two words", "x" * 257, "tab\tinside", "nul\x00"])
def test_a_malformed_password_is_refused_without_showing_it(tmp_path, text):
    path = write_secret(tmp_path, "users", text)
    with pytest.raises(ConfigError) as refused:
        read_secret(path)
    assert text.strip() == "" or text.strip() not in str(refused.value)


def test_a_trailing_newline_is_not_part_of_the_password(tmp_path):
    assert read_secret(write_secret(tmp_path, "users", PASSWORD + "\n")) == PASSWORD


def test_the_user_prefix_setting_is_bounded():
    assert CommonConfig.from_env({"SIUI_AMQP_USER_PREFIX": "cas-b."}).amqp_user_prefix == "cas-b."
    for bad in ("x" * 33, "a b", "ü-", "a:b"):
        with pytest.raises(ConfigError, match="SIUI_AMQP_USER_PREFIX"):
            CommonConfig.from_env({"SIUI_AMQP_USER_PREFIX": bad})
