"""The :8443 admission gate: who is served, who waits its turn (and for how long), who is
told 503, who is closed at accept, and how the Retry-After it tells is spread."""
from __future__ import annotations

import pytest

from services.ocsp.online.shedding import Gate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(**kw) -> Gate:
    settings = {"max_inflight": 2, "max_waiting": 2, "max_shedding": 1, "max_wait": 5.0, "retry_after": 10,
                **kw}
    return Gate(**settings)


def test_served_then_waiting_then_shed_then_closed():
    g = gate()
    places = [g.arrive() for _ in range(5)]
    assert [p.state for p in places] == ["run", "run", "wait", "wait", "shed"]
    assert g.arrive() is None  # every bound reached: closed at accept
    assert g.counts == {"admitted": 2, "waited": 2, "shed": 1, "closed": 1}
    assert (g.admitted, g.waiting, g.shedding, g.pending) == (2, 2, 1, 5)


def test_a_freed_place_starts_the_oldest_waiting_connection():
    g = gate()
    first, _, older, newer = (g.arrive() for _ in range(4))
    turns = []
    older.started = lambda go: turns.append(("older", go))
    newer.started = lambda go: turns.append(("newer", go))
    first.release()
    first.release()  # once only: the first answer and the close both release
    assert turns == [("older", True)] and older.state == "run" and newer.waiting
    assert (g.admitted, g.waiting) == (2, 1)


def test_a_connection_that_waited_too_long_is_closed_unserved_and_the_next_one_served():
    clock = Clock()
    g = gate(clock=clock, max_waiting=3)
    first, _, stale = g.arrive(), g.arrive(), g.arrive()
    clock.now += 6
    fresh = g.arrive()
    turns = []
    stale.started = lambda go: turns.append(("stale", go))
    fresh.started = lambda go: turns.append(("fresh", go))
    first.release()
    assert turns == [("stale", False), ("fresh", True)]
    assert g.counts["expired"] == 1 and stale.released
    stale.release()  # its close afterwards changes nothing
    assert (g.admitted, g.waiting) == (2, 0)


def test_once_the_queue_stalls_the_newest_is_served_first():
    clock = Clock()
    g = gate(clock=clock, max_waiting=3)
    first, _, old = g.arrive(), g.arrive(), g.arrive()
    clock.now += 3  # more than half of max_wait: the oldest is likely to give up before its answer
    new = g.arrive()
    turns = []
    old.started = lambda go: turns.append(("old", go))
    new.started = lambda go: turns.append(("new", go))
    first.release()
    assert turns == [("new", True)] and old.waiting


def test_a_connection_gone_while_waiting_leaves_the_queue():
    g = gate()
    g.arrive(), g.arrive()
    gone = g.arrive()
    gone.release()
    assert g.waiting == 0 and g.arrive().waiting


def test_nothing_waits_while_places_are_free_and_the_observer_hears_everything():
    heard = []
    g = gate(observe=lambda what, _g: heard.append(what))
    place = g.arrive()
    place.release()
    assert g.arrive().state == "run"
    assert heard == ["admitted", "left", "admitted"]


def test_retry_after_is_spread_over_the_upper_half():
    draws = iter([0.0, 0.5, 0.999999])
    g = gate(random=lambda: next(draws))
    assert [g.retry_after_seconds() for _ in range(3)] == [5, 8, 10]
    assert gate(retry_after=1, random=lambda: 0.99).retry_after_seconds() == 1


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        gate(max_inflight=0)
    with pytest.raises(ValueError):
        gate(retry_after=0)
    with pytest.raises(ValueError):
        gate(max_wait=0)
