"""Desktop activation's rules: what a request says, what it comes to, and when an address
must wait, as pure functions of the stored refusals and "now"."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.keygen.activation import (GENERIC_REFUSAL, Attempt, Outcome, ThrottlePolicy,
                                        classify, network_of, parse_attempt, retry_after,
                                        wait_message)
from shared import errors, license
from shared.addresses import client_address

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
POLICY = ThrottlePolicy()
SERIAL = license.generate(randbits=lambda n: 12345678901234567890)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def test_the_default_policy_is_generous():
    assert (POLICY.max_failures, POLICY.window_minutes, POLICY.ipv6_prefix) == (100, 15, 64)


def test_an_address_below_its_limit_is_not_made_to_wait():
    assert retry_after(None, POLICY, NOW) is None  # fewer than max_failures in the window
    assert retry_after(ago(minutes=15), POLICY, NOW) is None  # the counted one just left
    assert retry_after(ago(minutes=20), POLICY, NOW) is None


def test_at_the_limit_the_wait_ends_when_the_counted_refusal_leaves_the_window():
    assert retry_after(ago(minutes=10), POLICY, NOW) == 5 * 60
    assert retry_after(ago(seconds=0.5), POLICY, NOW) == 15 * 60
    assert retry_after(ago(minutes=15, microseconds=-1), POLICY, NOW) == 1  # never 0
    assert retry_after(ago(seconds=30), ThrottlePolicy(1, 1), NOW) == 30


def test_the_wait_message_is_the_same_for_every_serial_and_says_the_key_still_works():
    assert "try again in 15 minutes" in wait_message(15 * 60)
    assert "try again in 1 minute " in wait_message(5)
    assert "a correct licence serial is accepted at any time" in wait_message(60)


@pytest.mark.parametrize(("key", "cas", "outcome"), [
    (None, "B", Outcome.UNKNOWN_KEY),
    ({"cas": "B", "replaced_at": NOW}, "B", Outcome.REPLACED_KEY),
    ({"cas": "B", "replaced_at": NOW}, "CJ", Outcome.REPLACED_KEY),
    ({"cas": "CJ", "replaced_at": None}, "B", Outcome.WRONG_HOUSE),
    ({"cas": "B", "replaced_at": None}, "B", Outcome.OK),
])
def test_classify(key, cas, outcome):
    assert classify(key, cas) == outcome
    assert (outcome in Outcome.REFUSALS) == (outcome != Outcome.OK)


def test_only_refusals_of_a_well_formed_serial_count():
    assert Outcome.REFUSALS == {Outcome.UNKNOWN_KEY, Outcome.REPLACED_KEY, Outcome.WRONG_HOUSE}
    assert Outcome.MALFORMED not in Outcome.REFUSALS and Outcome.THROTTLED not in Outcome.REFUSALS
    assert set(Outcome.ALL) == Outcome.REFUSALS | {Outcome.OK, Outcome.MALFORMED, Outcome.THROTTLED}
    assert "not valid for this insurance house" in GENERIC_REFUSAL


def test_ipv4_counts_by_address_and_ipv6_by_its_lan():
    assert network_of("192.0.2.7", POLICY) == "192.0.2.7"
    assert network_of("::ffff:192.0.2.7", POLICY) == "192.0.2.7"
    assert network_of("2001:db8:1:2:aaaa::1", POLICY) == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:2:bbbb::9", POLICY) == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:2:aaaa::1", ThrottlePolicy(ipv6_prefix=56)) == "2001:db8:1::/56"
    assert network_of("2001:db8::1", ThrottlePolicy(ipv6_prefix=128)) == "2001:db8::1"
    assert network_of("unknown", POLICY) == "unknown"


def invalid(body) -> dict[str, str]:
    with pytest.raises(errors.Invalid) as caught:
        parse_attempt(body)
    return caught.value.errors


def test_a_well_formed_attempt_is_canonical_and_never_shows_its_serial():
    attempt = parse_attempt({"license_serial": f"  {SERIAL.lower()} ", "cas": " mm "})
    assert attempt == Attempt(SERIAL, "MM")
    assert SERIAL not in repr(attempt)


def test_a_typo_is_refused_by_the_check_character_before_any_lookup():
    typo = ("1" if SERIAL[0] != "1" else "2") + SERIAL[1:]
    assert "check character" in invalid({"license_serial": typo, "cas": "B"})["license_serial"]
    swapped = SERIAL[1] + SERIAL[0] + SERIAL[2:]
    if swapped != SERIAL:
        assert "license_serial" in invalid({"license_serial": swapped, "cas": "B"})


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"cas": "B"}, "license_serial", "is required"),
    ({"license_serial": SERIAL}, "cas", "is required"),
    ({"license_serial": 12345, "cas": "B"}, "license_serial", "must be a string"),
    ({"license_serial": SERIAL, "cas": ["B"]}, "cas", "must be a string"),
    ({"license_serial": SERIAL + " " * 60, "cas": "B"}, "license_serial", "at most 64"),
    ({"license_serial": SERIAL, "cas": "B" * 17}, "cas", "at most 16"),
    ({"license_serial": SERIAL[:-1] + "\x00", "cas": "B"}, "license_serial", "not used"),
    ({"license_serial": SERIAL[:-1] + "\ud800", "cas": "B"}, "license_serial", "not used"),
    ({"license_serial": SERIAL + "\u202e", "cas": "B"}, "license_serial", "not used"),
    ({"license_serial": SERIAL, "cas": "B\x00"}, "cas", "house code"),
    ({"license_serial": SERIAL, "cas": "\ud800"}, "cas", "house code"),
    ({"license_serial": SERIAL, "cas": "CNAS"}, "cas", "house code"),
    ({"license_serial": SERIAL, "cas": "B", "extra": 1}, "extra", "unknown field"),
    ({"license_serial": SERIAL, "cas": "B", "\ud800\x00": 1}, "\\ud800\\x00", "unknown field"),
])
def test_every_bad_field_is_named(body, field, words):
    assert words in invalid(body)[field]


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
