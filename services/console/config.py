"""Settings of the console, read once from the environment at start."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import SERVICE_PORTS, CommonConfig, service_port, service_url, setting, settings_from_env, settle

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
    secure_cookie: SIUI_CONSOLE_SECURE_COOKIE. True when the console is always
        served over TLS: the session cookie is then ``Secure`` and named with the
        ``__Host-`` prefix, and answers carry Strict-Transport-Security. Without it the
        same is decided per request: so when a trusted proxy (``common.trusted_proxies``)
        says ``X-Forwarded-Proto: https``. Off by default because the dev console is plain
        http://127.0.0.1, where a Secure cookie would never come back.
    api_timeout: SIUI_CONSOLE_API_TIMEOUT: seconds for one call to a service;
        signing the agreement PDF is the slowest call and takes well under that.
    """

    common: CommonConfig
    backends: dict[str, str]
    port: int = SERVICE_PORTS["console"]
    secure_cookie: bool = setting("SIUI_CONSOLE_SECURE_COOKIE", False)
    api_timeout: float = setting("SIUI_CONSOLE_API_TIMEOUT", 15.0, minimum=0.1, maximum=300)

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        return settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "console"),
                                 backends={name: service_url(env, name) for name in BACKENDS})
