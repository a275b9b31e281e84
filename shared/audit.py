"""The audit trail: every write an operator attempts (who, what, which record, when, from
where, and how it ended), kept in each service's own ``audit_log`` table and readable at
``GET /v1/audit`` — a house admin sees their house, CNAS sees all.

It is a middleware, so no handler can forget it: every POST/PUT/PATCH/DELETE by an
authenticated operator is recorded, refused attempts included. A handler names the record
it touched with ``audit_target(request, kind, id, cas)``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from shared.auth import Right, authorize, house_filter
from shared.db import POOL
from shared.http.clients import remote_address
from shared.http.operational import OPENAPI
from shared.http.reading import query_int
from shared.logging import get_logger
from shared.openapi import assemble

log = get_logger(__name__)


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


@web.middleware
async def audit_middleware(request: web.Request, handler):
    response = await handler(request)
    principal = request.get("principal")
    # Outermost middleware: errors are already answers here, so refusals are recorded too.
    if request.method in _WRITES and principal is not None and POOL in request.app:
        target = request.get("audit", {})
        route = request.match_info.route.resource
        action = f"{request.method} {route.canonical if route else request.path}"
        try:
            await request.app[POOL].execute(
                """insert into audit_log (actor, actor_cas, cas, action, target_kind, target_id,
                                          status, result, address, details)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                principal.username, principal.cas, target.get("cas") or principal.cas, action,
                target.get("kind"), target.get("id") or _path_id(request), response.status,
                _result(response.status), remote_address(request), target.get("details"))
        except Exception:  # the answer is already decided; never turn it into a 500
            log.exception("audit_write_failed", action=action)
    return response


async def add_system_entry(conn, *, actor: str, cas: str | None, action: str, target_kind: str,
                           target_id: Any, details: dict[str, Any] | None = None) -> None:
    """Record a change no operator asked for (a background job acting on what an outside
    source said), in the caller's transaction, beside the operators' entries."""
    await conn.execute(
        """insert into audit_log (actor, actor_cas, cas, action, target_kind, target_id, status, result,
                                  address, details)
           values ($1, 'CNAS', $2, $3, $4, $5, 200, 'ok', null, $6)""",
        actor, cas, action, target_kind, str(target_id), details)


def _path_id(request: web.Request) -> str | None:
    values = list(request.match_info.values())
    return "/".join(values) if values else None


async def list_audit(request: web.Request) -> web.Response:
    """GET /v1/audit?cas=&actor=&after_id=&limit=: entries oldest first."""
    principal = authorize(request, Right.AUDIT_READ)
    cas = house_filter(principal, request.query.get("cas"))
    limit = query_int(request, "limit", 100, maximum=1000)
    after = query_int(request, "after_id", 0, minimum=0)
    rows = await request.app[POOL].fetch(
        """select id, at, actor, actor_cas, cas, action, target_kind, target_id, status, result,
                  address, details
           from audit_log
           where id > $1 and ($2::text is null or cas = $2) and ($3::text is null or actor = $3)
           order by id limit $4""",
        after, cas, request.query.get("actor") or None, limit)
    return web.json_response({"items": [{**dict(r), "at": r["at"].isoformat()} for r in rows]})


PURGE_BATCH = 10_000


async def purge_audit(pool, before) -> int:
    """Delete audit rows older than ``before``, a batch at a time (no long lock); how many."""
    total = 0
    while True:
        deleted = await pool.fetchval(
            """with gone as (delete from audit_log where id in (
                   select id from audit_log where at < $1 order by id limit $2) returning 1)
               select count(*) from gone""", before, PURGE_BATCH)
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def add_audit(app: web.Application) -> None:
    """Record every write of this (database-backed) service and serve ``GET /v1/audit``.
    Outermost middleware: by then errors are answers, so refusals are recorded too."""
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
