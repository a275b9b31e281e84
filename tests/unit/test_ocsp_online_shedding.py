"""The :8443 admission gate: who is served, who is told 503, who is closed at accept,
and how the Retry-After it tells is spread."""
from __future__ import annotations

import pytest

from services.ocsp.online.shedding import Gate


def test_admits_up_to_the_bound_then_sheds_then_closes():
    gate = Gate(max_inflight=2, max_pending=3, retry_after=10)
    first, second, third = gate.arrive(), gate.arrive(), gate.arrive()
    assert (first.shed, second.shed, third.shed) == (False, False, True)
    assert gate.arrive() is None  # the pending bound: closed at accept
    assert gate.counts == {"admitted": 2, "shed": 1, "closed": 1}
    first.release()
    first.release()  # once only: the first answer and the close both release
    assert (gate.admitted, gate.pending) == (1, 2)
    assert gate.arrive().shed is False  # a place freed is a place to serve
    third.release()
    assert gate.pending == 2 and gate.admitted == 2


def test_retry_after_is_spread_over_the_upper_half():
    draws = iter([0.0, 0.5, 0.999999])
    gate = Gate(1, 1, retry_after=10, random=lambda: next(draws))
    assert [gate.retry_after_seconds() for _ in range(3)] == [5, 8, 10]
    assert Gate(1, 1, retry_after=1, random=lambda: 0.99).retry_after_seconds() == 1


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        Gate(max_inflight=4, max_pending=3, retry_after=1)
    with pytest.raises(ValueError):
        Gate(max_inflight=1, max_pending=1, retry_after=0)
