"""users: lockout arithmetic (one account from one address) with an injected clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.users.lockout import LockoutPolicy, LoginState, admit, after_failure, is_locked
from tests.support.clock import FrozenClock

POLICY = LockoutPolicy(max_failures=5, lock_minutes=15)


def test_fifth_wrong_password_locks_for_fifteen_minutes():
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    state = LoginState()
    for expected in range(1, 5):
        state = after_failure(state, POLICY, clock())
        assert state == LoginState(expected, None)
        assert not is_locked(state, clock())
    state = after_failure(state, POLICY, clock())
    assert state == LoginState(0, clock() + timedelta(minutes=15))
    assert is_locked(state, clock())
    clock.advance(minutes=14, seconds=59)
    assert is_locked(state, clock())
    clock.advance(seconds=1)
    assert not is_locked(state, clock())


def test_after_the_lock_the_count_starts_again():
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    state = LoginState(0, clock() - timedelta(minutes=1))  # a lock that has run out
    state = after_failure(state, POLICY, clock())
    assert state == LoginState(1, None)


def test_policy_figures_are_configurable():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    strict = LockoutPolicy(max_failures=2, lock_minutes=60)
    state = after_failure(after_failure(LoginState(), strict, now), strict, now)
    assert state.locked_until == now + timedelta(hours=1)


def test_an_admitted_attempt_counts_as_wrong_until_it_proves_right():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    admission = admit(LoginState(), POLICY, now)
    assert admission.allowed and admission.pending == LoginState(1, None)
    # Parallel attempts each see the count the one before stored: the fifth sets the lock
    # before any of them has been checked, and the sixth is not even compared.
    state = LoginState()
    for _ in range(5):
        admission = admit(state, POLICY, now)
        assert admission.allowed
        state = admission.pending
    assert state == LoginState(0, now + timedelta(minutes=15))
    sixth = admit(state, POLICY, now)
    assert not sixth.allowed and sixth.pending == state  # refused attempts do not extend the lock


def test_a_lock_that_ran_out_admits_again():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    locked = LoginState(0, now + timedelta(minutes=15))
    assert not admit(locked, POLICY, now + timedelta(minutes=14, seconds=59)).allowed
    later = admit(locked, POLICY, now + timedelta(minutes=15))
    assert later.allowed and later.pending == LoginState(1, None)
