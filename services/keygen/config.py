"""keygen settings, read once from the environment and validated before the service starts."""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import CommonConfig, ConfigError, env_int, env_str, service_port


@dataclass(frozen=True)
class Config:
    """keygen settings. Each field: env var, default, why.

    port: SIUI_KEYGEN_PORT, default 8101 (the contract's port).
    pepper_path: SIUI_KEYGEN_PEPPER_FILE, default ``<data_dir>/secrets/license-pepper``:
        the HMAC key (hex) under which serials are stored. The ocsp service reads the
        same file to check a serial, so both must point at one secret.
    docsign_cert / docsign_key: SIUI_KEYGEN_DOCSIGN_CERT / SIUI_KEYGEN_DOCSIGN_KEY,
        default ``<data_dir>/pki/docsign.pem`` / ``.key``: the house's document-signing
        certificate and key that sign ``generatePassword.pdf``.
    docsign_chain: SIUI_KEYGEN_DOCSIGN_CHAIN, default none: intermediate certificates
        embedded in each signature (comma-separated PEM paths). The dev signer is issued
        straight by the root, which validators must trust anyway, so none is needed.
    max_failures: SIUI_ACTIVATION_MAX_FAILURES, default 5 (the issue's figure): failed
        activations from one client address, or against one provider, before 429.
    failure_window_minutes: SIUI_ACTIVATION_WINDOW_MINUTES, default 15 (the issue's
        figure): how far back failures count.
    trusted_proxies: SIUI_KEYGEN_TRUSTED_PROXIES, default none: addresses of reverse
        proxies whose X-Forwarded-For is believed. Behind a proxy every desktop would
        otherwise share the proxy's address and one typo-prone clinic would lock out all.
    pdf_workers: SIUI_KEYGEN_PDF_WORKERS, default 2: threads that render and sign
        agreements; signing is CPU-bound, so more threads than cores only queue.
    attempts_retention_days: SIUI_ACTIVATION_LOG_DAYS, default 180: activation attempts
        older than this are deleted; throttling needs minutes, the rest is for inquiries.
    font_cache_dir: SIUI_KEYGEN_FONT_CACHE, default ``<data_dir>/cache/fonts``: where the
        cut-down (Latin) copies of the agreement's fonts are kept between starts; they
        make an agreement about twice as fast to lay out (services/keygen/fonts.py).
        Unwritable: the full fonts are used.
    """

    common: CommonConfig
    port: int
    pepper_path: Path
    docsign_cert: Path
    docsign_key: Path
    docsign_chain: tuple[Path, ...] = ()
    max_failures: int = 5
    failure_window_minutes: int = 15
    trusted_proxies: frozenset[str] = frozenset()
    pdf_workers: int = 2
    attempts_retention_days: int = 180
    font_cache_dir: Path | None = None  # None: the full fonts only

    @classmethod
    def for_common(cls, common: CommonConfig, *, port: int = 0, **overrides) -> "Config":
        """The defaults for ``common`` (its data directory's files), with ``overrides``."""
        defaults = dict(pepper_path=common.data_dir / "secrets" / "license-pepper",
                        docsign_cert=common.data_dir / "pki" / "docsign.pem",
                        docsign_key=common.data_dir / "pki" / "docsign.key",
                        font_cache_dir=common.data_dir / "cache" / "fonts")
        return cls(common=common, port=port, **{**defaults, **overrides})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        common = CommonConfig.from_env(env)

        def path(name: str, default: Path) -> Path:
            return Path(env_str(env, name, str(default))).resolve()

        chain = tuple(Path(p.strip()).resolve()
                      for p in env_str(env, "SIUI_KEYGEN_DOCSIGN_CHAIN", "").split(",") if p.strip())
        return cls(
            common=common,
            port=service_port(env, "keygen"),
            pepper_path=path("SIUI_KEYGEN_PEPPER_FILE", common.data_dir / "secrets" / "license-pepper"),
            docsign_cert=path("SIUI_KEYGEN_DOCSIGN_CERT", common.data_dir / "pki" / "docsign.pem"),
            docsign_key=path("SIUI_KEYGEN_DOCSIGN_KEY", common.data_dir / "pki" / "docsign.key"),
            docsign_chain=chain,
            max_failures=env_int(env, "SIUI_ACTIVATION_MAX_FAILURES", 5, minimum=1),
            failure_window_minutes=env_int(env, "SIUI_ACTIVATION_WINDOW_MINUTES", 15, minimum=1),
            trusted_proxies=_addresses(env_str(env, "SIUI_KEYGEN_TRUSTED_PROXIES", "")),
            pdf_workers=env_int(env, "SIUI_KEYGEN_PDF_WORKERS", 2, minimum=1),
            attempts_retention_days=env_int(env, "SIUI_ACTIVATION_LOG_DAYS", 180, minimum=1),
            font_cache_dir=path("SIUI_KEYGEN_FONT_CACHE", common.data_dir / "cache" / "fonts"),
        )


def _addresses(raw: str) -> frozenset[str]:
    found = set()
    for item in filter(None, (p.strip() for p in raw.split(","))):
        try:
            found.add(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ConfigError(f"SIUI_KEYGEN_TRUSTED_PROXIES: {item!r} is not an IP address") from None
    return frozenset(found)
