"""The audit chain against real PostgreSQL, with the deployment's two roles: appends from
many requests at once keep one gapless chain; the service role may read the audit rows but
neither change, delete nor forge them; an edit or a deletion made as the owner is named
by deploy.verify_audit; retention removes the chain's oldest rows and what is left still
verifies."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from deploy import verify_audit
from shared.audit import append_audit, chain_head, purge_audit
from shared.audit_chain import Head
from shared.clock import utc_now
from shared.db import create_pool
from tests.support import infra


def entry(n: int, **changes) -> dict:
    return {"actor": "admin", "actor_cas": "CNAS", "cas": "B", "action": "POST /v1/providers",
            "target_kind": "provider", "target_id": str(n), "status": 201, "result": "ok",
            "address": "127.0.0.1", "details": {"n": n, "fields": ["name", "cui"]}, **changes}


@pytest.fixture
async def schema(database_url, request):
    name = f"audit_{request.node.name[5:30]}"
    await infra.migrate_schema(database_url, name, "tests.support.sample_service")
    return name


@pytest.fixture
async def pool(database_url, schema):
    pool = await create_pool(database_url, schema, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
async def owner(database_url, schema):
    conn = await asyncpg.connect(infra.owner_url(database_url), server_settings={"search_path": schema})
    yield conn
    await conn.close()


async def append(pool, schema, item, at=None) -> int:
    async with pool.acquire() as conn:
        return await append_audit(conn, schema, item, at)


async def verified(database_url, schema, checkpoint=None):
    return (await verify_audit.verify(infra.owner_url(database_url), [schema],
                                      {schema: checkpoint} if checkpoint else None))[0]


async def test_concurrent_appends_make_one_gapless_chain(database_url, schema, pool):
    ids = await asyncio.gather(*(append(pool, schema, entry(n)) for n in range(60)))
    assert len(set(ids)) == 60
    seqs = [r["seq"] for r in await pool.fetch("select seq from audit_log order by seq")]
    assert seqs == list(range(1, 61))
    outcome = await verified(database_url, schema)
    assert outcome.broken is None and outcome.checked == 60
    async with pool.acquire() as conn:
        assert outcome.head == await chain_head(conn, schema) and outcome.head.seq == 60


async def test_the_service_role_may_read_but_not_change_the_trail(schema, pool):
    await append(pool, schema, entry(1))
    assert await pool.fetchval("select count(*) from audit_log") == 1
    for statement in ("update audit_log set actor = 'someone-else'",
                      "delete from audit_log",
                      "truncate audit_log",
                      "insert into audit_log (actor, actor_cas, action, status, result) "
                      "values ('x', 'B', 'POST /', 200, 'ok')",
                      "update audit_chain set seq = 0, hash = null",
                      "delete from audit_chain",
                      "update schema_migrations set checksum = 'x'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement)
    # The chain's function only ever adds at the head: an append that did not claim the
    # head, or names another place, is refused.
    with pytest.raises(asyncpg.SerializationError):
        await pool.execute("select audit_append(1, now(), 'x', 'B', null, 'POST /', null, null, 200, "
                           "'ok', null, null, '\\x00'::bytea)")
    # A temporary table cannot stand in for the chain's head inside its functions.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("create temp table audit_chain (only_row boolean, seq bigint, hash bytea, "
                           "anchor_seq bigint, anchor_hash bytea) on commit drop")
        await conn.execute("insert into pg_temp.audit_chain values (true, 41, null, 0, null)")
        with pytest.raises(asyncpg.SerializationError):
            await conn.execute("select audit_append(42, now(), 'x', 'B', null, 'POST /', null, null, 200, "
                               "'ok', null, null, '\\x00'::bytea)")
    assert [r["seq"] for r in await pool.fetch("select seq from audit_log")] == [1]


async def test_an_owner_edit_is_named_by_the_verifier(database_url, schema, pool, owner, capsys):
    ids = [await append(pool, schema, entry(n)) for n in range(5)]
    # The command, as an operator runs it (its own event loop, so in a thread here).
    command = ["--database-url", infra.owner_url(database_url), "--service", schema]
    assert await asyncio.to_thread(verify_audit.main, command) == 0
    assert f"{schema}: OK, 5 rows checked" in capsys.readouterr().out
    await owner.execute("update audit_log set result = 'forbidden' where id = $1", ids[2])
    outcome = await verified(database_url, schema)
    assert (outcome.broken.seq, outcome.broken.id, outcome.broken.problem) == (3, ids[2], "hash mismatch")
    assert await asyncio.to_thread(verify_audit.main, command) == 1
    assert f"{schema}: BROKEN at seq 3 (id {ids[2]}): hash mismatch" in capsys.readouterr().out


async def test_an_owner_deletion_is_named_as_a_gap(database_url, schema, pool, owner):
    ids = [await append(pool, schema, entry(n)) for n in range(5)]
    await owner.execute("delete from audit_log where id = $1", ids[1])
    broken = (await verified(database_url, schema)).broken
    assert (broken.seq, broken.problem) == (2, "gap") and f"before id {ids[2]} seq 3" in broken.detail


async def test_a_cut_tail_shows_against_the_head_and_a_rewritten_head_against_a_checkpoint(
        database_url, schema, pool, owner):
    for n in range(4):
        await append(pool, schema, entry(n))
    async with pool.acquire() as conn:
        checkpoint = await chain_head(conn, schema)
    await owner.execute("delete from audit_log where seq = 4")
    assert (await verified(database_url, schema)).broken.problem == "missing"
    # The head moved back too: consistent by itself, not with the logged checkpoint.
    third = await owner.fetchval("select row_hash from audit_log where seq = 3")
    await owner.execute("update audit_chain set seq = 3, hash = $1", third)
    assert (await verified(database_url, schema)).broken is None
    broken = (await verified(database_url, schema, checkpoint)).broken
    assert (broken.seq, broken.problem) == (4, "missing")


async def test_retention_removes_the_oldest_and_the_rest_still_verifies(database_url, schema, pool):
    now = utc_now()
    for n in range(6):
        await append(pool, schema, entry(n), at=now - timedelta(days=40 - n))  # days 40..35 ago
    async with pool.acquire() as conn:
        checkpoint = Head(2, bytes(await conn.fetchval("select row_hash from audit_log where seq = 2")))
    assert await purge_audit(pool, now - timedelta(days=37, hours=12)) == 3   # 40, 39 and 38 days old
    assert [r["seq"] for r in await pool.fetch("select seq from audit_log order by seq")] == [4, 5, 6]
    outcome = await verified(database_url, schema, checkpoint)
    assert outcome.broken is None and outcome.checked == 3
    await append(pool, schema, entry(7))
    assert (await verified(database_url, schema)).broken is None
    # The service role cannot purge what is younger than the shortest retention.
    assert await purge_audit(pool, now + timedelta(days=1)) == 3   # 37..35 days old; not today's
    assert [r["seq"] for r in await pool.fetch("select seq from audit_log order by seq")] == [7]
