"""users: the password-checking gate (bounded threads, bounded queue, Busy at once)."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from services.users.gate import CHECK_NICENESS, Busy, LoginGate


@pytest.fixture
def gate():
    gate = LoginGate(concurrency=1, queue_limit=1)
    yield gate
    gate.close()


async def test_beyond_the_threads_and_the_queue_a_login_is_refused_at_once(gate):
    release = threading.Event()
    started = threading.Event()

    def held() -> str:
        started.set()
        release.wait(10)
        return "checked"

    async def login() -> str:
        async with gate.reserve() as place:
            return await place.run(held)

    running = asyncio.create_task(login())
    waiting = asyncio.create_task(login())
    await asyncio.to_thread(started.wait, 10)
    assert gate.admitted == 2
    with pytest.raises(Busy) as refused:
        async with gate.reserve():
            pass  # never reached
    assert refused.value.retry_after == 1
    release.set()
    assert await asyncio.wait_for(asyncio.gather(running, waiting), 10) == ["checked", "checked"]
    assert gate.admitted == 0
    async with gate.reserve() as place:  # room again
        assert await place.run(lambda: 42) == 42


async def test_no_more_checks_run_at_once_than_threads():
    gate = LoginGate(concurrency=2, queue_limit=10)
    lock = threading.Lock()
    now = peak = 0

    def check() -> None:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        threading.Event().wait(0.01)  # a check's CPU time, in miniature
        with lock:
            now -= 1

    async def login() -> None:
        async with gate.reserve() as place:
            await place.run(check)

    try:
        await asyncio.gather(*(login() for _ in range(12)))
    finally:
        gate.close()
    assert peak == 2


async def test_checks_run_below_the_event_loops_priority(gate):
    async with gate.reserve() as place:
        thread = await place.run(threading.get_native_id)
    assert os.getpriority(os.PRIO_PROCESS, thread) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + CHECK_NICENESS)


def test_a_gate_needs_a_thread():
    with pytest.raises(ValueError):
        LoginGate(concurrency=0, queue_limit=1)
