"""Logging in and out: passwords checked, lockout applied, tokens issued and revoked.

What a refused login discloses (see README.md "Lockout"):
- unknown user, external user, wrong password: one generic message, and the same argon2
  work in each case, so neither the words nor the timing tell which;
- a locked account: "locked until <time>", whatever password was sent, and no password
  is checked while locked. Answering "locked" only after a correct password would turn
  the lock into an oracle (a correct guess would answer differently during the lock);
- a disabled account: said only after the correct password, and wrong passwords still
  count towards the lock, so this cannot be used to guess faster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from argon2 import PasswordHasher
from prometheus_client import Counter

from shared import errors
from shared.auth import Principal
from shared.clock import Clock
from shared.events import SessionRevoked
from shared.outbox import add_event

from services.users import queries
from services.users.lockout import LockoutPolicy, LoginState, after_failure, after_success, is_locked
from services.users.passwords import hash_password, verify_password
from services.users.tokens import IssuedToken, TokenSigner

LOGINS = Counter("siui_users_logins_total", "Login attempts by outcome", ["outcome"])
WRONG_CREDENTIALS = "wrong user name or password"
DISABLED = "this account is disabled; ask your house administrator"


@dataclass(frozen=True)
class LoginKit:
    """What logging in needs, built once at start."""

    hasher: PasswordHasher
    signer: TokenSigner
    policy: LockoutPolicy
    clock: Clock
    dummy_hash: str  # checked for unknown users, so that they cost the same time


@dataclass
class LoginAttempt:
    """Who tried to log in, for the audit trail (cas stays None for an unknown name)."""

    username: str
    cas: str | None = None


@dataclass(frozen=True)
class LoginResult:
    token: IssuedToken
    user: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"token": self.token.token, "expires_at": self.token.expires_at.isoformat(),
                "user": self.user}


def locked_message(until: datetime) -> str:
    return (f"account locked until {until.isoformat(timespec='seconds')} after too many wrong "
            "passwords; try again then, or ask your house administrator to unlock it")


async def login(conn: asyncpg.Connection, kit: LoginKit, attempt: LoginAttempt,
                password: str) -> LoginResult:
    """Check the password of ``attempt.username`` and open a session, or raise 401."""
    now = kit.clock()
    failure: errors.DomainError | None = None
    async with conn.transaction():
        row = await queries.fetch_user_for_update(conn, attempt.username)
        if row is None or row["type"] != "internal" or not row["password_hash"]:
            # External users have no password here: they are refused like a wrong one.
            if row is not None:
                attempt.cas = row["cas"]
            await verify_password(kit.hasher, kit.dummy_hash, password)
            LOGINS.labels("unknown" if row is None else "external").inc()
            raise errors.Unauthorized(WRONG_CREDENTIALS)
        attempt.cas = row["cas"]
        state = LoginState(row["failed_logins"], row["locked_until"])
        if is_locked(state, now):
            LOGINS.labels("locked").inc()
            raise errors.Unauthorized(locked_message(state.locked_until),
                                      locked_until=state.locked_until.isoformat())
        if not await verify_password(kit.hasher, row["password_hash"], password):
            state = after_failure(state, kit.policy, now)
            await queries.set_login_state(conn, row["username"], state.failed_logins, state.locked_until)
            failure = (errors.Unauthorized(locked_message(state.locked_until),
                                           locked_until=state.locked_until.isoformat())
                       if state.locked_until else errors.Unauthorized(WRONG_CREDENTIALS))
            LOGINS.labels("wrong_password").inc()
        elif not row["enabled"]:
            failure = errors.Unauthorized(DISABLED)
            LOGINS.labels("disabled").inc()
        else:
            result = await _open_session(conn, kit, row, password, state, now)
            LOGINS.labels("ok").inc()
    if failure is not None:
        raise failure  # after the commit: the failure count must stick
    return result


async def _open_session(conn: asyncpg.Connection, kit: LoginKit, row, password: str,
                        state: LoginState, now: datetime) -> LoginResult:
    username = row["username"]
    if state != after_success():
        await queries.set_login_state(conn, username, 0, None)
    if kit.hasher.check_needs_rehash(row["password_hash"]):
        await queries.rehash_password(conn, username, await hash_password(kit.hasher, password))
    roles = await queries.fetch_user_roles(conn, username)
    rights = await queries.fetch_user_rights(conn, username)
    token = kit.signer.issue(username=username, cas=row["cas"], rights=rights, roles=roles, now=now)
    await queries.insert_session(conn, token.jti, username, token.issued_at, token.expires_at)
    user = {"username": username, "cas": row["cas"], "employee_code": row["employee_code"],
            "employee_name": row["employee_name"], "roles": roles, "rights": rights}
    return LoginResult(token, user)


async def logout(conn: asyncpg.Connection, principal: Principal, now: datetime) -> None:
    """End the caller's session here and, through the event, in every service."""
    expires_at = principal.expires_at or now
    async with conn.transaction():
        await queries.revoke_session(conn, principal.token_id, principal.username, now, expires_at, now)
        await add_event(conn, SessionRevoked(jti=principal.token_id, username=principal.username,
                                             expires_at=expires_at.isoformat()), principal.cas)


async def end_sessions(conn: asyncpg.Connection, username: str, cas: str, now: datetime) -> int:
    """Revoke every live session of a user (disabled, deleted, new password or roles).

    Runs in the caller's transaction; returns how many sessions were ended.
    """
    ended = await queries.revoke_user_sessions(conn, username, now)
    for row in ended:
        await add_event(conn, SessionRevoked(jti=str(row["jti"]), username=username,
                                             expires_at=row["expires_at"].isoformat()), cas)
    return len(ended)


async def is_revoked(conn: asyncpg.Connection, jti: str) -> bool:
    """Whether this token's session was ended (a token never seen here is not)."""
    return await queries.session_revoked(conn, jti)
