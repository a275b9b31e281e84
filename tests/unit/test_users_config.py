"""users settings from the environment: the login limits."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.users.config import Config
from shared.config import ConfigError


def test_login_defaults(tmp_path: Path):
    config = Config.from_env({"SIUI_DATA_DIR": str(tmp_path)})
    assert (config.max_failed_logins, config.lockout_minutes) == (5, 15)
    assert (config.login_concurrency, config.login_queue) == (2, 16)
    assert (config.login_per_address, config.login_global_per_second) == (30, 20)


def test_login_limits_can_be_set(tmp_path: Path):
    config = Config.from_env({
        "SIUI_DATA_DIR": str(tmp_path), "SIUI_LOGIN_CONCURRENCY": "4", "SIUI_LOGIN_QUEUE": "0",
        "SIUI_LOGIN_PER_ADDRESS_PER_MINUTE": "120", "SIUI_LOGIN_GLOBAL_PER_SECOND": "50",
        "SIUI_LOGIN_MAX_FAILURES": "10", "SIUI_LOGIN_LOCKOUT_MINUTES": "60"})
    assert (config.login_concurrency, config.login_queue) == (4, 0)
    assert (config.login_per_address, config.login_global_per_second) == (120, 50)
    assert (config.max_failed_logins, config.lockout_minutes) == (10, 60)


@pytest.mark.parametrize("env", [{"SIUI_LOGIN_CONCURRENCY": "0"}, {"SIUI_LOGIN_CONCURRENCY": "65"},
                                 {"SIUI_LOGIN_QUEUE": "-1"}, {"SIUI_LOGIN_PER_ADDRESS_PER_MINUTE": "0"},
                                 {"SIUI_LOGIN_GLOBAL_PER_SECOND": "many"},
                                 {"SIUI_LOGIN_LOCKOUT_MINUTES": "100000"}])
def test_bad_login_limits_stop_the_start(env):
    with pytest.raises(ConfigError):
        Config.from_env(env)
