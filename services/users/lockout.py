"""Lockout arithmetic: pure functions of the stored state, the policy and "now".

A lock belongs to one (account, client address) pair, never to the account alone: after
``max_failures`` wrong passwords in a row *from one address* that address may not log in
to that account for ``lock_minutes``; every other address, the owner's included, is
unaffected. Otherwise anybody could lock anybody out (``admin`` included) by typing five
wrong passwords. The counter starts again from zero when the lock is set, and a correct
password from that address forgets the pair (its row is deleted).

User names that do not exist are counted and locked exactly like those that do: the
pair is keyed by the name as typed, so neither the counts nor the answers differ.

An attempt is counted as a failure *before* its password is checked (``admit``) and the
count is taken back when the password proves right: attempts sent in parallel cannot
all slip in under the limit while the slow password check runs, and an attempt that
never finishes (a disconnect, an overloaded moment) is not a free guess.
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
    """What is kept about recent login failures of one account from one address."""

    failed_logins: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Admission:
    """Whether an attempt's password is compared at all, and what to store meanwhile.

    ``allowed`` False: the pair is locked; the password is not compared with the
    account's (a throwaway hash is, so that the answer takes as long and reads the same).
    ``pending``: the state to store before comparing: this attempt counted as wrong.
    """

    allowed: bool
    pending: LoginState


def is_locked(state: LoginState, now: datetime) -> bool:
    """Whether the pair refuses every password at ``now``."""
    return state.locked_until is not None and now < state.locked_until


def after_failure(state: LoginState, policy: LockoutPolicy, now: datetime) -> LoginState:
    """The state after one more wrong password at ``now``."""
    failures = state.failed_logins + 1
    if failures >= policy.max_failures:
        return LoginState(0, now + timedelta(minutes=policy.lock_minutes))
    # A lock that has run out is forgotten, the count before it was already reset.
    return LoginState(failures, None)


def admit(state: LoginState, policy: LockoutPolicy, now: datetime) -> Admission:
    """Whether an attempt at ``now`` is checked; refused attempts do not count (so a lock
    ends on time), admitted ones count as wrong until the password proves right."""
    if is_locked(state, now):
        return Admission(False, state)
    return Admission(True, after_failure(state, policy, now))
