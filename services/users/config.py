"""users settings, read once from the environment and validated before the service starts."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import SERVICE_PORTS, CommonConfig, service_port, setting, settings_from_env, settle


@dataclass(frozen=True)
class Config:
    """users settings. Each field: env var, default, why.

    port: SIUI_USERS_PORT, default 8102 (the contract's port).
    token_minutes: SIUI_TOKEN_MINUTES (at most 720). Tokens are verified locally by every
        service, which learn of a logout only over the bus; a short life bounds what a
        stolen or missed-revocation token can do. The console logs in again when it ends.
    max_failed_logins: SIUI_LOGIN_MAX_FAILURES: wrong passwords in a row before the
        account is locked.
    lockout_minutes: SIUI_LOGIN_LOCKOUT_MINUTES.
    admin_password: SIUI_ADMIN_PASSWORD, default none: the national admin's password on
        first start; without it one is generated and printed once.
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["users"]
    token_minutes: int = setting("SIUI_TOKEN_MINUTES", 15, minimum=1, maximum=12 * 60)
    max_failed_logins: int = setting("SIUI_LOGIN_MAX_FAILURES", 5, minimum=1)
    lockout_minutes: int = setting("SIUI_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
    admin_password: str | None = None

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)

    @property
    def token_signing_key_path(self) -> Path:
        """The Ed25519 private key the tokens are signed with (made by deploy/devpki)."""
        return self.common.data_dir / "secrets" / "token-signing.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        return settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "users"),
                                 admin_password=env.get("SIUI_ADMIN_PASSWORD") or None)
