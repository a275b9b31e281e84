"""The password-checking gate: argon2 runs here, a bounded number at a time.

argon2id costs tens of milliseconds of CPU per check by design. Run on the default
executor, every login in flight is a thread competing for the cores with the event loop
and PostgreSQL; run inside a transaction, it also holds a pool connection. The gate runs
checks in its own thread pool of ``concurrency`` threads (argon2-cffi releases the GIL,
so they really run beside the event loop), lets at most ``queue_limit`` more wait for a
thread, and refuses the next one at once (``Busy``): the caller answers 503 with
Retry-After instead of letting a queue grow without bound. The threads run at a lower
priority than the rest of the process: short of CPU, logins wait, the API does not.

A place is reserved (``reserve``) before the attempt touches the database, so a login
refused as Busy has not been counted anywhere.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from prometheus_client import Gauge

T = TypeVar("T")

WAITING = Gauge("siui_users_login_checks_waiting", "Logins waiting for a password-checking thread")
RUNNING = Gauge("siui_users_login_checks_running", "Password checks running")


#: How much nicer than the process the checking threads are (Linux schedules threads one
#: by one): when the cores are short, the event loop and PostgreSQL go first and logins
#: wait, not the other way round.
CHECK_NICENESS = 10


def _yield_to_the_event_loop() -> None:
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + CHECK_NICENESS))
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the usual priority
        pass


class Busy(Exception):
    """Every checking thread is busy and the queue is full: try again in ``retry_after`` s."""

    def __init__(self, retry_after: int):
        super().__init__(f"login checks are all busy; retry after {retry_after} s")
        self.retry_after = retry_after


class Place:
    """A reserved place in the gate: ``run`` waits for a thread, then runs ``fn`` there."""

    def __init__(self, gate: "LoginGate"):
        self._gate = gate

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await self._gate._run(fn, *args)


class LoginGate:
    """At most ``concurrency`` checks at once, at most ``queue_limit`` waiting."""

    def __init__(self, concurrency: int, queue_limit: int, *, retry_after: int = 1):
        if concurrency < 1 or queue_limit < 0:
            raise ValueError("the gate needs concurrency >= 1 and queue_limit >= 0")
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.retry_after = retry_after
        self._admitted = 0  # reserved places: running, waiting, or on their way to the gate
        self._slots = asyncio.Semaphore(concurrency)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="login-check",
                                            initializer=_yield_to_the_event_loop)

    @property
    def admitted(self) -> int:
        return self._admitted

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator[Place]:
        """A place, or Busy at once when ``concurrency + queue_limit`` are taken."""
        if self._admitted >= self.concurrency + self.queue_limit:
            raise Busy(self.retry_after)
        self._admitted += 1
        try:
            yield Place(self)
        finally:
            self._admitted -= 1

    async def _run(self, fn: Callable[..., T], *args) -> T:
        WAITING.inc()
        try:
            await self._slots.acquire()
        finally:
            WAITING.dec()
        RUNNING.inc()
        try:
            # The pool has ``concurrency`` threads: even a caller that went away (its
            # check still finishing) never makes more checks run at once.
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            RUNNING.dec()
            self._slots.release()

    def close(self) -> None:
        """Stop the threads (after the checks under way)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
