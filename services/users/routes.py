"""HTTP handlers of the users service: parse, call directory/sessions, answer."""
from __future__ import annotations

import asyncio

from aiohttp import web

from shared import errors
from shared.audit import audit_target
from shared.auth import Principal, Right, authenticate, authorize, house_filter
from shared.db import POOL, reading
from shared.http.clients import remote_address
from shared.http.reading import check_fields, read_json
from shared.paging import page_count

from services.users import directory, queries, sessions
from services.users.bootstrap import ADMIN_USERNAME
from services.users.accounts import parse_list_query, parse_roles, validate_changes, validate_new_user
from services.users.gate import Busy
from services.users.sessions import LoginAttempt, LoginKit

KIT = web.AppKey("login_kit", LoginKit)
#: Set once the national admin is known to exist (made at start in the background, or found).
NATIONAL_ADMIN_ENSURED = web.AppKey("national_admin_ensured", asyncio.Event)

NEW_USER = {"username": str, "password": str, "cas": str, "employee_code": str,
            "employee_name": str, "roles": list, "enabled": bool}
USER_CHANGES = {"employee_code": str, "employee_name": str, "password": str, "enabled": bool,
                "unlock": bool}
CREDENTIALS = {"username": str, "password": str}
USERNAME_MAX = 200  # anything longer is not a user name: refused before any lookup
PASSWORD_MAX = 1024  # nor a password (new ones are at most 128): argon2 is not fed megabytes


async def caller(request: web.Request, right: str | None = None) -> Principal:
    """The authenticated caller (401), whose session was not ended (401), holding
    ``right`` (403). Other services learn of logouts by event; here the table decides."""
    principal = authenticate(request)
    async with request.app[POOL].acquire() as conn:
        if await sessions.is_revoked(conn, principal.token_id):
            raise errors.Unauthorized("the session was ended; log in again")
    return authorize(request, right) if right else principal


# --- sessions -------------------------------------------------------------------------

async def create_session(request: web.Request) -> web.Response:
    """POST /v1/sessions: log in; 201 with the token, its expiry and the user.

    401 (one answer for unknown, external, wrong and locked), 429 with Retry-After (this
    address, or everybody at once, tried too often), 503 with Retry-After (every
    password-checking thread busy and the queue full)."""
    kit = request.app[KIT]
    body = check_fields(await read_json(request), CREDENTIALS, required=("username", "password"))
    username = body["username"].strip().lower()
    if len(username) > USERNAME_MAX or len(body["password"]) > PASSWORD_MAX:
        raise errors.Unauthorized(kit.wrong_credentials)  # no account has such a name or password
    ensured = request.app.get(NATIONAL_ADMIN_ENSURED)
    if username == ADMIN_USERNAME and ensured is not None and not ensured.is_set():
        # Just started: the national admin is being made. "Wrong password" would be a lie
        # that sends the operator hunting for the right one; this one passes in a moment.
        raise errors.Unavailable("the service is starting; the national admin is being set up",
                                 retry_after=1)
    attempt = LoginAttempt(username, remote_address(request))
    try:
        result = await sessions.login(request.app[POOL], kit, attempt, body["password"])
    except Busy as exc:
        sessions.LOGINS.labels("busy").inc()
        raise web.HTTPServiceUnavailable(
            text=f"too many logins are being checked at the moment; try again in {exc.retry_after} s",
            headers={"Retry-After": str(exc.retry_after)}) from None
    finally:
        # Audited as the account tried (refusals too); an unknown name is not recorded,
        # it is often a password typed in the wrong box.
        known = attempt.cas is not None
        request["principal"] = Principal(username=username if known else "(unknown user)",
                                         cas=attempt.cas or "", rights=frozenset())
        audit_target(request, "session", username if known else None, attempt.cas)
    return web.json_response(result.to_json(), status=201)


async def delete_current_session(request: web.Request) -> web.Response:
    """DELETE /v1/sessions/current: log out; the token is refused from now on."""
    principal = await caller(request)
    audit_target(request, "session", principal.token_id, principal.cas)
    async with request.app[POOL].acquire() as conn:
        await sessions.logout(conn, principal, request.app[KIT].clock())
    return web.Response(status=204)


async def list_revoked_sessions(request: web.Request) -> web.Response:
    """GET /v1/sessions/revoked: ids of ended sessions whose tokens have not expired yet.
    Other services read it when they start, so a restart does not forget a logout they
    would otherwise only hear of as an event. A token id opens nothing: no token needed."""
    async with request.app[POOL].acquire() as conn:
        rows = await queries.revoked_unexpired(conn, request.app[KIT].clock())
    return web.json_response({"items": [{"jti": str(r["jti"]), "expires_at": r["expires_at"].isoformat()}
                                        for r in rows]})


# --- users ----------------------------------------------------------------------------

async def list_users(request: web.Request) -> web.Response:
    """GET /v1/users: one page of "Lista utilizatorilor" with its total and page count."""
    principal = await caller(request, Right.USERS_READ)
    query = parse_list_query(request.query)
    cas = house_filter(principal, query.cas)
    async with reading(request.app) as conn:  # a listing: a standby's, if one is set
        total, items = await directory.list_page(conn, cas=cas, user_type=query.user_type, q=query.q,
                                                 limit=query.per_page, offset=query.offset)
    return web.json_response({"items": items, "total": total,
                              "pages": page_count(total, query.per_page),
                              "page": query.page, "per_page": query.per_page})


async def get_user(request: web.Request) -> web.Response:
    """GET /v1/users/{username}."""
    principal = await caller(request, Right.USERS_READ)
    async with request.app[POOL].acquire() as conn:
        user = await directory.get_user(conn, principal, request.match_info["username"])
    return web.json_response(user)


async def create_user(request: web.Request) -> web.Response:
    """POST /v1/users ("Nou"): a staff account; 201 with its detail."""
    principal = await caller(request, Right.USERS_WRITE)
    body = check_fields(await read_json(request), NEW_USER,
                        required=("username", "password", "cas", "employee_name"))
    new = validate_new_user(body)
    audit_target(request, "user", new.username, new.cas)
    async with request.app[POOL].acquire() as conn:
        user = await directory.create_user(conn, principal, new, request.app[KIT].hasher)
    return web.json_response(user, status=201, headers={"Location": f"/v1/users/{new.username}"})


async def patch_user(request: web.Request) -> web.Response:
    """PATCH /v1/users/{username} ("Modifica"): employee fields, password, enabled, unlock."""
    principal = await caller(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    audit_target(request, "user", username, None)
    body = check_fields(await read_json(request), USER_CHANGES)
    kit = request.app[KIT]
    async with request.app[POOL].acquire() as conn:
        current = await directory.get_user(conn, principal, username)
        changes = validate_changes(body, username=username, employee_code=current["employee_code"])
        user = await directory.update_user(conn, principal, username, changes, kit.hasher, kit.clock())
    audit_target(request, "user", username, user["cas"], fields=sorted(changes.fields))
    return web.json_response(user)


async def delete_user(request: web.Request) -> web.Response:
    """DELETE /v1/users/{username} ("Sterge"): 204, or 409 saying why not."""
    principal = await caller(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    audit_target(request, "user", username, None)
    async with request.app[POOL].acquire() as conn:
        cas = await directory.delete_user(conn, principal, username, request.app[KIT].clock())
    audit_target(request, "user", username, cas)
    return web.Response(status=204)


async def put_roles(request: web.Request) -> web.Response:
    """PUT /v1/users/{username}/roles: replace the user's roles; 200 with the detail."""
    principal = await caller(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    audit_target(request, "user", username, None)
    roles = parse_roles(check_fields(await read_json(request), {"roles": list}, required=("roles",)))
    async with request.app[POOL].acquire() as conn:
        user = await directory.set_roles(conn, principal, username, roles, request.app[KIT].clock())
    audit_target(request, "user", username, user["cas"], roles=list(roles))
    return web.json_response(user)


async def list_roles(request: web.Request) -> web.Response:
    """GET /v1/roles: every role with its rights."""
    await caller(request, Right.USERS_READ)
    async with request.app[POOL].acquire() as conn:
        roles = await directory.load_roles(conn)
    return web.json_response({"items": [r.to_json() for r in roles.values()]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_delete("/v1/sessions/current", delete_current_session)
    app.router.add_get("/v1/sessions/revoked", list_revoked_sessions)
    app.router.add_get("/v1/users", list_users)
    app.router.add_post("/v1/users", create_user)
    app.router.add_get("/v1/users/{username}", get_user)
    app.router.add_patch("/v1/users/{username}", patch_user)
    app.router.add_delete("/v1/users/{username}", delete_user)
    app.router.add_put("/v1/users/{username}/roles", put_roles)
    app.router.add_get("/v1/roles", list_roles)
