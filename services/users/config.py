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
    max_failed_logins: SIUI_LOGIN_MAX_FAILURES: wrong passwords in a row *from one client
        address* before that address may not log in to that account (only that one:
        nobody but the owner's own address can lock the owner out).
    lockout_minutes: SIUI_LOGIN_LOCKOUT_MINUTES: how long such a lock lasts.
    login_concurrency: SIUI_LOGIN_CONCURRENCY: argon2 password checks run at once, each
        in its own thread. argon2 is CPU-bound by design, so more than the cores only
        slows everything else (the default, 2, is the development machine's cores).
    login_queue: SIUI_LOGIN_QUEUE: logins that may wait for a checking thread; one more
        is answered 503 with Retry-After at once. With ~0.1 s per check and 2 threads,
        16 waiting is under a second of waiting.
    login_per_address: SIUI_LOGIN_PER_ADDRESS_PER_MINUTE: login attempts per minute from
        one client address (sliding window, counted in PostgreSQL so that every replica
        shares it); more answer 429. A county house's whole office behind one NAT
        logging in at 8:00 stays under it; one address spraying guesses across many
        accounts does not.
    login_global_per_second: SIUI_LOGIN_GLOBAL_PER_SECOND: login attempts per second this
        process accepts from everybody together (a token bucket in memory, burst one
        second's worth); more answer 429. It bounds the argon2 work one replica takes on
        however many addresses the senders have. Several replicas: each has its own.
    admin_password: SIUI_ADMIN_PASSWORD, default none: the national admin's password on
        first start; without it one is generated and printed once.
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["users"]
    token_minutes: int = setting("SIUI_TOKEN_MINUTES", 15, minimum=1, maximum=12 * 60)
    max_failed_logins: int = setting("SIUI_LOGIN_MAX_FAILURES", 5, minimum=1, maximum=1000)
    lockout_minutes: int = setting("SIUI_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60)
    login_concurrency: int = setting("SIUI_LOGIN_CONCURRENCY", 2, minimum=1, maximum=64)
    login_queue: int = setting("SIUI_LOGIN_QUEUE", 16, minimum=0, maximum=10_000)
    login_per_address: int = setting("SIUI_LOGIN_PER_ADDRESS_PER_MINUTE", 30, minimum=1, maximum=100_000)
    login_global_per_second: int = setting("SIUI_LOGIN_GLOBAL_PER_SECOND", 20, minimum=1, maximum=100_000)
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
