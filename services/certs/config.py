"""Settings of the certs service, read once from the environment at start."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from shared.clock import Clock
from shared.config import SERVICE_PORTS, CommonConfig, service_port, setting, settings_from_env, settle


@dataclass(frozen=True)
class Config:
    """certs settings.

    common: the settings every service shares (``shared.config.CommonConfig``).
    port: SIUI_CERTS_PORT, default 8103 (the contract's).
    pool_size: SIUI_CERTS_POOL_SIZE: database connections. Requests are short, and the
        two consumers (users, usage) hold one each only while applying an event.
    max_page_size: SIUI_CERTS_MAX_PAGE_SIZE: rows a listing page may ask for; a screen
        shows 20, a script exporting a house pages through at 100.
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["certs"]
    pool_size: int = setting("SIUI_CERTS_POOL_SIZE", 10, minimum=2, maximum=200)
    max_page_size: int = setting("SIUI_CERTS_MAX_PAGE_SIZE", 100, minimum=1, maximum=1000)

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        return settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "certs"))


CONFIG = web.AppKey("certs_config", Config)
CLOCK = web.AppKey("certs_clock", Clock)
