"""The audit trail nobody can edit, end to end: a stack started as ``make up`` starts it
records operators' writes in each service's hash chain and logs the chain's head; the
verifier, run as an operator runs it, passes; then someone with the owner role edits a
row (or deletes one) behind the services' back, and the verifier exits 1 naming exactly
that row. A chain rewritten consistently, head included, still fails against the head
the service logged."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import asyncpg
import pytest

from tests.support import infra
from tests.support.identities import new_cui
from tests.support.stack import ROOT, isolated_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def audit_stack(pki):
    with isolated_stack(pki.data_dir, "audit_e2e", name="audit-stack", services=("users", "keygen"),
                        extra_env={"SIUI_AUDIT_CHECKPOINT_SECONDS": "1"}) as running:
        yield running


@pytest.fixture
async def admin(audit_stack):
    async with aiohttp.ClientSession() as http:
        async with http.post(audit_stack.url("users", "/v1/sessions"),
                             json={"username": "admin", "password": audit_stack.admin_password}) as r:
            assert r.status in (200, 201), await r.text()
            token = (await r.json())["token"]
        yield http, {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def owner(audit_stack):
    conn = await asyncpg.connect(infra.owner_url(audit_stack.database_url))
    yield conn
    await conn.close()


async def audited_writes(stack, http, headers) -> None:
    """A provider and its key (keygen), a staff member and a refused one (users)."""
    cui = new_cui()
    async with http.post(stack.url("keygen", "/v1/providers"), headers=headers,
                         json={"cas": "CJ", "cui": cui, "name": "CABINET AUDIT SRL"}) as r:
        assert r.status == 201, await r.text()
        provider = await r.json()
    async with http.post(stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key"),
                         headers=headers, json={"reset": False}) as r:
        assert r.status == 201, await r.text()
    for body, status in (({"username": f"staff.audit.{cui}", "password": "Parola-Audit-2026!", "cas": "CJ",
                           "employee_code": "CJ-9", "employee_name": "Ana Pop", "roles": ["house-operator"]}, 201),
                         ({"username": "x"}, 422)):
        async with http.post(stack.url("users", "/v1/users"), headers=headers, json=body) as r:
            assert r.status == status, await r.text()


def verify(stack, *args: str) -> subprocess.CompletedProcess:
    """``python -m deploy.verify_audit`` as an operator runs it, with the owner's URL."""
    return subprocess.run([sys.executable, "-m", "deploy.verify_audit", "--database-url",
                           infra.owner_url(stack.database_url), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def logged_checkpoints(stack, service: str) -> list[str]:
    """The ``audit_chain_head`` checkpoints ``service`` logged so far, oldest first."""
    found = []
    for line in stack.log_path.read_text(errors="replace").splitlines():
        if '"audit_chain_head"' in line:
            with_event = json.loads(line[line.index("{"):])
            if with_event.get("event") == "audit_chain_head" and with_event.get("service") == service:
                found.append(with_event["checkpoint"])
    return found


async def head_of(owner, service: str) -> int:
    return await owner.fetchval(f"select seq from {service}.audit_chain")


async def put_back(owner, service: str, row: asyncpg.Record) -> None:
    """Restore a row as it was (every column), so the next test finds the chain whole."""
    columns = list(row.keys())
    await owner.execute(f"delete from {service}.audit_log where id = $1", row["id"])
    await owner.execute(f"insert into {service}.audit_log ({', '.join(columns)}) values "
                        f"({', '.join(f'${n}' for n in range(1, len(columns) + 1))})", *row.values())


async def test_an_edited_row_is_named_by_the_verifier(audit_stack, admin, owner):
    http, headers = admin
    await audited_writes(audit_stack, http, headers)
    passed = await asyncio.to_thread(verify, audit_stack)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "keygen: OK" in passed.stdout and "users: OK" in passed.stdout, passed.stdout

    # The one who edits: the provider's creation turned into a refusal.
    victim = await owner.fetchrow("select * from keygen.audit_log "
                                  "where action = 'POST /v1/providers' order by seq desc limit 1")
    await owner.execute("update keygen.audit_log set result = 'forbidden', status = 403 where id = $1",
                        victim["id"])
    try:
        failed = await asyncio.to_thread(verify, audit_stack)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"keygen: BROKEN at seq {victim['seq']} (id {victim['id']}): hash mismatch" in failed.stdout, \
            failed.stdout
        assert "users: OK" in failed.stdout
    finally:
        await put_back(owner, "keygen", victim)
    assert (await asyncio.to_thread(verify, audit_stack)).returncode == 0


async def test_a_deleted_row_is_named_by_the_verifier(audit_stack, admin, owner):
    http, headers = admin
    await audited_writes(audit_stack, http, headers)
    assert (await asyncio.to_thread(verify, audit_stack, "--service", "users")).returncode == 0

    # The refused attempt to make a user, made to disappear.
    victim = await owner.fetchrow("select * from users.audit_log "
                                  "where action = 'POST /v1/users' and status = 422 order by seq desc limit 1")
    # Not the last row (that would be a cut tail): a later write follows it.
    await audited_writes(audit_stack, http, headers)
    await owner.execute("delete from users.audit_log where id = $1", victim["id"])
    try:
        failed = await asyncio.to_thread(verify, audit_stack, "--service", "users")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"users: BROKEN at seq {victim['seq']}: gap: seq {victim['seq']} missing" in failed.stdout, \
            failed.stdout
    finally:
        await put_back(owner, "users", victim)
    assert (await asyncio.to_thread(verify, audit_stack, "--service", "users")).returncode == 0


async def test_a_cut_tail_with_its_head_rewritten_fails_against_the_logged_checkpoint(audit_stack, admin, owner):
    http, headers = admin
    await audited_writes(audit_stack, http, headers)
    head = await head_of(owner, "keygen")

    async def checkpoint_logged():
        return [c for c in logged_checkpoints(audit_stack, "keygen") if int(c.split(":")[1]) == head]

    checkpoint = (await eventually(checkpoint_logged, timeout=30, what=f"keygen's head {head} logged"))[-1]
    assert (await asyncio.to_thread(verify, audit_stack, "--expect", checkpoint)).returncode == 0

    # The newest row removed and the head moved back onto the row before: consistent...
    last, before = await owner.fetch("select * from keygen.audit_log order by seq desc limit 2")
    async with owner.transaction():
        await owner.execute("delete from keygen.audit_log where seq = $1", last["seq"])
        await owner.execute("update keygen.audit_chain set seq = $1, hash = $2", before["seq"], before["row_hash"])
    try:
        assert (await asyncio.to_thread(verify, audit_stack, "--service", "keygen")).returncode == 0
        # ...except with the head the service logged before.
        failed = await asyncio.to_thread(verify, audit_stack, "--service", "keygen", "--expect", checkpoint)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"keygen: BROKEN at seq {head}: missing: checkpoint {checkpoint.split(':', 1)[1]}" in failed.stdout, \
            failed.stdout
    finally:
        await put_back(owner, "keygen", last)
        await owner.execute("update keygen.audit_chain set seq = $1, hash = $2", last["seq"], last["row_hash"])
