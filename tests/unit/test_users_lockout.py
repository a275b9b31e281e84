"""users: lockout arithmetic with an injected clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.users.lockout import LockoutPolicy, LoginState, after_failure, after_success, is_locked
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


def test_success_clears_failures():
    assert after_success() == LoginState(0, None)


def test_policy_figures_are_configurable():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    strict = LockoutPolicy(max_failures=2, lock_minutes=60)
    state = after_failure(after_failure(LoginState(), strict, now), strict, now)
    assert state.locked_until == now + timedelta(hours=1)
