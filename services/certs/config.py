"""Settings of the certs service, read once from the environment at start."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from shared.clock import Clock
from shared.config import CommonConfig, env_int, service_port


@dataclass(frozen=True)
class Config:
    """certs settings.

    common: the settings every service shares (``shared.config.CommonConfig``).
    port: SIUI_CERTS_PORT, default 8103 (the contract's).
    pool_size: SIUI_CERTS_POOL_SIZE, default 10 database connections: requests are short,
        and the two consumers (users, usage) hold one each only while applying an event.
    max_page_size: SIUI_CERTS_MAX_PAGE_SIZE, default 100 rows a listing page may ask for;
        a screen shows 20, a script exporting a house pages through at 100.
    """

    common: CommonConfig
    port: int
    pool_size: int = 10
    max_page_size: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        return cls(common=CommonConfig.from_env(env), port=service_port(env, "certs"),
                   pool_size=env_int(env, "SIUI_CERTS_POOL_SIZE", 10, minimum=2),
                   max_page_size=env_int(env, "SIUI_CERTS_MAX_PAGE_SIZE", 100, minimum=1))


CONFIG = web.AppKey("certs_config", Config)
CLOCK = web.AppKey("certs_clock", Clock)
