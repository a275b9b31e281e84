"""HTTP handlers of the certs service: read the request, call ``operations``/``queries``,
answer JSON. Rules live in ``certificates``/``pki``; errors are raised, never built here.
"""
from __future__ import annotations

import asyncio

import math
import uuid
from datetime import timedelta

from aiohttp import web
from prometheus_client import Counter

from shared import errors
from shared.audit import audit_target
from shared.auth import NATIONAL, Right, authorize, ensure_house, house_filter
from shared.db import POOL, reading
from shared.expiry import WINDOWS
from shared.houses import is_house
from shared.http.reading import check_fields, query_int, read_json

from . import expiring, operations, queries, trusted_list_import, views
from .certificates import STATUSES, free_text
from .config import CLOCK, CONFIG
from .crl import MAX_URLS, check_crl_urls
from .durable import PENDING_WRITES, run_to_completion
from .pki import certificate_facts, issuer_facts, parse_serial, to_pem
from .status_fetcher import STATUS_WAKE
from .crl_fetch import FetchError, FetchLimits, client_session, fetch_crl
from .trusted_list import TrustedListError, read_trusted_list
from .x509names import DNSyntaxError, dn_key, parse_dn

_TRUE, _FALSE = ("true", "1", "yes", "da"), ("false", "0", "no", "nu")
# Counted once the transaction has committed (a refused or rolled-back change is not one);
# read by the console's Panou operational.
STATE_CHANGES = Counter("siui_certs_state_changes_total", "Certificate state changes committed",
                        ["cas", "action"])


# -- issuing authorities ("Autoritati emitente") ------------------------------------------

async def list_issuers(request: web.Request) -> web.Response:
    """GET /v1/issuers?dn=: every house may see the authorities; ``dn`` matches any spelling."""
    authorize(request, Right.ISSUERS_READ)
    raw_dn = request.query.get("dn")
    key = _dn_key(raw_dn, "dn") if raw_dn else None
    rows = await queries.list_issuers(request.app[POOL], key)
    return web.json_response({"items": [views.issuer_json(r) for r in rows], "total": len(rows)})


async def get_issuer(request: web.Request) -> web.Response:
    """GET /v1/issuers/{id}: one authority, with its CA certificate."""
    authorize(request, Right.ISSUERS_READ)
    row = await _issuer_or_404(request)
    return web.json_response(views.issuer_json(row, with_certificate=True))


async def get_issuer_certificate(request: web.Request) -> web.Response:
    """GET /v1/issuers/{id}/certificate.pem: the authority's certificate file."""
    authorize(request, Right.ISSUERS_READ)
    row = await _issuer_or_404(request)
    return web.Response(text=to_pem(row["certificate_der"]), content_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="issuer-{row["id"]}.pem"'})


async def create_issuer(request: web.Request) -> web.Response:
    """POST /v1/issuers {"certificate_pem"}: CNAS registers an authority (201, 409 same DN)."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    body = check_fields(await read_json(request), {"certificate_pem": str}, required=("certificate_pem",))
    facts = await asyncio.to_thread(issuer_facts, body["certificate_pem"])  # CPU work off the event loop

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            return await operations.register_issuer(conn, facts, principal.username, request.app[CLOCK]())

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "issuer", row["id"], NATIONAL, subject_dn=row["subject_dn"])
    return web.json_response(views.issuer_json(row, with_certificate=True), status=201,
                             headers={"Location": f"/v1/issuers/{row['id']}"})


async def replace_issuer(request: web.Request) -> web.Response:
    """PUT /v1/issuers/{id} {"certificate_pem"}: the authority's renewed CA certificate."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    issuer_id = _path_id(request, "issuing authority")
    body = check_fields(await read_json(request), {"certificate_pem": str}, required=("certificate_pem",))
    facts = await asyncio.to_thread(issuer_facts, body["certificate_pem"])

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            return await operations.replace_issuer_certificate(conn, issuer_id, facts, principal.username,
                                                               request.app[CLOCK]())

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "issuer", row["id"], NATIONAL, subject_dn=row["subject_dn"])
    return web.json_response(views.issuer_json(row, with_certificate=True))


async def patch_issuer(request: web.Request) -> web.Response:
    """PATCH /v1/issuers/{id} {"crl_urls": [...]}: where CNAS says the authority's CRLs are
    (beside the distribution points its certificates name); fetched soon after."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    issuer_id = _path_id(request, "issuing authority")
    body = check_fields(await read_json(request), {"crl_urls": list}, required=("crl_urls",))
    urls = check_crl_urls(body["crl_urls"])

    async def write():
        async with request.app[POOL].acquire() as conn:
            return await queries.set_issuer_crl_urls(conn, issuer_id, urls, principal.username,
                                                     request.app[CLOCK]())

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    if row is None:
        raise errors.NotFound("no such issuing authority")
    request.app[STATUS_WAKE].set()
    audit_target(request, "issuer", row["id"], NATIONAL, crl_urls=urls)
    return web.json_response(views.issuer_json(row))


async def refresh_issuer_status(request: web.Request) -> web.Response:
    """POST /v1/issuers/{id}/refresh-status: fetch the authority's CRL now (202: the
    background fetcher does it; the issuer's status fields show the result)."""
    _national(authorize(request, Right.ISSUERS_WRITE))
    issuer_id = _path_id(request, "issuing authority")
    async with request.app[POOL].acquire() as conn:
        if not await queries.request_status_refresh(conn, issuer_id, request.app[CLOCK]()):
            raise errors.NotFound("no such issuing authority")
        sources = await queries.issuer_sources(conn, issuer_id, MAX_URLS)
    if not sources:
        raise errors.Conflict("the authority has no CRL source: set crl_urls, or register certificates "
                              "that name a CRL distribution point")
    request.app[STATUS_WAKE].set()
    audit_target(request, "issuer", issuer_id, NATIONAL)
    return web.json_response({"issuer_id": str(issuer_id), "sources": sources,
                              "status_url": f"/v1/issuers/{issuer_id}"}, status=202)


# -- the national Trusted List ---------------------------------------------------------------

_XML_TYPES = ("application/xml", "text/xml", "application/vnd.etsi.tsl+xml")


async def upload_trusted_list(request: web.Request) -> web.Response:
    """POST /v1/trusted-list (the XML): verified, read, kept; the difference it would make."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    if request.content_type not in _XML_TYPES:
        raise errors.BadRequest(f"send the Trusted List as one of {', '.join(_XML_TYPES)}")
    data = await _bounded_body(request, request.app[CONFIG].trusted_list_max_bytes)
    return await _import_trusted_list(request, principal, data, source="upload")


async def fetch_trusted_list(request: web.Request) -> web.Response:
    """POST /v1/trusted-list/fetch: the same as an upload, of the list at SIUI_CERTS_TL_URL."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    if request.can_read_body:  # nothing to send; a body, if any, must be an empty object
        check_fields(await read_json(request), {})
    config = request.app[CONFIG]
    url = config.trusted_list_url
    if not url:
        raise errors.Conflict("no Trusted List URL is configured (SIUI_CERTS_TL_URL): upload the list")
    # The CRL downloads' bounds, with the list's own size cap; the URL is CNAS's setting,
    # so its host needs no allow-list, but it must still resolve to a public address.
    limits = FetchLimits(max_bytes=config.trusted_list_max_bytes, timeout_seconds=config.crl_timeout_seconds,
                         allowed_hosts=(), allow_loopback=config.crl_allow_loopback)
    try:
        async with client_session(limits) as session:
            data = await fetch_crl(session, url, limits)
    except FetchError as exc:
        raise errors.BadGateway(f"the Trusted List could not be downloaded: {exc}") from None
    return await _import_trusted_list(request, principal, data, source=url)


async def trusted_list_status(request: web.Request) -> web.Response:
    """GET /v1/trusted-list: where the list comes from, and the one applied last."""
    authorize(request, Right.ISSUERS_READ)
    async with request.app[POOL].acquire() as conn:
        applied = await trusted_list_import.last_applied(conn)
    return web.json_response({"source_url": request.app[CONFIG].trusted_list_url or None, "last_applied": applied})


async def _import_trusted_list(request: web.Request, principal, data: bytes, *, source: str) -> web.Response:
    config = request.app[CONFIG]
    try:
        operator_pem = await asyncio.to_thread(config.trusted_list_operator_cert.read_text)
    except OSError:
        raise errors.Conflict("no Trusted List operator certificate is configured "
                              "(SIUI_CERTS_TL_OPERATOR_CERT)") from None
    try:
        # Signature verification and parsing are CPU work: off the event loop.
        trusted = await asyncio.to_thread(read_trusted_list, data, operator_pem,
                                          max_bytes=config.trusted_list_max_bytes)
    except TrustedListError as exc:
        raise errors.Invalid(f"Trusted List refused: {exc}", errors={"body": str(exc)}) from None

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            return await trusted_list_import.upload(conn, trusted, principal.username, request.app[CLOCK]())

    body = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "trusted_list", body["import_id"], NATIONAL, sequence_number=trusted.sequence_number,
                 sha256=body["sha256"], source=source)
    return web.json_response(body)


async def apply_trusted_list(request: web.Request) -> web.Response:
    """POST /v1/trusted-list/apply {"import_id"?}: apply the (newest) uploaded list."""
    principal = _national(authorize(request, Right.ISSUERS_WRITE))
    body = check_fields(await read_json(request), {"import_id": str}) if request.can_read_body else {}
    import_id = None
    if body.get("import_id"):
        try:
            import_id = uuid.UUID(body["import_id"])
        except ValueError:
            raise errors.Invalid("import_id is not an id", errors={"import_id": "not a valid id"}) from None

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            return await trusted_list_import.apply(conn, import_id, principal.username, request.app[CLOCK]())

    result = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "trusted_list", result["import_id"], NATIONAL, added=len(result["added"]),
                 updated=len(result["updated"]), flagged=len(result["flagged"]))
    return web.json_response(result)


async def _bounded_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    if not body:
        raise errors.BadRequest("the request body is empty; the Trusted List XML is expected")
    return bytes(body)


# -- user certificates ("Certificate utilizatori") ----------------------------------------

_CREATE_FIELDS = {"username": str, "serial": (str, int), "issuer_id": str, "issuer": str,
                  "provider": str, "certificate_pem": str}


async def create_certificate(request: web.Request) -> web.Response:
    """POST /v1/certificates: the seed's form (serial + issuer) or the certificate itself."""
    principal = authorize(request, Right.CERTIFICATES_WRITE)
    body = check_fields(await read_json(request), _CREATE_FIELDS, required=("username",))
    # Reading an uploaded certificate is CPU work: off the event loop, so other houses'
    # requests are not held behind it.
    registration = await asyncio.to_thread(_registration, body)

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            certificate_id = await operations.register_certificate(conn, principal, registration,
                                                                   request.app[CLOCK]())
            row = await queries.get_certificate(conn, certificate_id)
        STATE_CHANGES.labels(row["cas"], "registered").inc()
        return row

    row = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "certificate", row["id"], row["cas"], serial=str(int(row["serial"])))
    return web.json_response(views.certificate_json(row), status=201,
                             headers={"Location": f"/v1/certificates/{row['id']}"})


def _registration(body: dict) -> operations.Registration:
    username, provider = body["username"].strip(), (body.get("provider") or "").strip() or None
    if body.get("certificate_pem"):
        extra = {k: "leave out: it is read from the certificate" for k in ("serial", "issuer_id", "issuer")
                 if body.get(k) not in (None, "")}
        if extra:
            raise errors.Invalid("give either certificate_pem, or serial with issuer_id", errors=extra)
        return operations.Registration(username, provider, uploaded=certificate_facts(body["certificate_pem"]))
    problems = {}
    if body.get("serial") in (None, ""):
        problems["serial"] = "is required (or send certificate_pem)"
    if bool(body.get("issuer_id")) == bool(body.get("issuer")):
        problems["issuer_id"] = "give the issuing authority's id (or its DN as issuer), once"
    if problems:
        raise errors.Invalid("give either certificate_pem, or serial with issuer_id", errors=problems)
    serial = parse_serial(body["serial"])
    if body.get("issuer_id"):
        try:
            issuer_id = uuid.UUID(body["issuer_id"])
        except ValueError:
            raise errors.Invalid("issuer_id is not an id", errors={"issuer_id": "not a valid id"}) from None
        return operations.Registration(username, provider, serial=serial, issuer_id=issuer_id)
    return operations.Registration(username, provider, serial=serial, issuer_key=_dn_key(body["issuer"], "issuer"))


async def list_certificates(request: web.Request) -> web.Response:
    """GET /v1/certificates?cas=&username=&provider=&suspended=&status=&issuer_id=
    &expiring_within_days=&page=&per_page= (the house's own only, for a county)."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    query = request.query
    page = query_int(request, "page", 1)
    per_page = query_int(request, "per_page", 20, maximum=request.app[CONFIG].max_page_size)
    now = request.app[CLOCK]()
    expires_by = None
    if query.get("expiring_within_days"):
        expires_by = now + timedelta(days=query_int(request, "expiring_within_days", 30, minimum=0, maximum=3650))
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise errors.Invalid("unknown status", errors={"status": f"one of {', '.join(STATUSES)}"})
    filters = (house_filter(principal, query.get("cas")), (query.get("username") or "").strip() or None,
               (query.get("provider") or "").strip() or None, _query_bool(request, "suspended"), status,
               _query_uuid(request, "issuer_id"), expires_by, now)
    async with reading(request.app) as conn:  # a listing: a standby's, if one is set
        total = await queries.count_certificates(conn, filters)
        rows = await queries.list_certificates(conn, filters, limit=per_page, offset=(page - 1) * per_page)
    return web.json_response({"items": [views.certificate_json(r) for r in rows], "total": total,
                              "pages": math.ceil(total / per_page), "page": page, "per_page": per_page})


async def get_certificate(request: web.Request) -> web.Response:
    """GET /v1/certificates/{id}: the seed's detail, with the history of changes."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    certificate_id = _path_id(request, "certificate")
    async with request.app[POOL].acquire() as conn:
        row = await queries.get_certificate(conn, certificate_id)
        if row is None:
            raise errors.NotFound("no such certificate")
        ensure_house(principal, row["cas"], what="certificate")
        history = await queries.list_history(conn, certificate_id)
    return web.json_response(views.certificate_detail_json(row, history))


async def patch_certificate(request: web.Request) -> web.Response:
    """PATCH /v1/certificates/{id} {"suspended", "reason"?}: the *Suspendat* box."""
    principal = authorize(request, Right.CERTIFICATES_SUSPEND)
    certificate_id = _path_id(request, "certificate")
    body = check_fields(await read_json(request), {"suspended": bool, "reason": str}, required=("suspended",))
    reason = free_text(body.get("reason"), "reason")

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            changed = await operations.set_suspended(conn, principal, certificate_id, body["suspended"],
                                                     reason, request.app[CLOCK]())
            row, history = await _detail(conn, certificate_id)
        if changed:
            STATE_CHANGES.labels(row["cas"], "suspended" if body["suspended"] else "reinstated").inc()
        return changed, row, history

    changed, row, history = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "certificate", certificate_id, row["cas"], suspended=body["suspended"], changed=changed)
    return web.json_response(views.certificate_detail_json(row, history))


async def revoke_certificate(request: web.Request) -> web.Response:
    """POST /v1/certificates/{id}/revoke {"reason", "comment"?}: permanent."""
    principal = authorize(request, Right.CERTIFICATES_SUSPEND)
    certificate_id = _path_id(request, "certificate")
    body = check_fields(await read_json(request), {"reason": str, "comment": str}, required=("reason",))
    comment = free_text(body.get("comment"), "comment")

    async def write():
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await operations.revoke(conn, principal, certificate_id, body["reason"], comment, request.app[CLOCK]())
            row, history = await _detail(conn, certificate_id)
        STATE_CHANGES.labels(row["cas"], "revoked").inc()
        return row, history

    row, history = await run_to_completion(request.app[PENDING_WRITES], write())
    audit_target(request, "certificate", certificate_id, row["cas"], revoked=row["revocation_reason"])
    return web.json_response(views.certificate_detail_json(row, history))


# -- expiring soon (issue 15) --------------------------------------------------------------

async def expiring_certificates(request: web.Request) -> web.Response:
    """GET /v1/certificates/expiring?cas=: how many certificates of each house expire
    within 30, 15 and 7 days (the dashboard's counts; the certificates themselves are
    GET /v1/certificates?expiring_within_days=N). A county sees its own house only."""
    principal = authorize(request, Right.CERTIFICATES_READ)
    requested = (request.query.get("cas") or "").strip().upper() or None
    if requested is not None and not is_house(requested):
        raise errors.Invalid("unknown house", errors={"cas": "a house code (AB ... VN, B, OPSNAJ)"})
    cas = house_filter(principal, requested)
    now = request.app[CLOCK]()
    async with reading(request.app) as conn:  # counts for a dashboard: a standby's, if one is set
        rows = await queries.count_expiring(conn, cas, now, expiring.horizon(now), list(WINDOWS))
    return web.json_response(expiring.counts_json(rows, now, houses=[cas] if cas else []))


# -- helpers ---------------------------------------------------------------------------

async def _detail(conn, certificate_id: uuid.UUID):
    return await queries.get_certificate(conn, certificate_id), await queries.list_history(conn, certificate_id)


async def _issuer_or_404(request: web.Request):
    row = await queries.get_issuer(request.app[POOL], _path_id(request, "issuing authority"))
    if row is None:
        raise errors.NotFound("no such issuing authority")
    return row


def _national(principal):
    # issuers:write is a national right; a county role that lists it still may not use it.
    if not principal.is_national:
        raise errors.Forbidden("issuing authorities are managed by CNAS; a county house can only view them")
    return principal


def _path_id(request: web.Request, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise errors.NotFound(f"no such {what}") from None


def _dn_key(text: str, field: str) -> str:
    try:
        return dn_key(parse_dn(text))
    except DNSyntaxError as exc:
        raise errors.Invalid(f"{field}: {exc}", errors={field: str(exc)}) from None


def _query_bool(request: web.Request, name: str) -> bool | None:
    raw = (request.query.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise errors.Invalid(f"query parameter {name} must be true or false", errors={name: "true or false"})


def _query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.Invalid(f"query parameter {name} is not an id", errors={name: "not a valid id"}) from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/issuers", list_issuers)
    app.router.add_post("/v1/issuers", create_issuer)
    app.router.add_get("/v1/issuers/{id}", get_issuer)
    app.router.add_put("/v1/issuers/{id}", replace_issuer)
    app.router.add_patch("/v1/issuers/{id}", patch_issuer)
    app.router.add_post("/v1/issuers/{id}/refresh-status", refresh_issuer_status)
    app.router.add_get("/v1/issuers/{id}/certificate.pem", get_issuer_certificate)
    app.router.add_get("/v1/trusted-list", trusted_list_status)
    app.router.add_post("/v1/trusted-list", upload_trusted_list)
    app.router.add_post("/v1/trusted-list/fetch", fetch_trusted_list)
    app.router.add_post("/v1/trusted-list/apply", apply_trusted_list)
    app.router.add_get("/v1/certificates", list_certificates)
    app.router.add_post("/v1/certificates", create_certificate)
    app.router.add_get("/v1/certificates/expiring", expiring_certificates)  # before {id}: it would match
    app.router.add_get("/v1/certificates/{id}", get_certificate)
    app.router.add_patch("/v1/certificates/{id}", patch_certificate)
    app.router.add_post("/v1/certificates/{id}/revoke", revoke_certificate)
