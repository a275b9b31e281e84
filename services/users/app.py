"""The users service's composition root: create_app(config) builds it, without I/O."""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from argon2 import PasswordHasher

from shared.clock import Clock, utc_now
from shared.db import POOL
from shared.http.operational import READINESS, base_app
from shared.logging import get_logger
from shared.service import add_platform
from shared.tasks import background_ctx, periodic_ctx

from services.users import queries, routes
from services.users.routes import NATIONAL_ADMIN_ENSURED
from services.users.bootstrap import ensure_national_admin
from services.users.config import Config
from services.users.consumers import CONSUMERS
from services.users.gate import LoginGate
from services.users.lockout import LockoutPolicy
from services.users.openapi import OPENAPI_DOC
from services.users.passwords import hash_password, make_hasher
from services.users.sessions import LoginKit
from services.users.throttle import AddressPolicy, TokenBucket
from services.users.tokens import TokenSigner

log = get_logger(__name__)

PURGE_EVERY_SECONDS = 3600.0
# Session rows are kept a day past their expiry: long enough to answer "who was logged in".
PURGE_AFTER = timedelta(days=1)


def create_app(config: Config, *, clock: Clock = utc_now, hasher: PasswordHasher | None = None,
               signer: TokenSigner | None = None) -> web.Application:
    """The users app. ``clock``, ``hasher`` and ``signer`` may be replaced (tests, bench)."""
    app = base_app("users", OPENAPI_DOC)
    # users keeps the sessions itself: it has no past logouts to catch up with.
    add_platform(app, config.common, schema="users", migrations="services.users", consumers=CONSUMERS,
                 follow_past_logouts=False)
    app.cleanup_ctx.append(_login_kit_ctx(config, clock, hasher or make_hasher(), signer))
    app.cleanup_ctx.append(_national_admin_ctx(config))
    app[READINESS].append(national_admin_made)
    app.cleanup_ctx.append(periodic_ctx("users-purge-sessions", PURGE_EVERY_SECONDS, _purge_sessions(clock)))
    routes.add_routes(app)
    return app


def _login_kit_ctx(config: Config, clock: Clock, hasher: PasswordHasher, signer: TokenSigner | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        gate = LoginGate(config.login_concurrency, config.login_queue)
        app[routes.KIT] = LoginKit(
            hasher=hasher,
            signer=signer or TokenSigner.from_file(config.token_signing_key_path,
                                                   timedelta(minutes=config.token_minutes)),
            policy=LockoutPolicy(config.max_failed_logins, config.lockout_minutes),
            clock=clock,
            dummy_hash=await hash_password(hasher, secrets.token_urlsafe(16)),
            gate=gate,
            address_policy=AddressPolicy(config.login_per_address, 60),
            ceiling=TokenBucket(config.login_global_per_second, config.login_global_per_second))
        try:
            yield
        finally:
            gate.close()

    return ctx


async def national_admin_made(app: web.Application) -> None:
    """Readiness: not ready until the national admin exists, so that whoever waits for
    /readyz (a load balancer, the tests, an operator) can log in as admin right after."""
    ensured = app.get(NATIONAL_ADMIN_ENSURED)
    if ensured is None or not ensured.is_set():
        raise RuntimeError("the national admin is being set up")


def _national_admin_ctx(config: Config):
    """Create the national admin at start too, so a plain docker deployment has one. In
    the background, tried again (with a growing delay) until it is done: a users table
    held by a long lock, or a database not there yet, must not keep the service from
    starting and serving."""

    def creator(app: web.Application):
        app[NATIONAL_ADMIN_ENSURED] = asyncio.Event()

        async def create(_stopping) -> None:
            async with app[POOL].acquire() as conn, conn.transaction():
                generated = await ensure_national_admin(conn, config.admin_password, hasher=app[routes.KIT].hasher)
            if generated:
                # Printed, not logged: it must reach the operator once and no log store.
                print("siui-users: first start: national admin created: user 'admin', password "
                      f"'{generated}' (shown once; change it after logging in)", flush=True)
            app[NATIONAL_ADMIN_ENSURED].set()

        return create

    return background_ctx("national-admin", creator)


def _purge_sessions(clock: Clock):
    async def purge(app: web.Application) -> None:
        now = clock()
        async with app[POOL].acquire() as conn:
            await queries.purge_sessions(conn, now - PURGE_AFTER)
            # The sliding window reads two windows back at most; a pair's failures are
            # forgotten after a quiet day (a lock lasts at most SIUI_LOGIN_LOCKOUT_MINUTES).
            await queries.purge_login_throttle(conn, windows_before=now - timedelta(minutes=5),
                                               failures_before=now - PURGE_AFTER)

    return purge
