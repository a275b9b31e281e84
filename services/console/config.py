"""Settings of the console, read once from the environment at start."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import CommonConfig, ConfigError, env_float, env_str, service_port, service_url

BACKENDS = ("keygen", "users", "certs", "ocsp")


@dataclass(frozen=True)
class Config:
    """console settings. Each field: env var, default, why.

    common: the settings every service shares (``shared.config.CommonConfig``); the
        console uses data_dir (the cookie key is derived from ``secrets/data-key``), the
        broker URL and exchange (queue depths on the dashboard) and the token public key.
    port: SIUI_CONSOLE_PORT, default 8100 (the contract's).
    backends: SIUI_<SERVICE>_URL for keygen, users, certs and ocsp, default
        http://127.0.0.1:<their port>; the console only ever calls their JSON APIs.
    secure_cookie: SIUI_CONSOLE_SECURE_COOKIE, default false. True when the console is
        served over TLS (behind a proxy): the session cookie is then ``Secure`` and named
        with the ``__Host-`` prefix. Off by default because the dev console is plain
        http://127.0.0.1, where a Secure cookie would never come back.
    api_timeout: SIUI_CONSOLE_API_TIMEOUT, default 15 seconds for one call to a service;
        signing the agreement PDF is the slowest call and takes well under that.
    """

    common: CommonConfig
    port: int
    backends: dict[str, str]
    secure_cookie: bool = False
    api_timeout: float = 15.0


    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        secure = env_str(env, "SIUI_CONSOLE_SECURE_COOKIE", "false").lower()
        if secure not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError("SIUI_CONSOLE_SECURE_COOKIE must be true or false")
        timeout = env_float(env, "SIUI_CONSOLE_API_TIMEOUT", 15.0)
        if not 0 < timeout <= 300:
            raise ConfigError("SIUI_CONSOLE_API_TIMEOUT must be between 0 and 300 seconds")
        return cls(common=CommonConfig.from_env(env), port=service_port(env, "console"),
                   backends={name: service_url(env, name) for name in BACKENDS},
                   secure_cookie=secure in ("true", "1", "yes"), api_timeout=timeout)
