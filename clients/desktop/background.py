"""Work off the window's thread, results back on it. Tk-free, so it is unit-tested.

Tk may only be touched from the thread that runs its main loop, and a network call in
that thread freezes the window (a TLS connect to an unreachable house can take the
whole timeout). So every call runs in a worker thread and puts its outcome on a queue;
the window drains the queue from its own loop (``after()``), and each callback then runs
on the window's thread. A result carries the generation it was started in: when the
person has moved on (cancelled the wizard, connected with another certificate) a late
answer from before is dropped instead of overwriting what is shown now.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from clients.desktop.backoff import Schedule
from clients.desktop.online import OnlineChannel, Status, keep_online

MAX_PENDING = 1000  # results waiting for the window; a stuck window must not grow memory
TOPIC = "online"


class Background:
    """Runs jobs in threads; :meth:`drain` (on the window's thread) delivers results.

    Results belong to a *topic* ("wizard", "online", ...); :meth:`begin` starts a new
    generation of a topic, and results of its older generations are dropped.
    """

    def __init__(self) -> None:
        self._results: queue.Queue = queue.Queue(MAX_PENDING)
        self._current: dict[str, int] = {}  # touched on the window's thread only

    def begin(self, topic: str) -> int:
        """Forget whatever of ``topic`` is still running: its results will be dropped."""
        self._current[topic] = self._current.get(topic, 0) + 1
        return self._current[topic]

    def run(self, work: Callable[[], Any], done: Callable[[Any], None],
            failed: Callable[[Exception], None] | None = None, *,
            topic: str = "job") -> threading.Thread:
        """``work()`` in a new thread; then ``done(result)`` — or ``failed(exc)`` when
        it raised — on the window's thread, at the next :meth:`drain`."""
        generation = self._current.get(topic, 0)

        def job() -> None:
            try:
                result = work()
            except Exception as exc:  # delivered, not lost in a dead thread
                if failed is None:
                    raise
                self.post(lambda error=exc: failed(error), topic, generation)
            else:
                self.post(lambda: done(result), topic, generation)

        thread = threading.Thread(target=job, daemon=True, name=f"siui-desktop-{topic}")
        thread.start()
        return thread

    def post(self, callback: Callable[[], None], topic: str, generation: int) -> None:
        """Queue ``callback`` for the window's thread (callable from any thread)."""
        self._results.put((topic, generation, callback))

    def drain(self, limit: int = 100) -> int:
        """Run up to ``limit`` queued callbacks still current; returns how many ran.
        Call it from the window's thread only."""
        ran = 0
        while ran < limit:
            try:
                topic, generation, callback = self._results.get_nowait()
            except queue.Empty:
                break
            if generation == self._current.get(topic, 0):
                callback()
                ran += 1
        return ran


class OnlineSession:
    """One :func:`keep_online` loop in a worker thread, showing each status through
    ``background`` (so on the window's thread). :meth:`stop` ends it at its next wait;
    a request in flight finishes first (its result is dropped), and the channel lets no
    second one start meanwhile."""

    def __init__(self, background: Background, channel: OnlineChannel, schedule: Schedule,
                 show: Callable[[Status], None]) -> None:
        self._background = background
        self._channel = channel
        self._schedule = schedule
        self._show = show
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("an online session runs once")
        generation = self._background.begin(TOPIC)

        def show(status: Status) -> None:
            if not self._stopped.is_set():
                self._background.post(lambda: self._show(status), TOPIC, generation)

        self._thread = threading.Thread(
            target=lambda: keep_online(self._channel, show, schedule=self._schedule,
                                       wait=self._stopped.wait),
            daemon=True, name="siui-desktop-online")
        self._thread.start()

    def stop(self) -> None:
        """End the loop at its next wait; statuses not yet shown are dropped."""
        self._stopped.set()
        self._background.begin(TOPIC)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end (after :meth:`stop`); True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running
