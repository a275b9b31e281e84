"""The reconnect schedule: full-jitter exponential backoff with Retry-After as a floor,
the heartbeat at a random phase, and what that does to many desktops at once. The random
source and the clock are injected, so every delay is known exactly."""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from clients.desktop.activation import Activation
from clients.desktop.backoff import CAP_SECONDS, Backoff, Schedule
from clients.desktop.online import OnlineChannel, keep_online
from clients.desktop.transport import Reply, Unreachable

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
ACTIVATION = Activation("12433636_CAS-B", "B", "12433636", "SC DEMO MEDICAL SRL",
                        "AAAAA-BBBB-CCCC-DDDD", "2026-03-01T07:00:00+00:00")


class Sequence:
    """A random source that returns the given values in turn."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


class Clock:
    """Time that passes only when the loop waits."""

    def __init__(self) -> None:
        self.now = T0
        self.waits: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        return False


class House:
    """The online channel: down until ``up_at``, answering 429 with Retry-After before
    ``throttle_until``; records when each attempt arrived."""

    def __init__(self, clock: Clock, up_at: datetime, stop_after: int, throttle_until=None,
                 retry_after: int = 0) -> None:
        self.clock, self.up_at, self.stop_after = clock, up_at, stop_after
        self.throttle_until, self.retry_after = throttle_until, retry_after
        self.attempts: list[tuple[datetime, str]] = []

    def __call__(self, url, payload, *, headers, context, timeout):
        self.attempts.append((self.clock.now, url.rsplit("/", 1)[-1]))
        if len(self.attempts) >= self.stop_after:
            raise KeyboardInterrupt  # the person closes the window: ends the test's loop
        if self.throttle_until and self.clock.now < self.throttle_until:
            return Reply(429, {"retry-after": str(self.retry_after)}, {})
        if self.clock.now < self.up_at:
            raise Unreachable("connection refused")
        return Reply(200, {}, {"semaphore": "online", "session_token": "t",
                               "expires_at": (self.clock.now + timedelta(hours=1)).isoformat()})


def run(house: House, clock: Clock, schedule: Schedule) -> None:
    channel = OnlineChannel("https://siui:8443", None, activation=lambda: ACTIVATION, post=house,
                            clock=clock)
    with pytest.raises(KeyboardInterrupt):
        keep_online(channel, lambda status: None, schedule=schedule, wait=clock.wait)


def test_the_ceiling_doubles_from_the_base_up_to_the_cap():
    backoff = Backoff(base=1.0, cap=300.0)
    assert [backoff.ceiling(n) for n in range(11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff.ceiling(10_000) == 300  # no overflow after days offline


def test_full_jitter_draws_the_whole_interval_below_the_ceiling():
    backoff = Backoff(base=1.0, cap=300.0, random=Sequence(0.0, 0.5, 0.999, 0.25))
    assert [backoff.next_delay() for _ in range(4)] == [0.0, 1.0, 3.996, 2.0]
    assert backoff.failures == 4
    backoff.reset()
    assert backoff.failures == 0


def test_retry_after_is_a_floor_and_the_jitter_spreads_over_at_least_as_long():
    backoff = Backoff(base=1.0, cap=300.0, random=Sequence(0.0, 0.5, 0.999, 0.5))
    assert backoff.next_delay(floor=120) == 120.0  # never earlier than the server said
    assert backoff.next_delay(floor=120) == 180.0  # 120 + 0.5 × max(2, 120)
    assert backoff.next_delay(floor=1) == pytest.approx(1 + 0.999 * 4)  # the ceiling is wider
    assert backoff.next_delay(floor=10 ** 9) == 3600 + 1800  # a bogus floor is bounded


def test_a_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError):
        Backoff(base=10, cap=1)
    with pytest.raises(ValueError):
        Schedule(0)


def test_an_outage_is_retried_on_the_jittered_schedule_then_the_heartbeat_takes_over():
    clock = Clock()
    # Down for 40 s: retries after U(0,2), U(0,4), U(0,8), ... (base 2 s), every draw 0.5.
    house = House(clock, up_at=T0 + timedelta(seconds=40), stop_after=9)
    draws = Sequence(0.5, 0.5, 0.5, 0.5, 0.5, 0.5,  # six failed connects' jitter
                     0.25)  # the new session's heartbeat phase; then every interval
    run(house, clock, Schedule(30.0, random=draws))
    times = [(at - T0).total_seconds() for at, _ in house.attempts]
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 70.5, 100.5]
    assert [kind for _, kind in house.attempts] == ["connect"] * 7 + ["heartbeat"] * 2
    assert clock.waits[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 7.5]  # 7.5 = 0.25 × 30 s


def test_the_failure_count_survives_a_connect_and_ends_with_a_confirmed_session():
    schedule = Schedule(10.0, random=lambda: 1.0 - 1e-9)
    for _ in range(4):
        schedule.next_delay(online=False, confirmed=False)
    schedule.next_delay(online=True, confirmed=False)  # connected, not yet confirmed
    assert schedule.backoff.failures == 4
    assert schedule.next_delay(online=False, confirmed=False) == pytest.approx(32.0)
    assert schedule.next_delay(online=True, confirmed=True) == 10.0  # a heartbeat held
    assert schedule.next_delay(online=False, confirmed=False) == pytest.approx(2.0)


def test_throttled_the_client_waits_at_least_retry_after_and_keeps_backing_off():
    clock = Clock()
    house = House(clock, up_at=T0, stop_after=4, throttle_until=T0 + timedelta(seconds=100),
                  retry_after=60)
    run(house, clock, Schedule(30.0, random=Sequence(0.5, 0.5, 0.5, 0.5)))
    gaps = [(b - a).total_seconds() for (a, _), (b, _) in zip(house.attempts, house.attempts[1:])]
    assert gaps == [90.0, 90.0, 0.5 * 30.0]  # 60 + 0.5 × 60 twice, then online at a phase


def test_a_new_session_beats_at_a_random_phase_within_the_interval():
    for draw in (0.0, 0.3, 0.999):
        schedule = Schedule(30.0, random=lambda d=draw: d)
        assert schedule.next_delay(online=True, confirmed=False) == pytest.approx(30.0 * draw)
        assert schedule.next_delay(online=True, confirmed=True) == 30.0


def outage(desktops: int, seconds: float, start, floor: float = 0.0) -> Counter[int]:
    """Attempts per second while the house is down, desktop ``i`` noticing at
    ``start(rng)`` and told to wait ``floor`` seconds each time."""
    per_second: Counter[int] = Counter()
    for seed in range(desktops):
        rng = random.Random(seed)
        schedule = Schedule(30.0, random=rng.random)
        t = start(rng)
        while True:
            t += schedule.next_delay(online=False, confirmed=False, retry_after=floor)
            if t >= seconds:
                break
            per_second[int(t)] += 1
    return per_second


def test_ten_thousand_desktops_losing_the_house_do_not_come_back_together():
    """The storm: the house goes down for 10 minutes; each desktop notices at its next
    heartbeat (its own phase in the 30 s interval). No second sees more than a small
    share of the desktops, and the load falls as the ceilings grow, to one attempt per
    desktop per 150 s on average (half the cap)."""
    desktops = 10_000
    per_second = outage(desktops, 600.0, start=lambda rng: rng.random() * 30.0)
    first = [per_second[s] for s in range(30)]
    late = [per_second[s] for s in range(300, 600)]
    assert max(per_second.values()) < 0.2 * desktops  # lock-step would be all of them
    assert sum(first) / 30 < 5 * desktops / 30  # < 5x the heartbeats' own rate at the start
    assert sum(late) / len(late) == pytest.approx(desktops / (CAP_SECONDS / 2), rel=0.15)
    assert max(late) < 2 * desktops / (CAP_SECONDS / 2)


def test_told_to_wait_together_they_return_spread_over_as_long_again():
    """An overloaded house answers everyone 429 with Retry-After: 30 at once: nobody
    returns before 30 s, and the returns spread over the next 30 s instead of a wave."""
    desktops = 10_000
    per_second = outage(desktops, 60.0, start=lambda rng: 0.0, floor=30.0)
    assert min(per_second) >= 30
    assert sum(per_second.values()) == desktops  # one return each within the minute
    assert max(per_second.values()) < 2 * desktops / 30


def test_heartbeats_of_desktops_connected_together_spread_over_the_interval():
    interval, desktops = 30.0, 3_000
    phases = Counter(int(Schedule(interval, random=random.Random(seed).random)
                         .next_delay(online=True, confirmed=False)) for seed in range(desktops))
    assert len(phases) == 30  # every second of the interval has its share
    assert max(phases.values()) < 2 * desktops / interval
