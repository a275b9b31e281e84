"""Following PostgreSQL notifications: one LISTEN connection per process, that comes back.

``pg_notify`` in a transaction is delivered when (and only if) it commits, which makes it
the cheapest way to tell every process of a change. But a notification sent while the
listening connection is away is gone for good, so a follower must be told when to
re-read everything. That is what ``Listener`` does, once, for every user in a process:

* it holds one dedicated connection (not a pool connection: a pool must be free to
  recycle its connections, and a LISTEN held forever would pin one);
* every channel's notifications go to that channel's ``Subscription``, in order;
* after every (re)connect, once LISTEN is in place, each subscription receives
  ``RESYNC``: the subscriber reloads what it follows. Listening first and loading second
  means a change committed during the load is both in the reload and in the queue,
  which followers apply idempotently;
* it notices a lost connection (termination callback, and a ``select 1`` every few
  seconds, because a dead peer is not always reported) and reconnects with a growing
  delay, so a database restart costs followers one reload, not their notifications.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from shared.logging import get_logger
from shared.tasks import wait_stopping
from shared.transient import DATABASE_AWAY

log = get_logger(__name__)

HEALTH_INTERVAL = 5.0     # seconds between liveness checks of the listening connection
FIRST_DELAY = 0.2
MAX_DELAY = 5.0           # a restarted database is noticed within this after it is back
QUEUE_BOUND = 100_000     # notes a slow subscriber may lag behind; beyond it: one RESYNC


class _Resync:
    __slots__ = ()

    def __repr__(self) -> str:
        return "RESYNC"


#: Put into every subscription after each (re)connect: notifications may have been missed.
RESYNC = _Resync()


class Subscription:
    """The notifications of one channel, in order, with ``RESYNC`` after each reconnect."""

    def __init__(self, channel: str, bound: int = QUEUE_BOUND) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[str | _Resync] = asyncio.Queue()
        self._bound = bound

    def _put(self, item: str | _Resync) -> None:
        if self._queue.qsize() >= self._bound:
            # The subscriber is far behind: one full re-read replaces what is queued.
            while not self._queue.empty():
                self._queue.get_nowait()
            item = RESYNC
        self._queue.put_nowait(item)

    async def get(self) -> str | _Resync:
        """The next notification payload, or ``RESYNC``."""
        return await self._queue.get()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for anything; take everything queued. True if anything came
        (for followers that only need to know that something changed)."""
        if self._queue.empty():
            try:
                await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                return False
        while not self._queue.empty():
            self._queue.get_nowait()
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()


Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Listener:
    """One LISTEN connection for the whole process; see the module docstring."""

    def __init__(self, database_url: str, *, connect: Connect | None = None,
                 health_interval: float = HEALTH_INTERVAL, max_delay: float = MAX_DELAY) -> None:
        self.database_url = database_url
        self._connect = connect or self._default_connect
        self.health_interval = health_interval
        self.max_delay = max_delay
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._added: asyncio.Event | None = None
        self._listening: set[str] = set()  # channels LISTENed on the current connection
        self.connected = False
        self.reconnects = 0

    async def _default_connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url, timeout=10,
                                     server_settings={"application_name": "siui-listen"})

    def subscribe(self, channel: str) -> Subscription:
        """A new subscription to ``channel``; works before and while running (it gets its
        first ``RESYNC`` once its LISTEN is in place)."""
        subscription = Subscription(channel)
        self._subscriptions.setdefault(channel, []).append(subscription)
        if channel in self._listening:
            subscription._put(RESYNC)  # already listened on: it may load at once
        elif self._added is not None:
            self._added.set()
        return subscription

    def _dispatch(self, _conn, _pid, channel: str, payload: str) -> None:
        for subscription in self._subscriptions.get(channel, ()):
            subscription._put(payload)

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: connect, LISTEN, resync every subscriber, follow; again after a loss."""
        self._added = asyncio.Event()
        delay = FIRST_DELAY
        while not stopping.is_set():
            conn = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                self._listening = set()
                await self._listen_new(conn)
                if self.reconnects:
                    log.info("listen_reconnected", channels=sorted(self._listening), reconnects=self.reconnects)
                self.connected = True
                delay = FIRST_DELAY
                await self._follow(conn, lost, stopping)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # database away: followers keep what they have
                if not stopping.is_set():
                    log.warning("listen_connection_lost", error=repr(exc), retry_in=round(delay, 2))
            finally:
                self.connected = False
                self._listening = set()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            if stopping.is_set() or await wait_stopping(stopping, delay):
                return
            self.reconnects += 1
            delay = min(delay * 2, self.max_delay)

    async def _listen_new(self, conn: asyncpg.Connection) -> None:
        self._added.clear()
        for channel, subscriptions in list(self._subscriptions.items()):
            if channel in self._listening:
                continue
            await conn.add_listener(channel, self._dispatch)
            self._listening.add(channel)
            for subscription in subscriptions:
                subscription._put(RESYNC)

    async def _follow(self, conn: asyncpg.Connection, lost: asyncio.Event, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            waits = [asyncio.ensure_future(e.wait()) for e in (lost, stopping, self._added)]
            try:
                await asyncio.wait(waits, timeout=self.health_interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if stopping.is_set():
                return
            if lost.is_set() or conn.is_closed():
                raise ConnectionError("the listening connection closed")
            if self._added.is_set():
                await self._listen_new(conn)
                continue
            await asyncio.wait_for(conn.fetchval("select 1"), 2.0)  # raises when it is dead


class Follower:
    """Keeps something in this process's memory equal to tables, through one subscription:
    a full ``reload()`` at every ``RESYNC`` (the first load waits for the first one, so
    listening comes before loading), then each note ``apply``-ed in order. ``run`` is a
    ``shared.tasks`` target; ``loaded`` is set after the first full load.

    A note that could not be applied leaves a reload due: with the database away it
    raises (the task is restarted with a delay and reloads first); any other failure is
    logged and everything is read again at once, so memory is never left wrong.
    """

    def __init__(self, notes: Subscription) -> None:
        self.notes = notes
        self.loaded = asyncio.Event()
        self._reload_due = False

    async def reload(self) -> object:
        """Read everything; what it returns is logged (a count, say)."""
        raise NotImplementedError

    async def apply(self, payload: str) -> None:
        """Apply one note's payload."""
        raise NotImplementedError

    async def run(self, stopping: asyncio.Event) -> None:
        name = type(self).__name__
        while not stopping.is_set():
            if self._reload_due:
                loaded = await self.reload()  # raises while the database is away: restarted
                self._reload_due = False
                if self.loaded.is_set():
                    log.info("follower_resynced", follower=name, loaded=loaded)
                self.loaded.set()
            item = await self.notes.get()
            if item is RESYNC:
                self._reload_due = True
                continue
            try:
                await self.apply(item)
            except DATABASE_AWAY:
                self._reload_due = True  # this note's row was not read: read everything
                raise
            except Exception:
                log.exception("follower_note_failed", follower=name, payload=item[:200])
                self._reload_due = True


LISTENER = web.AppKey("listener", Listener)
