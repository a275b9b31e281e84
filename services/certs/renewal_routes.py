"""HTTP handlers of the renewal hand-over (issue 15): the house's list of renewals, its
one-click approval and its rejection, and its automatic-approval setting. Rules live in
``renewals``, use cases in ``renewing``; every write is audited and house-scoped.
"""
from __future__ import annotations

import math
import uuid

from aiohttp import web

from shared import errors
from shared.audit import audit_target
from shared.auth import NATIONAL, Right, authorize, ensure_house, house_filter, may_act_for_house
from shared.db import POOL
from shared.events import iso
from shared.houses import is_house
from shared.http.reading import check_fields, query_int, read_json

from . import queries, renewing, views
from .config import CLOCK, CONFIG
from .durable import PENDING_WRITES, run_to_completion
from .renewals import rejection_reason, status_filter
from .routes import STATE_CHANGES


async def list_renewals(request: web.Request) -> web.Response:
    """GET /v1/renewals?cas=&status=pending|approved|rejected&page=&per_page=."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    page = query_int(request, "page", 1)
    per_page = query_int(request, "per_page", 20, maximum=request.app[CONFIG].max_page_size)
    cas, status = house_filter(principal, request.query.get("cas")), status_filter(request.query.get("status"))
    async with request.app[POOL].acquire() as conn:
        total = await queries.count_renewals(conn, cas, status)
        rows = await queries.list_renewals(conn, cas, status, limit=per_page, offset=(page - 1) * per_page)
    return web.json_response({"items": [views.renewal_json(r) for r in rows], "total": total,
                              "pages": math.ceil(total / per_page), "page": page, "per_page": per_page})


async def get_renewal(request: web.Request) -> web.Response:
    """GET /v1/renewals/{id}: one renewal, with the certificate it follows."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    row = await queries.get_renewal(request.app[POOL], _renewal_id(request))
    if row is None:
        raise errors.NotFound("no such renewal")
    ensure_house(principal, row["cas"], what="renewal")
    return web.json_response(views.renewal_json(row))


async def approve_renewal(request: web.Request) -> web.Response:
    """POST /v1/renewals/{id}/approve: 201 with the new certificate's record."""
    principal = authorize(request, Right.CERTIFICATES_WRITE)
    renewal_id = _renewal_id(request)

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            certificate_id = await renewing.approve(conn, principal, renewal_id, request.app[CLOCK]())
            row = await queries.get_certificate(conn, certificate_id)
        STATE_CHANGES.labels(row["cas"], "registered").inc()
        return row

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "renewal", renewal_id, row["cas"], certificate_id=str(row["id"]),
                 serial=str(int(row["serial"])))
    return web.json_response(views.certificate_json(row), status=201,
                             headers={"Location": f"/v1/certificates/{row['id']}"})


async def reject_renewal(request: web.Request) -> web.Response:
    """POST /v1/renewals/{id}/reject {"reason"}: 200 with the renewal as decided."""
    principal = authorize(request, Right.CERTIFICATES_WRITE)
    renewal_id = _renewal_id(request)
    body = check_fields(await read_json(request), {"reason": str}, required=("reason",))
    reason = rejection_reason(body["reason"])

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await renewing.reject(conn, principal, renewal_id, reason, request.app[CLOCK]())
            return await queries.get_renewal(conn, renewal_id)

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "renewal", renewal_id, row["cas"], rejected=True)
    return web.json_response(views.renewal_json(row))


async def get_settings(request: web.Request) -> web.Response:
    """GET /v1/renewal-settings/{cas}: the house's automatic approval (default off)."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    cas = _house(request)
    ensure_house(principal, cas, what="house")
    async with request.app[POOL].acquire() as conn:
        auto = await queries.auto_approve_of(conn, cas)
    return web.json_response({"cas": cas, "auto_approve": auto})


async def put_settings(request: web.Request) -> web.Response:
    """PUT /v1/renewal-settings/{cas} {"auto_approve"}: the house's own policy, so a
    house administrator's (users:write is what sets an administrator apart)."""
    principal = authorize(request, Right.CERTIFICATES_WRITE)
    if not principal.can(Right.USERS_WRITE):
        raise errors.Forbidden("only a house administrator changes the house's renewal policy")
    cas = _house(request)
    may_act_for_house(principal, cas)
    body = check_fields(await read_json(request), {"auto_approve": bool}, required=("auto_approve",))
    now = request.app[CLOCK]()

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await queries.set_auto_approve(conn, cas, body["auto_approve"], principal.username, now)

    await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "renewal_settings", cas, cas, auto_approve=body["auto_approve"])
    return web.json_response({"cas": cas, "auto_approve": body["auto_approve"], "updated_at": iso(now),
                              "updated_by": principal.username})


def _house(request: web.Request) -> str:
    cas = request.match_info["cas"].upper()
    if cas == NATIONAL or not is_house(cas):
        raise errors.NotFound("no such house")
    return cas


def _renewal_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise errors.NotFound("no such renewal") from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/renewals", list_renewals)
    app.router.add_get("/v1/renewals/{id}", get_renewal)
    app.router.add_post("/v1/renewals/{id}/approve", approve_renewal)
    app.router.add_post("/v1/renewals/{id}/reject", reject_renewal)
    app.router.add_get("/v1/renewal-settings/{cas}", get_settings)
    app.router.add_put("/v1/renewal-settings/{cas}", put_settings)
