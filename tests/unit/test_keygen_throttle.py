"""Desktop activation's throttle and outcomes: pure functions of stored attempts and "now"."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.keygen.activation import Outcome, ThrottlePolicy, classify, retry_after
from shared.addresses import client_address

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
POLICY = ThrottlePolicy(max_failures=5, window_minutes=15)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def test_fewer_failures_than_the_limit_are_allowed():
    assert retry_after([], POLICY, NOW) is None
    assert retry_after([ago(minutes=m) for m in range(4)], POLICY, NOW) is None


def test_the_fifth_failure_locks_until_the_oldest_counted_leaves_the_window():
    failures = [ago(minutes=m) for m in (0, 1, 2, 3, 10)]
    assert retry_after(failures, POLICY, NOW) == 5 * 60
    # Order does not matter; failures outside the window do not count.
    assert retry_after(list(reversed(failures)) + [ago(minutes=30)], POLICY, NOW) == 5 * 60
    assert retry_after([ago(minutes=m) for m in (0, 1, 2, 3, 15)], POLICY, NOW) is None


def test_with_more_failures_the_lock_lasts_until_only_four_remain():
    failures = [ago(minutes=m) for m in (0, 1, 2, 3, 4, 14)]
    assert retry_after(failures, POLICY, NOW) == 11 * 60


def test_retry_after_is_a_whole_positive_number_of_seconds():
    failures = [ago(minutes=15, microseconds=-1)] * 5
    assert retry_after(failures, POLICY, NOW) == 1
    failures = [ago(seconds=0.5)] * 5
    assert retry_after(failures, POLICY, NOW) == 15 * 60


def test_the_policy_is_configurable():
    strict = ThrottlePolicy(max_failures=1, window_minutes=1)
    assert retry_after([ago(seconds=30)], strict, NOW) == 30


@pytest.mark.parametrize(("key", "cas", "outcome"), [
    (None, "B", Outcome.UNKNOWN_KEY),
    ({"cas": "B", "replaced_at": NOW}, "B", Outcome.REPLACED_KEY),
    ({"cas": "CJ", "replaced_at": None}, "B", Outcome.WRONG_HOUSE),
    ({"cas": "B", "replaced_at": None}, "B", Outcome.OK),
])
def test_classify(key, cas, outcome):
    assert classify(key, cas) == outcome
    assert (outcome in Outcome.FAILURES) == (outcome != Outcome.OK)


def test_throttled_attempts_do_not_count():
    assert Outcome.THROTTLED not in Outcome.FAILURES and Outcome.MALFORMED in Outcome.FAILURES


def test_client_address_is_the_peer_unless_it_is_a_trusted_proxy():
    assert client_address("192.0.2.7", "198.51.100.1", frozenset()) == "192.0.2.7"
    proxies = frozenset({"10.0.0.1", "10.0.0.2"})
    # The nearest hop not itself a proxy; what the client wrote further left is ignored.
    assert client_address("10.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.2", proxies) == "198.51.100.1"
    assert client_address("10.0.0.1", None, proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", "10.0.0.2", proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4, not-an-address", proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", " 2001:DB8::1 ", proxies) == "2001:db8::1"
    assert client_address(None, "1.2.3.4", proxies) == "unknown"
