"""keygen settings, read once from the environment and validated before the service starts."""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import (SERVICE_PORTS, CommonConfig, ConfigError, env_str, service_port, setting,
                           settings_from_env, settle)


@dataclass(frozen=True)
class Config:
    """keygen settings. Each field: env var, default (in the field), why.

    port: SIUI_KEYGEN_PORT, default 8101 (the contract's port).
    (The licence pepper, the HMAC key under which serials are stored, is
    ``common.license_pepper_path``: the ocsp service checks serials with the same one.
    The reverse proxies whose X-Forwarded-For is believed are ``common.trusted_proxies``.)
    docsign_cert / docsign_key: SIUI_KEYGEN_DOCSIGN_CERT / SIUI_KEYGEN_DOCSIGN_KEY, by
        default in the data directory: the house's document-signing certificate and key
        that sign ``generatePassword.pdf``.
    docsign_chain: SIUI_KEYGEN_DOCSIGN_CHAIN, default none: intermediate certificates
        embedded in each signature (comma-separated PEM paths). The dev signer is issued
        straight by the root, which validators must trust anyway, so none is needed.
    max_failures: SIUI_ACTIVATION_MAX_FAILURES, default 100: refused activations (a
        well-formed serial that is not a current key of the house named) from one client
        address within the window before that address gets 429 instead of 403. Per
        address only, and generous: a clinic's or a whole county's NAT shares one address,
        typos are caught by the check character and never count, and the current key
        always activates. With 80 random bits per key the limit is not what stops guessing;
        it keeps a guesser's rows bounded and shows the campaign.
    failure_window_minutes: SIUI_ACTIVATION_WINDOW_MINUTES, default 15 (at most a day):
        how far back refusals count.
    ipv6_prefix: SIUI_ACTIVATION_IPV6_PREFIX, default 64: IPv6 clients are counted by
        this network prefix (a LAN has a /64; every device its own addresses in it);
        128 counts each address.
    pdf_workers: SIUI_KEYGEN_PDF_WORKERS: threads that render and sign agreements;
        signing is CPU-bound, so more threads than cores only queue.
    attempts_retention_days: SIUI_ACTIVATION_LOG_DAYS, default 30: activation attempts
        (successes and counted refusals: time, address, house, provider, outcome; never
        the serial) older than this are deleted by the hourly purge. The limit needs only
        the window's minutes; the rest is for inquiries (who tried a provider's old key).
    font_cache_dir: SIUI_KEYGEN_FONT_CACHE, by default in the data directory: where the
        cut-down (Latin) copies of the agreement's fonts are kept between starts; they
        make an agreement about twice as fast to lay out (services/keygen/fonts.py).
        Unwritable: the full fonts are used.
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["keygen"]
    docsign_cert: Path = setting("SIUI_KEYGEN_DOCSIGN_CERT", Path("pki/docsign.pem"), data_path=True)
    docsign_key: Path = setting("SIUI_KEYGEN_DOCSIGN_KEY", Path("pki/docsign.key"), data_path=True)
    docsign_chain: tuple[Path, ...] = ()
    max_failures: int = setting("SIUI_ACTIVATION_MAX_FAILURES", 100, minimum=1, maximum=100_000)
    # At most a day, so that the shortest retention (1 day) still covers the window.
    failure_window_minutes: int = setting("SIUI_ACTIVATION_WINDOW_MINUTES", 15, minimum=1,
                                          maximum=24 * 60)
    ipv6_prefix: int = setting("SIUI_ACTIVATION_IPV6_PREFIX", 64, minimum=32, maximum=128)
    pdf_workers: int = setting("SIUI_KEYGEN_PDF_WORKERS", 2, minimum=1, maximum=64)
    attempts_retention_days: int = setting("SIUI_ACTIVATION_LOG_DAYS", 30, minimum=1,
                                           maximum=3660)
    font_cache_dir: Path = setting("SIUI_KEYGEN_FONT_CACHE", Path("cache/fonts"), data_path=True)

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        chain = tuple(Path(p.strip()).resolve()
                      for p in env_str(env, "SIUI_KEYGEN_DOCSIGN_CHAIN", "").split(",") if p.strip())
        return settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "keygen"),
                                 docsign_chain=chain)
