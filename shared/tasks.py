"""Background tasks with one lifecycle, so no service writes its own.

A ``BackgroundTask`` runs ``target(stopping)`` for the life of a cleanup context:

* started when the context starts, never at import;
* restarted with a growing delay when it crashes (a bug or an outage must not leave a
  service silently without its relay, writer or follower), each restart logged and
  counted in ``siui_background_task_restarts_total``;
* stopped in bounded time: ``stopping`` is set first, so a task that must finish its
  work (drain a buffer, publish what was committed) returns on its own; whatever still
  runs after ``stop_timeout`` is cancelled.

A target is a coroutine function taking the ``stopping`` event and normally looping
``while not stopping.is_set()``; ``wait_stopping`` is the interruptible sleep for it.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

from shared.logging import get_logger

log = get_logger(__name__)

Target = Callable[[asyncio.Event], Awaitable[None]]

RESTARTS = Counter("siui_background_task_restarts_total", "Background tasks restarted after a crash", ["task"])

FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0


async def wait_stopping(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stopping`` is set; True when it is set."""
    if stopping.is_set():
        return True
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


class BackgroundTask:
    """One long-running coroutine: started, restarted after a crash, stopped in time."""

    def __init__(self, name: str, target: Target, *, stop_timeout: float = 5.0, cancel_on_stop: bool = False,
                 first_delay: float = FIRST_RESTART_DELAY, max_delay: float = MAX_RESTART_DELAY) -> None:
        self.name = name
        self.target = target
        # A follower has nothing to finish: cancelling it at once is its clean stop.
        self.stop_timeout = 0.0 if cancel_on_stop else stop_timeout
        self.cancel_on_stop = cancel_on_stop
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stopping = asyncio.Event()
        self.restarts = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start running (in the current event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=self.name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _supervise(self) -> None:
        delay = self.first_delay
        while not self.stopping.is_set():
            started = asyncio.get_running_loop().time()
            try:
                await self.target(self.stopping)
                return  # finished on its own (or because stopping was set)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping.is_set():
                    log.warning("background_task_failed_while_stopping", task=self.name, error=repr(exc))
                    return
                self.restarts += 1
                RESTARTS.labels(self.name).inc()
                # A task that ran a good while before failing starts over with a short delay.
                if asyncio.get_running_loop().time() - started > self.max_delay:
                    delay = self.first_delay
                log.exception("background_task_crashed", task=self.name, restart_in=round(delay, 2))
                if await wait_stopping(self.stopping, delay):
                    return
                delay = min(delay * 2, self.max_delay)

    async def stop(self) -> None:
        """Ask the task to finish, wait at most ``stop_timeout`` seconds, then cancel it."""
        self.stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        if not self.cancel_on_stop:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.stop_timeout)
            except asyncio.TimeoutError:
                log.warning("background_task_cancelled_at_stop", task=self.name, after_seconds=self.stop_timeout)
            except Exception:  # already logged by _supervise, or a crash while stopping
                pass
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def background_ctx(name: str, make_target: Callable[[web.Application], Target], *,
                   stop_timeout: float = 5.0, cancel_on_stop: bool = False):
    """cleanup_ctx: run ``make_target(app)`` as a ``BackgroundTask`` while the app runs."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = BackgroundTask(name, make_target(app), stop_timeout=stop_timeout, cancel_on_stop=cancel_on_stop)
        task.start()
        try:
            yield
        finally:
            await task.stop()

    return ctx


def every(seconds: float, job: Callable[[], Awaitable[None]], *, name: str,
          first_delay: float = 0.0) -> Target:
    """A target that runs ``job()`` every ``seconds`` (after ``first_delay``) until stopped;
    a failing round is logged and tried again next time (housekeeping such as purges)."""

    async def target(stopping: asyncio.Event) -> None:
        if first_delay and await wait_stopping(stopping, first_delay):
            return
        while not stopping.is_set():
            try:
                await job()
            except Exception as exc:  # database away or busy: next round
                log.warning("periodic_job_failed", job=name, error=repr(exc))
            if await wait_stopping(stopping, seconds):
                return

    return target


def periodic_ctx(name: str, every_seconds: float, job: Callable[[web.Application], Awaitable[None]]):
    """cleanup_ctx: ``job(app)`` now and every ``every_seconds`` while the app runs."""
    return background_ctx(name, lambda app: every(every_seconds, lambda: job(app), name=name))
