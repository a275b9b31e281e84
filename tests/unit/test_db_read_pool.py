"""shared.db.ReadPool's choices between the standby and the primary, on a clock of the
test's own: when the standby is tried, how long it is left alone after failing or
lagging, how often its lag is asked. The real servers: tests/integration/
test_database_standby_reads.py."""
from __future__ import annotations

import asyncpg
import pytest

from shared.db import LAG_CHECK_SECONDS, READ_RETRY_SECONDS, ReadPool


class FakeConnection:
    def __init__(self, name: str, pool: "FakePool"):
        self.name, self.pool = name, pool

    async def fetchval(self, sql: str, timeout: float | None = None):
        self.pool.lag_asked += 1
        if self.pool.fails_query:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return self.pool.lag


class FakePool:
    """What ReadPool uses of an asyncpg pool: acquire(timeout=), release, acquire() as a
    context manager (the primary's)."""

    def __init__(self, name: str):
        self.name = name
        self.refuses = False
        self.fails_query = False
        self.lag = 0.0
        self.lag_asked = 0
        self.out = 0

    async def _acquire(self):
        if self.refuses:
            raise ConnectionRefusedError(111, "Connection refused")
        self.out += 1
        return FakeConnection(self.name, self)

    def acquire(self, timeout: float | None = None):
        pool = self

        class Acquiring:
            def __await__(self):
                return pool._acquire().__await__()

            async def __aenter__(self):
                self.conn = await pool._acquire()
                return self.conn

            async def __aexit__(self, *exc):
                await pool.release(self.conn)

        return Acquiring()

    async def release(self, conn):
        self.out -= 1


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts():
    standby, primary, clock = FakePool("standby"), FakePool("primary"), Clock()
    return ReadPool(standby, max_lag=10.0, schema="users", clock=clock), standby, primary, clock


async def served_by(read_pool: ReadPool, primary: FakePool) -> str:
    async with read_pool.connection(primary) as conn:
        return conn.name


async def test_the_standby_serves_and_its_lag_is_asked_once_a_second(parts):
    read_pool, standby, primary, clock = parts
    assert [await served_by(read_pool, primary) for _ in range(5)] == ["standby"] * 5
    assert standby.lag_asked == 1
    clock.now += LAG_CHECK_SECONDS
    assert await served_by(read_pool, primary) == "standby"
    assert standby.lag_asked == 2
    assert (standby.out, primary.out) == (0, 0)  # every connection given back
    assert read_pool.served == {"read_pool": 6, "primary_pool": 0}


async def test_a_standby_away_is_left_alone_for_the_retry_interval(parts):
    read_pool, standby, primary, clock = parts
    standby.refuses = True
    assert await served_by(read_pool, primary) == "primary"
    standby.refuses = False  # back, but not asked again before the interval
    clock.now += READ_RETRY_SECONDS - 0.1
    assert await served_by(read_pool, primary) == "primary"
    clock.now += 0.1
    assert await served_by(read_pool, primary) == "standby"
    assert standby.lag_asked == 1  # asked afresh after the spell
    assert read_pool.served == {"read_pool": 1, "primary_pool": 2}


async def test_a_standby_dying_between_connect_and_lag_check_sends_the_read_to_the_primary(parts):
    read_pool, standby, primary, clock = parts
    standby.fails_query = True
    assert await served_by(read_pool, primary) == "primary"
    assert (standby.out, primary.out) == (0, 0)


async def test_a_lagging_standby_is_asked_again_a_second_later(parts):
    read_pool, standby, primary, clock = parts
    standby.lag = 10.5
    assert await served_by(read_pool, primary) == "primary"
    assert (standby.out, standby.lag_asked) == (0, 1)
    assert await served_by(read_pool, primary) == "primary"  # within the second: not asked
    assert standby.lag_asked == 1
    standby.lag = 3.0
    clock.now += LAG_CHECK_SECONDS
    assert await served_by(read_pool, primary) == "standby"
    # Infinite lag (no commit replayed, none known) never passes.
    standby.lag = float("inf")
    clock.now += LAG_CHECK_SECONDS
    assert await served_by(read_pool, primary) == "primary"


async def test_a_read_url_refused_by_the_server_falls_back_too(parts, monkeypatch):
    read_pool, standby, primary, clock = parts

    async def refused():
        raise asyncpg.InvalidPasswordError("password authentication failed for user \"siui\"")

    monkeypatch.setattr(standby, "_acquire", refused)
    assert await served_by(read_pool, primary) == "primary"
    assert read_pool.served == {"read_pool": 0, "primary_pool": 1}
