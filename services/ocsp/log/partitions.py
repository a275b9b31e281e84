"""The OCSP log's day partitions: made ahead, trimmed and dropped as the retention says.

``PartitionKeeper`` runs at start and then hourly (a ``shared.tasks`` background task
started by ``log_ctx``): it creates today's and tomorrow's partitions, so a batch
written just after midnight finds its day ready; drops the days every house group is
done with; and trims the days some groups still keep (``retention``). Several
processes run it: each step takes the writers' advisory lock, and a trim is recorded
with its rule, so the second process finds the work done.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import asyncpg
from prometheus_client import Counter

from services.ocsp.log import queries as q
from services.ocsp.log.retention import RetentionPolicy
from shared.clock import Clock, utc_now
from shared.logging import get_logger

log = get_logger(__name__)

PARTITION_CHECK = 3600.0   # seconds between partition checks

LOG_FORGOTTEN = Counter("siui_ocsp_log_days_forgotten_total",
                        "OCSP log day partitions dropped or trimmed by the retention", ["action"])


class PartitionKeeper:
    def __init__(self, pool: asyncpg.Pool, *, policy: RetentionPolicy, clock: Clock = utc_now) -> None:
        self.pool = pool
        self.policy = policy
        self.clock = clock

    async def ensure_now(self) -> list[str]:
        """Create what is missing now, then apply the retention; returns the days created
        (ISO dates)."""
        today = self.clock().date()
        created = []
        async with self.pool.acquire() as conn:
            for day in (today, today + timedelta(days=1)):
                async with conn.transaction():
                    if await q.ensure_day_partition(conn, day):
                        created.append(day.isoformat())
            await self._forget(conn, today)
        if created:
            log.info("ocsp_log_partitions_created", days=created)
        return created

    async def _forget(self, conn: asyncpg.Connection, today) -> None:
        policy = self.policy
        async with conn.transaction():
            dropped = await q.drop_days_before(conn, policy.drop_before(today))
            await q.forget_trimmed_before(conn, policy.drop_before(today))
        if dropped:
            LOG_FORGOTTEN.labels("dropped").inc(len(dropped))
            log.info("ocsp_log_partitions_dropped", tables=dropped, retention=policy.describe())
        if not policy.by_house:
            return
        done = await q.trimmed_rules(conn)
        for day in await q.day_partitions(conn):
            rule = policy.keep_rule(day, today)
            if rule is None:
                break  # days are oldest first: from here on every house keeps them
            if done.get(day) == rule.signature:
                continue
            async with conn.transaction():
                kept = await q.trim_day(conn, day, rule.houses, rule.others, policy.listed)
                if kept is not None:
                    await q.record_trimmed(conn, day, rule.signature, kept)
            if kept is not None:
                LOG_FORGOTTEN.labels("trimmed").inc()
                log.info("ocsp_log_day_trimmed", day=day.isoformat(), kept_houses=list(rule.houses),
                         kept_others=rule.others, rows_kept=kept)
        # Rows no day partition took (a clock far off) follow the same limits.
        async with conn.transaction():
            for house, cutoff in policy.cutoffs(today).items():
                moment = datetime.combine(cutoff, time(), timezone.utc)
                await q.delete_stray_before(conn, None if house is None else [house], moment, policy.listed)
