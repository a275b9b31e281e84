"""Account lockout arithmetic: pure functions of the stored state, the policy and "now".

After ``max_failures`` wrong passwords in a row the account is locked for
``lock_minutes``; the counter starts again from zero when the lock is set, and a correct
password clears it. While locked, no password is even checked, so guessing during the
lock teaches an attacker nothing (services/users/sessions.py says what answers disclose).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_minutes: int = 15


@dataclass(frozen=True)
class LoginState:
    """What the users table keeps about recent login failures of one account."""

    failed_logins: int = 0
    locked_until: datetime | None = None


def is_locked(state: LoginState, now: datetime) -> bool:
    """Whether the account refuses every password at ``now``."""
    return state.locked_until is not None and now < state.locked_until


def after_failure(state: LoginState, policy: LockoutPolicy, now: datetime) -> LoginState:
    """The state after one more wrong password at ``now``."""
    failures = state.failed_logins + 1
    if failures >= policy.max_failures:
        return LoginState(0, now + timedelta(minutes=policy.lock_minutes))
    # A lock that has run out is forgotten, the count before it was already reset.
    return LoginState(failures, None)


def after_success() -> LoginState:
    """The state after a correct password: no failures, no lock."""
    return LoginState(0, None)
