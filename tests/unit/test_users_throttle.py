"""users: the login throttles' arithmetic (per address sliding window, global token bucket)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from services.users.throttle import (AddressPolicy, TokenBucket, address_retry_after, current_cap,
                                     previous_window, window_start)

POLICY = AddressPolicy(per_window=30, window_seconds=60)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # a window's start


def test_windows_are_whole_minutes():
    now = T0 + timedelta(seconds=42, microseconds=123)
    assert window_start(now, POLICY) == T0
    assert previous_window(now, POLICY) == T0 - timedelta(minutes=1)
    assert window_start(T0 + timedelta(seconds=60), POLICY) == T0 + timedelta(minutes=1)


def test_a_quiet_address_may_use_the_whole_limit():
    assert current_cap(0, T0, POLICY) == 30
    assert current_cap(0, T0 + timedelta(seconds=59), POLICY) == 30


def test_the_previous_window_weighs_as_much_as_still_overlaps():
    # 30 attempts last minute; half-way through this one, half of them still count.
    assert current_cap(30, T0 + timedelta(seconds=30), POLICY) == 15
    assert current_cap(30, T0, POLICY) == 0
    assert current_cap(30, T0 + timedelta(seconds=59), POLICY) == 29
    assert current_cap(60, T0 + timedelta(seconds=10), POLICY) == 0  # never negative


def _allowed(previous: int, current: int, counted_at: datetime, at: datetime) -> bool:
    """Whether an attempt at ``at`` is let through, the counts being those of
    ``counted_at``'s windows and nothing counted since (refusals are not counted)."""
    if window_start(at, POLICY) == window_start(counted_at, POLICY):
        return current < current_cap(previous, at, POLICY)
    if window_start(at, POLICY) == window_start(counted_at, POLICY) + timedelta(seconds=60):
        return 0 < current_cap(current, at, POLICY)
    return True


@pytest.mark.parametrize("previous, current, second", itertools.product(
    (0, 1, 10, 29, 30), (0, 5, 15, 29, 30), (0, 1, 20, 30, 45, 59)))
def test_retry_after_is_when_the_address_is_let_through_again(previous, current, second):
    now = T0 + timedelta(seconds=second, milliseconds=250)
    if current < current_cap(previous, now, POLICY):
        return  # let through: no Retry-After to check
    wait = address_retry_after(previous, current, now, POLICY)
    assert 1 <= wait <= 2 * POLICY.window_seconds
    assert _allowed(previous, current, now, now + timedelta(seconds=wait))
    if wait > 1:  # and not a whole second sooner: the wait is not overstated
        assert not _allowed(previous, current, now, now + timedelta(seconds=wait - 1))


def test_a_full_window_waits_for_the_next_one():
    now = T0 + timedelta(seconds=50)
    assert address_retry_after(0, 30, now, POLICY) == 12  # 10 s to the window's end, then 1/30 of 60 s


def test_the_bucket_lets_a_burst_through_then_one_per_interval():
    bucket = TokenBucket(rate=2, burst=2)
    assert bucket.take(100.0) is None and bucket.take(100.0) is None
    assert bucket.take(100.0) == 1
    assert bucket.take(100.4) == 1  # 0.8 of a token: still refused, retry in a second
    assert bucket.take(100.5) is None
    assert bucket.take(100.5) == 1
    assert bucket.take(200.0) is None and bucket.take(200.0) is None  # refilled to the burst, no more
    assert bucket.take(200.0) == 1


def test_a_clock_going_backwards_refills_nothing():
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.take(1000.0) is None
    assert bucket.take(10.0) == 1
    assert bucket.take(10.5) == 1
    assert bucket.take(11.0) is None


def test_a_bucket_needs_a_rate_and_a_burst():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)
