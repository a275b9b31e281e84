"""keygen settings from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.keygen.config import Config
from shared.config import ConfigError


def test_defaults_follow_the_data_dir(tmp_path: Path):
    config = Config.from_env({"SIUI_DATA_DIR": str(tmp_path)})
    assert config.port == 8101
    assert config.common.license_pepper_path == tmp_path / "secrets" / "license-pepper"
    assert (config.docsign_cert, config.docsign_key) == (tmp_path / "pki" / "docsign.pem",
                                                         tmp_path / "pki" / "docsign.key")
    assert config.docsign_chain == () and config.common.trusted_proxies == frozenset()
    assert (config.max_failures, config.failure_window_minutes) == (100, 15)
    assert (config.ipv6_prefix, config.attempts_retention_days) == (64, 30)


def test_everything_can_be_set(tmp_path: Path):
    config = Config.from_env({
        "SIUI_DATA_DIR": str(tmp_path), "SIUI_KEYGEN_PORT": "9101",
        "SIUI_KEYGEN_DOCSIGN_CERT": str(tmp_path / "c.pem"), "SIUI_KEYGEN_DOCSIGN_KEY": str(tmp_path / "k.pem"),
        "SIUI_KEYGEN_DOCSIGN_CHAIN": f"{tmp_path / 'a.pem'}, {tmp_path / 'b.pem'}",
        "SIUI_KEYGEN_PEPPER_FILE": str(tmp_path / "p"), "SIUI_ACTIVATION_MAX_FAILURES": "3",
        "SIUI_ACTIVATION_WINDOW_MINUTES": "60", "SIUI_KEYGEN_TRUSTED_PROXIES": "10.0.0.1, ::1",
        "SIUI_KEYGEN_PDF_WORKERS": "4", "SIUI_ACTIVATION_LOG_DAYS": "7",
        "SIUI_ACTIVATION_IPV6_PREFIX": "56"})
    assert config.port == 9101 and config.docsign_cert == tmp_path / "c.pem"
    assert config.docsign_chain == (tmp_path / "a.pem", tmp_path / "b.pem")
    assert (config.max_failures, config.failure_window_minutes) == (3, 60)
    assert config.common.trusted_proxies == frozenset({"10.0.0.1", "::1"})
    assert (config.pdf_workers, config.attempts_retention_days, config.ipv6_prefix) == (4, 7, 56)


@pytest.mark.parametrize("env", [{"SIUI_ACTIVATION_MAX_FAILURES": "0"},
                                 {"SIUI_ACTIVATION_WINDOW_MINUTES": "soon"},
                                 {"SIUI_ACTIVATION_WINDOW_MINUTES": "1441"},
                                 {"SIUI_ACTIVATION_LOG_DAYS": "0"},
                                 {"SIUI_ACTIVATION_IPV6_PREFIX": "129"},
                                 {"SIUI_KEYGEN_TRUSTED_PROXIES": "proxy.local"}])
def test_bad_values_stop_the_start(env):
    with pytest.raises(ConfigError):
        Config.from_env(env)
