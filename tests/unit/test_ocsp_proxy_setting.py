"""SIUI_ONLINE_PROXY_PROTOCOL: read from the environment, and refused without the trust
list it believes headers by."""
from __future__ import annotations

import pytest

from services.ocsp.config import Config
from shared.config import ConfigError


def test_off_unless_said():
    assert Config.from_env({}).online_proxy_protocol is False


def test_on_with_the_balancers_and_a_header_time_bound():
    config = Config.from_env({"SIUI_ONLINE_PROXY_PROTOCOL": "on", "SIUI_TRUSTED_PROXIES": "10.0.0.5, 10.0.0.6",
                              "SIUI_ONLINE_PROXY_HEADER_TIMEOUT": "2.5"})
    assert config.online_proxy_protocol and config.online_proxy_header_timeout == 2.5
    assert config.common.trusted_proxies == {"10.0.0.5", "10.0.0.6"}


def test_on_without_trusted_proxies_stops_the_start():
    with pytest.raises(ConfigError, match="SIUI_TRUSTED_PROXIES"):
        Config.from_env({"SIUI_ONLINE_PROXY_PROTOCOL": "on"})


@pytest.mark.parametrize("env, complaint", [({"SIUI_ONLINE_PROXY_PROTOCOL": "maybe"}, "true or false"),
                                            ({"SIUI_ONLINE_PROXY_HEADER_TIMEOUT": "0"}, "at least"),
                                            ({"SIUI_ONLINE_PROXY_HEADER_TIMEOUT": "600"}, "at most")])
def test_malformed_values_are_named(env, complaint):
    with pytest.raises(ConfigError, match=complaint):
        Config.from_env(env)
