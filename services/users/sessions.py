"""Logging in and out: throttles, the lockout, the password check, tokens issued and revoked.

A login, in order (services/users/README.md "Logging in"):
1. the global ceiling (this process, in memory): 429 when everybody together sends too many;
2. a place at the password-checking gate (services/users/gate.py): 503 at once when the
   threads and the queue are full;
3. the client address's sliding window (PostgreSQL, shared by the replicas): 429;
4. the user row is read and the (user name, address) pair's lockout state is taken and
   counted, in a transaction of a few milliseconds;
5. no connection held, no transaction open: one argon2 check in a gate thread;
6. only after a correct password, a transaction opens the session (re-reading the user
   under a row lock, so a user disabled, deleted, re-roled or given a new password while
   the check ran is seen).

What a refused login discloses: nothing about the user name.
- an unknown user, an external user (they never log in), a wrong password and a locked
  (user name, address) pair answer the same 401, byte for byte, after the same work: the
  same statements and one argon2 check (against a throwaway hash when there is no
  password to compare, or the pair is locked). A locked pair does not compare the
  password, so guessing during the lock teaches nothing, and the answer cannot say
  "locked" without saying that the name exists and was tried.
- 429 and 503 are decided before the user name is looked up: the same for every name.
- a disabled account is said only after its correct password (who knows it knows the
  account exists); such attempts still count towards the pair's lock.
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
from services.users.gate import LoginGate
from services.users.lockout import Admission, LockoutPolicy, LoginState, admit
from services.users.passwords import check
from services.users.throttle import (AddressPolicy, TokenBucket, address_retry_after, current_cap,
                                     previous_window, window_start)
from services.users.tokens import IssuedToken, TokenSigner

LOGINS = Counter("siui_users_logins_total", "Login attempts by outcome", ["outcome"])
DISABLED = "this account is disabled; ask your house administrator"


def wrong_credentials(policy: LockoutPolicy) -> str:
    """The one refusal of unknown, external, wrong and locked: it says how the lock works
    (the same words for everybody), so that an owner refused by a lock knows why."""
    return (f"wrong user name or password (after {policy.max_failures} wrong passwords in a row "
            f"from one address, that account cannot log in from there for {policy.lock_minutes} minutes)")


def address_throttled(seconds: int) -> str:
    return f"too many login attempts from your address; try again in {seconds} s"


def everyone_throttled(seconds: int) -> str:
    return f"too many login attempts at the moment; try again in {seconds} s"


@dataclass(frozen=True)
class LoginKit:
    """What logging in needs, built once at start."""

    hasher: PasswordHasher
    signer: TokenSigner
    policy: LockoutPolicy
    clock: Clock
    dummy_hash: str  # checked when there is no password to compare, so that it costs the same
    gate: LoginGate
    address_policy: AddressPolicy
    ceiling: TokenBucket  # this process's attempts per second, everybody together

    @property
    def wrong_credentials(self) -> str:
        return wrong_credentials(self.policy)


@dataclass
class LoginAttempt:
    """Who tried to log in from where, for the audit trail (cas stays None for an
    unknown name, and for an attempt refused before the name was looked up)."""

    username: str
    address: str
    cas: str | None = None


@dataclass(frozen=True)
class LoginResult:
    token: IssuedToken
    user: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"token": self.token.token, "expires_at": self.token.expires_at.isoformat(),
                "user": self.user}


async def login(pool: asyncpg.Pool, kit: LoginKit, attempt: LoginAttempt, password: str) -> LoginResult:
    """Check the password of ``attempt.username`` and open a session; else 401, 429, or
    ``gate.Busy`` (the caller's 503). Holds no connection while the password is checked."""
    now = kit.clock()
    wait = kit.ceiling.take(now.timestamp())
    if wait is not None:
        LOGINS.labels("throttled_everyone").inc()
        raise errors.TooManyRequests(everyone_throttled(wait), retry_after=wait)
    async with kit.gate.reserve() as place:  # Busy (503) at once, before any counting
        async with pool.acquire() as conn:
            await _count_address(conn, kit.address_policy, attempt.address, now)
            row = await queries.fetch_user(conn, attempt.username)
            admission = await _admit(conn, kit.policy, attempt, now)
        if row is not None:
            attempt.cas = row["cas"]
        # External users have no password here: refused like a wrong one.
        usable = admission.allowed and row is not None and row["type"] == "internal" and bool(row["password_hash"])
        password_hash = row["password_hash"] if usable else kit.dummy_hash
        matches, rehashed = await place.run(check, kit.hasher, password_hash, password)
    if not (usable and matches):
        LOGINS.labels(_refusal(row, admission)).inc()
        raise errors.Unauthorized(kit.wrong_credentials)
    async with pool.acquire() as conn, conn.transaction():
        result = await _open_session(conn, kit, attempt, password_hash, rehashed, now)
    LOGINS.labels("ok").inc()
    return result


def _refusal(row, admission: Admission) -> str:
    if not admission.allowed:
        return "locked"
    if row is None:
        return "unknown"
    return "wrong_password" if row["type"] == "internal" else "external"


async def _count_address(conn: asyncpg.Connection, policy: AddressPolicy, address: str,
                         now: datetime) -> None:
    """Count the attempt against its address, or refuse it (429, not counted)."""
    current, previous = window_start(now, policy), previous_window(now, policy)
    counts = await queries.address_window_counts(conn, address, [current, previous])
    cap = current_cap(counts.get(previous, 0), now, policy)
    if await queries.count_address_attempt(conn, address, current, cap) is None:
        wait = address_retry_after(counts.get(previous, 0), max(counts.get(current, 0), cap), now, policy)
        LOGINS.labels("throttled_address").inc()
        raise errors.TooManyRequests(address_throttled(wait), retry_after=wait)


async def _admit(conn: asyncpg.Connection, policy: LockoutPolicy, attempt: LoginAttempt,
                 now: datetime) -> Admission:
    """The pair's admission, its pending state stored (this attempt counted as wrong)."""
    async with conn.transaction():
        stored = await queries.lock_login_failures(conn, attempt.username, attempt.address)
        admission = admit(LoginState(stored["failed_logins"], stored["locked_until"]), policy, now)
        await queries.set_login_failures(conn, attempt.username, attempt.address,
                                         admission.pending.failed_logins, admission.pending.locked_until, now)
    return admission


async def _open_session(conn: asyncpg.Connection, kit: LoginKit, attempt: LoginAttempt, checked_hash: str,
                        rehashed: str | None, now: datetime) -> LoginResult:
    """In the caller's transaction: the user as it is now (locked against a concurrent
    change of roles, state or password), then the session."""
    username = attempt.username
    row = await queries.fetch_user_for_update(conn, username)
    if row is None or row["type"] != "internal" or row["password_hash"] != checked_hash:
        # Deleted, or given a new password, while the old one was being checked.
        LOGINS.labels("changed").inc()
        raise errors.Unauthorized(kit.wrong_credentials)
    if not row["enabled"]:
        LOGINS.labels("disabled").inc()
        raise errors.Unauthorized(DISABLED)
    await queries.clear_login_failures(conn, username, attempt.address)
    if rehashed:
        await queries.rehash_password(conn, username, rehashed)
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
