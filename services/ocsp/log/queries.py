"""SQL of the OCSP log: one function per statement, each taking a connection.

The caller owns the transaction. ``LOG_COLUMNS`` is what the COPY writes (``id`` comes
from the sequence); ``ENTRY_COLUMNS`` is what the API reads back.
"""
from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from datetime import date, datetime

import asyncpg

LOG_TABLE = "ocsp_log"
LOG_COLUMNS = ("at", "operation", "status", "latency_ms", "client", "cas", "username", "serial",
               "issuer_id", "certificate_id", "detail")
ENTRY_COLUMNS = "id, " + ", ".join(LOG_COLUMNS)
# The same key ocsp_log_ensure_day takes (002_log_and_keys.sql): one writer at a time.
WRITER_LOCK = "siui-ocsp-log"
NOTIFY_CHANNEL = "ocsp_log"

# Optional filters shared by the listing statements; a NULL parameter means "any".
_FILTERS = """($1::text is null or cas = $1)
          and ($2::text is null or username = $2)
          and ($3::text is null or serial = $3)
          and ($4::text is null or status = $4)
          and ($5::text is null or operation = $5)
          and ($6::timestamptz is null or at >= $6)
          and ($7::timestamptz is null or at < $7)"""


async def lock_writer(conn: asyncpg.Connection) -> None:
    """Serialize log writers until the transaction ends, so ids commit in order."""
    await conn.execute("select pg_advisory_xact_lock(hashtext($1))", WRITER_LOCK)


async def copy_entries(conn: asyncpg.Connection, records: Iterable[Sequence] | AsyncIterable[Sequence]) -> None:
    """COPY rows (in ``LOG_COLUMNS`` order) into the partitioned log."""
    await conn.copy_records_to_table(LOG_TABLE, records=records, columns=LOG_COLUMNS)


async def last_id_in_session(conn: asyncpg.Connection) -> int:
    """The last id this session drew from the sequence (the batch just copied)."""
    return await conn.fetchval("select currval('ocsp_log_id_seq')")


async def notify_written(conn: asyncpg.Connection, max_id: int) -> None:
    """Tell every listener (delivered at commit) that entries up to ``max_id`` exist."""
    await conn.execute("select pg_notify($1, $2)", NOTIFY_CHANNEL, str(max_id))


async def ensure_day_partition(conn: asyncpg.Connection, day: date) -> bool:
    """Create the partition of ``day`` (UTC) unless it exists; True if created now."""
    return await conn.fetchval("select ocsp_log_ensure_day($1)", day)


async def drop_days_before(conn: asyncpg.Connection, cutoff: date) -> list[str]:
    """Drop the day partitions before ``cutoff`` (UTC); returns the tables dropped."""
    return [row[0] for row in await conn.fetch("select ocsp_log_drop_days_before($1)", cutoff)]


async def day_partitions(conn: asyncpg.Connection) -> list[date]:
    """The days that have a partition, oldest first."""
    rows = await conn.fetch(
        """select to_date(substr(c.relname, 10), 'YYYYMMDD') as day
             from pg_inherits i
             join pg_class c on c.oid = i.inhrelid
             join pg_class p on p.oid = i.inhparent
             join pg_namespace n on n.oid = p.relnamespace
            where p.relname = 'ocsp_log' and n.nspname = current_schema()
              and c.relname ~ '^ocsp_log_[0-9]{8}$'
            order by 1""")
    return [row["day"] for row in rows]


async def trimmed_rules(conn: asyncpg.Connection) -> dict[date, str]:
    """Per trimmed day, the rule it was last trimmed to (``KeepRule.signature``)."""
    return {row["day"]: row["kept"] for row in await conn.fetch("select day, kept from ocsp_log_trimmed")}


async def trim_day(conn: asyncpg.Connection, day: date, keep_houses: Sequence[str], keep_others: bool,
                   listed_houses: Sequence[str]) -> int | None:
    """Rewrite ``day``'s partition with only the rows still kept; the rows kept, or None
    when the day has no partition."""
    return await conn.fetchval("select ocsp_log_trim_day($1, $2, $3, $4)", day, list(keep_houses),
                               keep_others, list(listed_houses))


async def record_trimmed(conn: asyncpg.Connection, day: date, rule: str, rows_kept: int) -> None:
    await conn.execute(
        """insert into ocsp_log_trimmed (day, kept, rows_kept) values ($1, $2, $3)
           on conflict (day) do update set kept = excluded.kept, rows_kept = excluded.rows_kept,
                                           trimmed_at = now()""", day, rule, rows_kept)


async def forget_trimmed_before(conn: asyncpg.Connection, cutoff: date) -> None:
    """Trim records of days that have been dropped."""
    await conn.execute("delete from ocsp_log_trimmed where day < $1", cutoff)


async def delete_stray_before(conn: asyncpg.Connection, houses: Sequence[str] | None, cutoff: datetime,
                              listed_houses: Sequence[str]) -> int:
    """Delete from the default partition (rows no day partition took: a clock far off)
    the rows of ``houses`` — or, with None, of every house not listed and of none —
    older than ``cutoff``. The default partition is small: a plain DELETE is right."""
    if houses is None:
        status = await conn.execute(
            """delete from ocsp_log_default where at < $1
                 and (cas is null or not cas = any($2::text[]))""", cutoff, list(listed_houses))
    else:
        status = await conn.execute("delete from ocsp_log_default where at < $1 and cas = any($2::text[])",
                                    cutoff, list(houses))
    return int(status.split()[-1])


async def max_id(conn: asyncpg.Connection) -> int:
    """The newest entry's id (0 for an empty log)."""
    return await conn.fetchval("select coalesce(max(id), 0) from ocsp_log")


async def entries_after(conn: asyncpg.Connection, after: int, limit: int, *, cas: str | None = None,
                        username: str | None = None, serial: str | None = None,
                        status: str | None = None, operation: str | None = None,
                        since: datetime | None = None, until: datetime | None = None
                        ) -> list[asyncpg.Record]:
    """Up to ``limit`` matching entries with id > ``after``, oldest first."""
    return await conn.fetch(
        f"""select {ENTRY_COLUMNS} from ocsp_log
            where {_FILTERS} and id > $8
            order by id limit $9""",
        cas, username, serial, status, operation, since, until, after, limit)


async def entries_before(conn: asyncpg.Connection, before: int | None, limit: int, *,
                         cas: str | None = None, username: str | None = None,
                         serial: str | None = None, status: str | None = None,
                         operation: str | None = None, since: datetime | None = None,
                         until: datetime | None = None) -> list[asyncpg.Record]:
    """The ``limit`` newest matching entries with id < ``before`` (all if None), newest first."""
    return await conn.fetch(
        f"""select {ENTRY_COLUMNS} from ocsp_log
            where {_FILTERS} and ($8::bigint is null or id < $8)
            order by id desc limit $9""",
        cas, username, serial, status, operation, since, until, before, limit)
