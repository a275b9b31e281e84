"""HTTP handlers of the keygen service: parse, call registry/issuing/desktop, answer."""
from __future__ import annotations

import contextlib

from aiohttp import web

from shared import errors
from shared.audit import audit_target
from shared.auth import Right, authorize, house_filter
from shared.db import POOL, reading
from shared.http.reading import check_fields, read_json
from shared.paging import page_count

from services.keygen import bodies, desktop, registry
from shared.http.clients import remote_address
from services.keygen.activation import parse_attempt
from services.keygen.agreement import FILENAME
from services.keygen.issuing import KeyKit, issue_key
from services.keygen.text import field_label

KIT = web.AppKey("key_kit", KeyKit)

ISSUE = {"reset": bool}
# The serial exists in clear in these answers only: no cache may keep a copy.
NO_STORE = {"Cache-Control": "no-store"}


def wants_pdf(accept: str) -> bool:
    """Whether an Accept header prefers the agreement PDF to the JSON answer.

    ``application/pdf`` must be named with a quality above zero. It then wins over
    wildcards (``*/*``, ``application/*``) of the same quality, but over a named
    ``application/json`` only with a higher one; without it the answer is JSON.
    """
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    pdf = quality.get("application/pdf", 0.0)
    if pdf <= 0:
        return False
    if "application/json" in quality:
        return pdf > quality["application/json"]
    return pdf >= max(quality.get("application/*", 0.0), quality.get("*/*", 0.0))


async def read_body(request: web.Request) -> dict:
    """The JSON object body (``shared.http.reading.read_json``: 400 when unreadable), except
    that a number too long for Python to read is kept for its field's rule to refuse (422
    naming it) rather than making the whole body unreadable (see bodies.py)."""
    try:
        body = await read_json(request)
    except errors.BadRequest:
        body = bodies.loads(await request.read())  # aiohttp keeps the body: no second read
        if body is None:
            raise
    # No field is named with anything but printable ASCII: an odd name is refused here,
    # escaped, so that no answer echoes a NUL or a lone surrogate back.
    odd = {field_label(name): "unknown field" for name in body if field_label(name) != name}
    if odd:
        raise errors.Invalid("some fields are not acceptable", errors=odd)
    return body


# --- providers ------------------------------------------------------------------------

async def create_provider(request: web.Request) -> web.Response:
    """POST /v1/providers ("Nou"): 201 with the provider's detail."""
    principal = authorize(request, Right.PROVIDERS_WRITE)
    body = await read_body(request)
    audit_target(request, "provider", None, body.get("cas") if isinstance(body.get("cas"), str) else None)
    async with request.app[POOL].acquire() as conn:
        provider = await registry.create_provider(conn, principal, body, request.app[KIT].clock())
    audit_target(request, "provider", provider["id"], provider["cas"])
    return web.json_response(provider, status=201,
                             headers={"Location": f"/v1/providers/{provider['id']}"})


async def list_providers(request: web.Request) -> web.Response:
    """GET /v1/providers: one page, with the total and the page count."""
    principal = authorize(request, Right.PROVIDERS_READ)
    query = registry.parse_list_query(request.query)
    cas = house_filter(principal, query.cas)
    async with reading(request.app) as conn:  # a listing: a standby's, if one is set
        total, items = await registry.list_page(conn, cas=cas, q=query.q, limit=query.per_page,
                                                offset=query.offset)
    return web.json_response({"items": items, "total": total,
                              "pages": page_count(total, query.per_page),
                              "page": query.page, "per_page": query.per_page})


async def get_provider(request: web.Request) -> web.Response:
    """GET /v1/providers/{id}: every field, the current key and the key history."""
    principal = authorize(request, Right.PROVIDERS_READ)
    provider_id = registry.parse_id(request.match_info["id"])
    async with request.app[POOL].acquire() as conn:
        row = await registry.visible(conn, principal, provider_id)
        provider = await registry.detail(conn, row)
    return web.json_response(provider)


async def patch_provider(request: web.Request) -> web.Response:
    """PATCH /v1/providers/{id} ("Modifica" / "Salveaza"): the changed fields only."""
    principal = authorize(request, Right.PROVIDERS_WRITE)
    provider_id = registry.parse_id(request.match_info["id"])
    audit_target(request, "provider", provider_id, None)
    body = await read_body(request)
    async with request.app[POOL].acquire() as conn:
        provider = await registry.update_provider(conn, principal, provider_id, body,
                                                  request.app[KIT].clock())
    audit_target(request, "provider", provider_id, provider["cas"])
    return web.json_response(provider)


async def provider_history(request: web.Request) -> web.Response:
    """GET /v1/providers/{id}/history: who changed what, when (oldest first)."""
    principal = authorize(request, Right.PROVIDERS_READ)
    provider_id = registry.parse_id(request.match_info["id"])
    async with request.app[POOL].acquire() as conn:
        items = await registry.history(conn, principal, provider_id)
    return web.json_response({"items": items})


# --- keys -----------------------------------------------------------------------------

async def provider_keys(request: web.Request) -> web.Response:
    """GET /v1/providers/{id}/keys: the licence key's history, oldest first (no secrets)."""
    principal = authorize(request, Right.PROVIDERS_READ)
    provider_id = registry.parse_id(request.match_info["id"])
    async with request.app[POOL].acquire() as conn:
        items = await registry.key_history(conn, principal, provider_id)
    return web.json_response({"items": items})


async def create_activation_key(request: web.Request) -> web.StreamResponse:
    """POST /v1/providers/{id}/activation-key: "Generare parola" / "Resetare parola".

    201 JSON with the serial, or with ``Accept: application/pdf`` the signed agreement,
    the serial also in ``X-License-Serial`` so that the console shows it from one call.
    """
    principal = authorize(request, Right.KEYS_ISSUE)
    provider_id = registry.parse_id(request.match_info["id"])
    audit_target(request, "provider", provider_id, None)
    body = check_fields(await read_body(request), ISSUE, required=("reset",))
    pdf = wants_pdf(request.headers.get("Accept", ""))
    kit = request.app[KIT]
    async with kit.pdf_gate if pdf else contextlib.nullcontext(), \
            request.app[POOL].acquire() as conn:
        issued = await issue_key(conn, kit, principal, provider_id, reset=body["reset"],
                                 with_pdf=pdf)
    audit_target(request, "provider", provider_id, issued.cas, key_id=issued.key.key_id,
                 reset=body["reset"])
    if issued.pdf is None:
        return web.json_response(issued.to_json(), status=201, headers=NO_STORE)
    return web.Response(status=201, body=issued.pdf, content_type="application/pdf", headers={
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="{FILENAME}"',
        "X-License-Serial": issued.key.serial,
        "X-Key-Id": issued.key.key_id,
        "X-External-User": issued.external_user,
        "X-Issued-At": issued.key.issued_at.isoformat(),
    })


# --- desktop activation ---------------------------------------------------------------

async def create_activation(request: web.Request) -> web.Response:
    """POST /v1/activations (no token): the desktop's "Activare"."""
    kit = request.app[KIT]
    try:
        # A typo (the check character) is answered here: no lookup, nothing stored.
        attempt = parse_attempt(await read_body(request))
    except errors.DomainError:
        desktop.count_malformed()
        raise
    async with request.app[POOL].acquire() as conn:
        answer = await desktop.activate(conn, kit.pepper, kit.policy, kit.clock(),
                                        remote_address(request), attempt)
    return web.json_response(answer, headers=NO_STORE)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/providers", create_provider)
    app.router.add_get("/v1/providers", list_providers)
    app.router.add_get("/v1/providers/{id}", get_provider)
    app.router.add_patch("/v1/providers/{id}", patch_provider)
    app.router.add_get("/v1/providers/{id}/history", provider_history)
    app.router.add_get("/v1/providers/{id}/keys", provider_keys)
    app.router.add_post("/v1/providers/{id}/activation-key", create_activation_key)
    app.router.add_post("/v1/activations", create_activation)
