"""The OCSP log forgets on time, per house group, in a real PostgreSQL: whole days
dropped once every group is done with them, days some groups still keep rewritten with
only their rows, stray rows (no day partition) held to the same limits, and a second
run finding nothing to do."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import asyncpg
import pytest

from services.ocsp.log import queries as q
from services.ocsp.log.partitions import PartitionKeeper
from services.ocsp.log.retention import parse_retention
from shared.db import close_pool, create_pool
from tests.support import infra

TODAY = date(2026, 12, 2)
HOUSES = ("B", "IF", "CJ", "AB", None)  # B and IF keep 180 days, CJ 30, AB and no house 90


@pytest.fixture
async def pool():
    url = await infra.create_database("siui_test_retention")
    await infra.migrate_schema(url, "ocsp", "services.ocsp")
    pool = await create_pool(url, "ocsp", max_size=2)
    yield pool
    await close_pool(pool)
    await infra.drop_database(url)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), timezone.utc)


async def seed(conn: asyncpg.Connection, ages: list[int], *, with_partition: bool = True) -> None:
    for age in ages:
        day = TODAY - timedelta(days=age)
        if with_partition:
            await q.ensure_day_partition(conn, day)
        await q.copy_entries(conn, [(noon(day), "ocsp", "good", 0.1, "10.0.0.1", cas,
                                     f"{age}_CAS-{cas}" if cas else None, str(age), None, None, None)
                                    for cas in HOUSES])


async def kept(conn: asyncpg.Connection) -> dict[int, set]:
    rows = await conn.fetch("select serial, cas from ocsp_log")
    out: dict[int, set] = {}
    for row in rows:
        out.setdefault(int(row["serial"]), set()).add(row["cas"])
    return out


async def test_each_house_group_keeps_its_own_days(pool):
    policy = parse_retention(90, "B,IF=180; CJ=30")
    keeper = PartitionKeeper(pool, policy=policy, clock=lambda: noon(TODAY))
    async with pool.acquire() as conn:
        await seed(conn, [0, 20, 30, 31, 90, 91, 180, 181, 400])
        await seed(conn, [50, 250], with_partition=False)  # no partition: the default one takes them
        assert set(await q.day_partitions(conn)) >= {TODAY - timedelta(days=a) for a in (0, 181, 400)}

    await keeper.ensure_now()

    everyone = set(HOUSES)
    async with pool.acquire() as conn:
        assert await kept(conn) == {
            0: everyone, 20: everyone, 30: everyone,      # within every group's limit
            31: everyone - {"CJ"}, 50: everyone - {"CJ"},  # CJ's 30 days are past
            90: everyone - {"CJ"},
            91: {"B", "IF"}, 180: {"B", "IF"},            # only the 180-day group still keeps them
        }                                                  # 181, 250, 400: nobody's any more
        days = set(await q.day_partitions(conn))
        assert TODAY - timedelta(days=180) in days and TODAY - timedelta(days=181) not in days
        trimmed = {row["day"]: (row["kept"], row["rows_kept"])
                   for row in await conn.fetch("select day, kept, rows_kept from ocsp_log_trimmed")}
        assert trimmed == {TODAY - timedelta(days=31): ("B,IF|others", 4),
                           TODAY - timedelta(days=90): ("B,IF|others", 4),
                           TODAY - timedelta(days=91): ("B,IF", 2),
                           TODAY - timedelta(days=180): ("B,IF", 2)}
        # A rewritten day is still a whole partition: its indexes are back, and the log's
        # filters find its rows through them.
        part = "ocsp_log_" + (TODAY - timedelta(days=91)).strftime("%Y%m%d")
        fresh = "ocsp_log_" + TODAY.strftime("%Y%m%d")
        count = "select count(*) from pg_indexes where schemaname = 'ocsp' and tablename = $1"
        assert await conn.fetchval(count, part) == await conn.fetchval(count, fresh) == 4
        rows = await q.entries_after(conn, 0, 10, username="91_CAS-B")
        assert [r["serial"] for r in rows] == ["91"]
        before = await conn.fetch("select day, trimmed_at from ocsp_log_trimmed order by day")

    # The next hour's run (or another process's) finds every day as its rule says.
    await keeper.ensure_now()
    async with pool.acquire() as conn:
        assert await conn.fetch("select day, trimmed_at from ocsp_log_trimmed order by day") == before

    # A day later, day 31 becomes 32 (same rule: untouched) and day 90 becomes 91: the
    # default's rows go, and its record says so.
    tomorrow = PartitionKeeper(pool, policy=policy, clock=lambda: noon(TODAY + timedelta(days=1)))
    await tomorrow.ensure_now()
    async with pool.acquire() as conn:
        assert (await kept(conn))[90] == {"B", "IF"} and (await kept(conn))[31] == everyone - {"CJ"}
        rule = await conn.fetchval("select kept from ocsp_log_trimmed where day = $1", TODAY - timedelta(days=90))
        assert rule == "B,IF"


async def test_without_groups_whole_days_are_dropped_and_nothing_rewritten(pool):
    keeper = PartitionKeeper(pool, policy=parse_retention(90, ""), clock=lambda: noon(TODAY))
    async with pool.acquire() as conn:
        await seed(conn, [0, 90, 91])
    await keeper.ensure_now()
    async with pool.acquire() as conn:
        assert set(await kept(conn)) == {0, 90}
        assert await conn.fetchval("select count(*) from ocsp_log_trimmed") == 0
