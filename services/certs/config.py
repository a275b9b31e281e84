"""Settings of the certs service, read once from the environment at start."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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

    The issuers' own status (their CRLs, fetched in the background):
    crl_fetch: SIUI_CERTS_CRL_FETCH: whether this process runs the fetcher (one per
        deployment is enough; several share the work through row claims).
    crl_hosts: SIUI_CERTS_CRL_HOSTS: comma-separated host names a CRL may be fetched from
        (each covers its subdomains); empty: any host with a public address.
    crl_allow_loopback: SIUI_CERTS_CRL_ALLOW_LOOPBACK: also 127.0.0.1/::1. Off in
        production; ``make up`` (deploy/run.py) turns it on so demos and tests can serve
        CRLs locally. Private and link-local addresses are never allowed.
    crl_max_bytes: SIUI_CERTS_CRL_MAX_BYTES: the largest CRL read (a qualified CA's full
        CRL is a few MB); a larger answer is a failure, not read further.
    crl_timeout_seconds: SIUI_CERTS_CRL_TIMEOUT: a whole download, connect included.
    crl_min_interval_seconds / crl_max_interval_seconds: SIUI_CERTS_CRL_MIN_INTERVAL /
        _MAX_INTERVAL: the next fetch is at the CRL's nextUpdate, within these bounds.
    crl_retry_seconds: SIUI_CERTS_CRL_RETRY: the next try after a failed fetch.
    crl_tick_seconds: SIUI_CERTS_CRL_TICK: the longest the fetcher sleeps without looking.

    The national Trusted List (POST /v1/trusted-list):
    trusted_list_operator_cert: SIUI_CERTS_TL_OPERATOR_CERT: the list operator's signing
        certificate (PEM), in SIUI_DATA_DIR unless absolute; the list's XML signature must
        verify with it. Absent: uploads are refused (409) until it is configured.
    trusted_list_max_bytes: SIUI_CERTS_TL_MAX_BYTES: the largest list read (Romania's is
        well under 2 MB).
    trusted_list_url: SIUI_CERTS_TL_URL: where POST /v1/trusted-list/fetch downloads the
        list (http/https; the CRL downloads' bounds: SIUI_CERTS_CRL_TIMEOUT, public
        addresses only unless SIUI_CERTS_CRL_ALLOW_LOOPBACK, no redirects). Empty: upload only.
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["certs"]
    pool_size: int = setting("SIUI_CERTS_POOL_SIZE", 10, minimum=2, maximum=200)
    max_page_size: int = setting("SIUI_CERTS_MAX_PAGE_SIZE", 100, minimum=1, maximum=1000)
    crl_fetch: bool = setting("SIUI_CERTS_CRL_FETCH", True)
    crl_hosts: str = setting("SIUI_CERTS_CRL_HOSTS", "")
    crl_allow_loopback: bool = setting("SIUI_CERTS_CRL_ALLOW_LOOPBACK", False)
    crl_max_bytes: int = setting("SIUI_CERTS_CRL_MAX_BYTES", 20 * 1024 * 1024, minimum=1024,
                                 maximum=200 * 1024 * 1024)
    crl_timeout_seconds: float = setting("SIUI_CERTS_CRL_TIMEOUT", 30.0, minimum=0.5, maximum=300.0)
    crl_min_interval_seconds: float = setting("SIUI_CERTS_CRL_MIN_INTERVAL", 300.0, minimum=0.1, maximum=86400.0)
    crl_max_interval_seconds: float = setting("SIUI_CERTS_CRL_MAX_INTERVAL", 6 * 3600.0, minimum=1.0,
                                              maximum=7 * 86400.0)
    crl_retry_seconds: float = setting("SIUI_CERTS_CRL_RETRY", 600.0, minimum=0.1, maximum=86400.0)
    crl_tick_seconds: float = setting("SIUI_CERTS_CRL_TICK", 60.0, minimum=0.05, maximum=3600.0)
    trusted_list_operator_cert: Path = setting("SIUI_CERTS_TL_OPERATOR_CERT", Path("trusted-list-operator.pem"),
                                               data_path=True)
    trusted_list_max_bytes: int = setting("SIUI_CERTS_TL_MAX_BYTES", 10 * 1024 * 1024, minimum=1024,
                                          maximum=100 * 1024 * 1024)
    trusted_list_url: str = setting("SIUI_CERTS_TL_URL", "")

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)

    @property
    def crl_allowed_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower().rstrip(".") for h in self.crl_hosts.split(",") if h.strip())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        return settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "certs"))


CONFIG = web.AppKey("certs_config", Config)
CLOCK = web.AppKey("certs_clock", Clock)
