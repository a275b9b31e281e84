"""A primary and its streaming standby, both of the test's own; the services' multi-host
DSN (``postgresql://…@primary,standby/db``, read-write added by shared.config.writable).
The primary dies, the standby is promoted by hand (``pg_ctl promote``: Patroni's job in
production), and writes resume through the same DSN, the shared pool refilling from the
new primary; nothing a client saw committed is lost (synchronous replication, as a
production pair runs: a commit returns once the standby has it).

About ten seconds (two servers, a base backup with a fast checkpoint): in ``make test``."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from shared.config import CommonConfig
from shared.db import create_pool
from shared.migrations import migrate
from shared.transient import DATABASE_AWAY
from tests.chaos.infra import remove_tree
from tests.support.cluster import streaming_pair, wait_for, workspace

pytestmark = pytest.mark.timeout(300)

ROLE, PASSWORD, DATABASE = "siui_ha", "siui_ha", "siui_ha"


@pytest.fixture
async def pair():
    base = workspace("siui-pgpair-")
    try:
        # Synchronous, as a production pair runs: a promoted standby holds every commit
        # any client was told of.
        async with streaming_pair(base, ROLE, PASSWORD, DATABASE, synchronous=True) as (primary, standby):
            yield primary, standby
    finally:
        remove_tree(base)


async def test_writes_resume_through_the_multi_host_dsn_after_promotion(pair):
    primary, standby = pair
    given = (f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}")
    common = CommonConfig.from_env({"SIUI_DATABASE_URL": given})
    dsn = common.database_url
    assert dsn.endswith("target_session_attrs=read-write")

    # A service's start: its migrations (as the owner: the same role here), then its pool.
    await migrate(dsn, "certs", "services.certs")
    pool = await create_pool(dsn, "certs", max_size=4)
    await pool.execute("create table ledger (n bigint primary key)")
    committed: list[int] = []
    away: list[str] = []
    unexpected: list[BaseException] = []
    promoted_at: list[float] = []
    resumed_at: list[float] = []
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await pool.execute("insert into ledger (n) values ($1)", n)
            except DATABASE_AWAY as exc:  # what a request answers 503 for
                away.append(type(exc).__name__)
                await asyncio.sleep(0.05)  # the pace of a client retrying
                continue
            except BaseException as exc:  # noqa: BLE001 - a 500: the test fails on it
                unexpected.append(exc)
                return
            committed.append(n)
            if promoted_at and not resumed_at:
                resumed_at.append(time.monotonic())

    task = asyncio.create_task(writer())
    try:
        await wait_for(lambda: len(committed) >= 200, timeout=60, what="200 writes on the primary")
        await primary._pg_ctl("-w", "-m", "immediate", "stop")  # the primary's machine dies
        killed_at = time.monotonic()
        await wait_for(lambda: away, timeout=30, what="the writer seeing the database away")
        await standby.promote()
        promoted_at.append(time.monotonic())
        before = len(committed)
        await wait_for(lambda: len(committed) >= before + 200, timeout=60,
                       what="200 writes after the promotion")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert not unexpected, unexpected
    try:
        on = await pool.fetchrow("select inet_server_port() as port, pg_is_in_recovery() as standby")
        assert (on["port"], on["standby"]) == (standby.port, False)
        stored = {r["n"] for r in await pool.fetch("select n from ledger")}
        lost = [n for n in committed if n not in stored]
        assert not lost, f"{len(lost)} committed writes lost: {lost[:10]}"
        # The ledger, printed for the note (pytest -s).
        print(f"\nledger: {len(committed)} writes committed, {len(lost)} lost, {len(away)} answered "
              f"'away' (503) in the gap; promotion {promoted_at[0] - killed_at:.2f}s after the kill, "
              f"writes resumed {resumed_at[0] - promoted_at[0]:.2f}s after the promotion; kinds: {sorted(set(away))}")
    finally:
        await pool.close()
