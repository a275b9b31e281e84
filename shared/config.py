"""Configuration from the environment: the pieces every service's Config is made of.

Each service has one frozen dataclass (``services/<svc>/config.py``) built by
``from_env()``; it is validated once at start so that a typo in a deployment fails
loudly before any request is served.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "postgresql://siui:siui@127.0.0.1:5432/siui"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class ConfigError(ValueError):
    """A setting is missing or malformed; raised before the service starts."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class CommonConfig:
    """Settings every service shares.

    database_url: SIUI_DATABASE_URL; one database, one schema per service.
    amqp_url: SIUI_AMQP_URL; the RabbitMQ broker carrying the events.
    data_dir: SIUI_DATA_DIR (default ``.siui``); keys and certificates made by deploy/devpki.
    events_exchange: SIUI_EVENTS_EXCHANGE (default ``siui.events``); tests use their own
        exchange so that parallel runs on one broker never see each other's events.
    host: SIUI_HOST (default 127.0.0.1); containers set 0.0.0.0.
    log_format: SIUI_LOG_FORMAT, ``json`` (default) or ``console``.
    users_url: SIUI_USERS_URL (default http://127.0.0.1:<SIUI_USERS_PORT or 8102>): where
        services read the ended sessions when they start (see shared.service).
    """

    database_url: str
    amqp_url: str
    data_dir: Path
    events_exchange: str
    host: str
    log_format: str
    users_url: str = "http://127.0.0.1:8102"

    @property
    def token_public_key_path(self) -> Path:
        return self.data_dir / "secrets" / "token-signing.pub.pem"

    @property
    def data_key_path(self) -> Path:
        """The deployment's AES-256 key (64 hex chars): private keys at rest are encrypted
        with it, and other keys (console cookies, online sessions) derived from it by HKDF."""
        return self.data_dir / "secrets" / "data-key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "CommonConfig":
        env = os.environ if env is None else env
        log_format = env_str(env, "SIUI_LOG_FORMAT", "json")
        if log_format not in ("json", "console"):
            raise ConfigError("SIUI_LOG_FORMAT must be 'json' or 'console'")
        database_url = env_str(env, "SIUI_DATABASE_URL", DEFAULT_DATABASE_URL)
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("SIUI_DATABASE_URL must be a postgresql:// DSN")
        amqp_url = env_str(env, "SIUI_AMQP_URL", DEFAULT_AMQP_URL)
        if not amqp_url.startswith(("amqp://", "amqps://")):
            raise ConfigError("SIUI_AMQP_URL must be an amqp:// URL")
        return cls(
            database_url=database_url,
            amqp_url=amqp_url,
            data_dir=Path(env_str(env, "SIUI_DATA_DIR", ".siui")).resolve(),
            events_exchange=env_str(env, "SIUI_EVENTS_EXCHANGE", "siui.events"),
            host=env_str(env, "SIUI_HOST", "127.0.0.1"),
            log_format=log_format,
            users_url=service_url(env, "users"),
        )


SERVICE_PORTS = {"console": 8100, "keygen": 8101, "users": 8102, "certs": 8103, "ocsp": 8104,
                 "ocsp_tls": 8443}


def service_port(env: Mapping[str, str], service: str) -> int:
    """SIUI_<SERVICE>_PORT, defaulting to the contract's port for that service."""
    return env_int(env, f"SIUI_{service.upper()}_PORT", SERVICE_PORTS[service], minimum=1)


def service_url(env: Mapping[str, str], service: str) -> str:
    """SIUI_<SERVICE>_URL: where other services reach it (default: 127.0.0.1 and its port)."""
    return env_str(env, f"SIUI_{service.upper()}_URL",
                   f"http://127.0.0.1:{service_port(env, service)}").rstrip("/")
