"""The audit trail: every write an operator attempts (who, what, which record, when, from
where, and how it ended), kept in each service's own ``audit_log`` table and readable at
``GET /v1/audit`` — a house admin sees their house, CNAS sees all.

It is a middleware, so no handler can forget it: every POST/PUT/PATCH/DELETE by an
authenticated operator is recorded, refused attempts included. A handler names the record
it touched with ``audit_target(request, kind, id, cas)``.

Nobody can edit it unseen: each row is chained to the one before by its hash
(``shared.audit_chain``), appended under a lock on the chain's head, through database
functions running as the owner role: the service's own role may read the rows, never
change them (``shared.migrations``). Every ``SIUI_AUDIT_CHECKPOINT_SECONDS`` the service
logs its chain's head, the checkpoints ``deploy.verify_audit --expect`` compares with.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from shared import audit_chain
from shared.audit_chain import Head
from shared.auth import Right, authorize, house_filter
from shared.db import POOL, reading
from shared.http.clients import remote_address
from shared.http.operational import OPENAPI
from shared.http.reading import query_int
from shared.clock import utc_now
from shared.logging import get_logger
from shared.openapi import assemble

log = get_logger(__name__)

#: The service whose chain this app appends to (its schema): it names the chain's genesis.
AUDIT_SERVICE = web.AppKey("audit_service", str)


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def audit_target(request: web.Request, kind: str, target_id: Any, cas: str | None,
                 **details: Any) -> None:
    """Tell the audit trail which record this request acted on."""
    request["audit"] = {"kind": kind, "id": str(target_id) if target_id is not None else None,
                        "cas": cas, "details": details or None}


def _result(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthenticated", 403: "forbidden", 404: "not-found", 409: "conflict",
            422: "invalid", 429: "throttled"}.get(status, "failed")


async def append_audit(conn: asyncpg.Connection, service: str, entry: dict[str, Any],
                       at: datetime | None = None) -> int:
    """Add ``entry`` (the ``audit_chain.FIELDS`` but seq and at) at the head of the
    service's chain, in one transaction of its own: the head is locked, the row hashed
    after it, appended and the head moved; concurrent appends wait their turn, so seq
    has no gaps. Returns the row's id."""
    async with conn.transaction():
        head = await conn.fetchrow("select seq, hash from audit_chain_claim()")
        row = {**entry, "seq": head["seq"] + 1, "at": at or utc_now(),
               "details": audit_chain.storable_details(entry.get("details"))}
        previous = bytes(head["hash"]) if head["hash"] is not None else audit_chain.genesis(service)
        return await conn.fetchval(
            "select audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            row["seq"], row["at"], row["actor"], row["actor_cas"], row["cas"], row["action"],
            row["target_kind"], row["target_id"], row["status"], row["result"], row["address"],
            row["details"], audit_chain.row_hash(previous, row))


async def chain_head(conn: asyncpg.Connection, service: str) -> Head:
    """Where the service's chain ends now (the genesis for an empty chain)."""
    row = await conn.fetchrow("select seq, hash from audit_chain")
    return Head(row["seq"], bytes(row["hash"]) if row["hash"] is not None else audit_chain.genesis(service))


@web.middleware
async def audit_middleware(request: web.Request, handler):
    response = await handler(request)
    principal = request.get("principal")
    # Outermost middleware: errors are already answers here, so refusals are recorded too.
    if request.method in _WRITES and principal is not None and POOL in request.app:
        target = request.get("audit", {})
        route = request.match_info.route.resource
        action = f"{request.method} {route.canonical if route else request.path}"
        entry = {"actor": principal.username, "actor_cas": principal.cas,
                 "cas": target.get("cas") or principal.cas, "action": action,
                 "target_kind": target.get("kind"), "target_id": target.get("id") or _path_id(request),
                 "status": response.status, "result": _result(response.status),
                 "address": remote_address(request), "details": target.get("details")}
        try:
            async with request.app[POOL].acquire() as conn:
                await append_audit(conn, request.app[AUDIT_SERVICE], entry)
        except Exception:  # the answer is already decided; never turn it into a 500
            log.exception("audit_write_failed", action=action)
    return response


async def add_system_entry(conn, service: str, *, actor: str, cas: str | None, action: str, target_kind: str,
                           target_id: Any, details: dict[str, Any] | None = None) -> None:
    """Record a change no operator asked for (a background job acting on what an outside
    source said), in the caller's transaction, on the same hash chain as the operators'
    entries (the service role may only append through audit_append)."""
    await append_audit(conn, service, {"actor": actor, "actor_cas": "CNAS", "cas": cas, "action": action,
                                       "target_kind": target_kind, "target_id": str(target_id), "status": 200,
                                       "result": "ok", "address": None, "details": details})


def _path_id(request: web.Request) -> str | None:
    values = list(request.match_info.values())
    return "/".join(values) if values else None


async def list_audit(request: web.Request) -> web.Response:
    """GET /v1/audit?cas=&actor=&after_id=&limit=: entries oldest first."""
    principal = authorize(request, Right.AUDIT_READ)
    cas = house_filter(principal, request.query.get("cas"))
    limit = query_int(request, "limit", 100, maximum=1000)
    after = query_int(request, "after_id", 0, minimum=0)
    # The trail is written by every admin call and read in pages: a standby's, if one is set.
    async with reading(request.app) as conn:
        rows = await conn.fetch(
            """select id, at, actor, actor_cas, cas, action, target_kind, target_id, status, result,
                      address, details
               from audit_log
               where id > $1 and ($2::text is null or cas = $2) and ($3::text is null or actor = $3)
               order by id limit $4""",
            after, cas, request.query.get("actor") or None, limit)
    return web.json_response({"items": [{**dict(r), "at": r["at"].isoformat()} for r in rows]})


PURGE_BATCH = 10_000


async def purge_audit(pool, before) -> int:
    """Delete audit rows older than ``before``, a batch at a time (no long lock), the
    chain's oldest first, its anchor moved past them (audit_purge, run as the owner: the
    service role may delete no audit row itself); how many."""
    total = 0
    while True:
        deleted = await pool.fetchval("select audit_purge($1, $2)", before, PURGE_BATCH)
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def checkpoint_job(app: web.Application):
    """A periodic job logging the chain's head (``audit_chain_head``), so a log store out
    of the database's reach keeps checkpoints."""
    async def job(_app: web.Application) -> None:
        service = app[AUDIT_SERVICE]
        async with app[POOL].acquire() as conn:
            head = await chain_head(conn, service)
        log.info("audit_chain_head", service=service, seq=head.seq, hash=head.hash.hex(),
                 checkpoint=f"{service}:{head}")

    return job


def add_audit(app: web.Application, service: str) -> None:
    """Record every write of this (database-backed) service in its chain and serve
    ``GET /v1/audit``. Outermost middleware: by then errors are answers, so refusals are
    recorded too."""
    app[AUDIT_SERVICE] = service
    app.middlewares.insert(0, audit_middleware)
    app.router.add_get("/v1/audit", list_audit)
    app[OPENAPI] = assemble(app[OPENAPI], AUDIT_OPENAPI)


AUDIT_OPENAPI = {"paths": {"/v1/audit": {"get": {
    "summary": "The audit trail of this service: every write an operator attempted",
    "tags": ["audit"], "security": [{"bearer": []}],
    "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": t}}
                   for n, t in (("cas", "string"), ("actor", "string"),
                                ("after_id", "integer"), ("limit", "integer"))],
    "responses": {"200": {"description": "Entries, oldest first (house admins: their house)"},
                  "401": {"description": "No valid token"},
                  "403": {"description": "The audit:read right is missing"}}}}}}
