"""HTTP handlers for delegated signers: ``/v1/issuers/{issuer_id}/signer`` (PUT, GET, DELETE).

HTTP only: the checks and the encryption live in ``signers``. A change is
written with a SignerChanged event in the outbox, in the same transaction, so every
responder process (``follower``, on its own queue) starts signing with the new key (or
stops using the old one) soon after it commits, and none misses it.
"""
from __future__ import annotations

import asyncio
import hashlib
import uuid

from aiohttp import web

from shared import errors
from shared.audit import audit_target
from shared.auth import NATIONAL, Right, authorize
from shared.clock import utc_now
from shared.db import POOL
from shared.events import SignerChanged, iso
from shared.outbox import add_event
from shared.http.reading import check_fields, read_json

from services.ocsp.state import queries, signers
from services.ocsp.state.appkeys import DATA_KEY


def _issuer_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["issuer_id"])
    except ValueError:
        raise errors.NotFound("no such issuing authority") from None


def _national(request: web.Request):
    principal = authorize(request, Right.ISSUERS_WRITE)
    if not principal.is_national:
        raise errors.Forbidden("issuing authorities and their signers are managed by CNAS only")
    return principal


async def put_signer(request: web.Request) -> web.Response:
    """Delegate the issuer's OCSP signing to the uploaded responder certificate and key."""
    principal = _national(request)
    issuer_id = _issuer_id(request)
    audit_target(request, "ocsp-signer", issuer_id, NATIONAL)
    body = check_fields(await read_json(request), {"certificate_pem": str, "private_key_pem": str},
                        required=("certificate_pem", "private_key_pem"))
    pool = request.app[POOL]
    issuer = await queries.get_issuer(pool, issuer_id)
    if issuer is None:
        raise errors.NotFound("no such issuing authority (is it registered in certs?)")
    checked = signers.check_signer(issuer["certificate_der"], body["certificate_pem"], body["private_key_pem"])
    nonce, ciphertext = signers.encrypt_key(request.app[DATA_KEY], issuer_id, checked.private_key_der)
    # Shielded: a client hanging up must not leave the key stored but not announced.
    row = await _shielded(_store(pool, issuer_id, checked.certificate_der, nonce, ciphertext, principal.username))
    return web.json_response(signers.signer_info(issuer_id, row["certificate_der"], row["created_at"],
                                                 row["created_by"]))


async def _store(pool, issuer_id, certificate_der, nonce, ciphertext, actor):
    async with pool.acquire() as conn, conn.transaction():
        row = await queries.upsert_signer(conn, issuer_id, certificate_der, nonce, ciphertext, actor)
        await _announce(conn, issuer_id, hashlib.sha256(certificate_der).hexdigest())
    return row


async def _announce(conn, issuer_id: uuid.UUID, certificate_sha256: str | None) -> None:
    await add_event(conn, SignerChanged(issuer_id=str(issuer_id), certificate_sha256=certificate_sha256,
                                        changed_at=iso(utc_now())), NATIONAL)


async def _shielded(coro):
    return await asyncio.shield(asyncio.ensure_future(coro))


async def get_signer(request: web.Request) -> web.Response:
    """The delegated signer's certificate (never its key); 404 when there is none."""
    authorize(request, Right.ISSUERS_READ)
    issuer_id = _issuer_id(request)
    row = await queries.get_signer(request.app[POOL], issuer_id)
    if row is None:
        raise errors.NotFound("this issuing authority has no delegated signer; answers are signed "
                              "by the responder certificate (GET /v1/responder.pem)")
    return web.json_response(signers.signer_info(issuer_id, row["certificate_der"], row["created_at"],
                                                 row["created_by"]))


async def delete_signer(request: web.Request) -> web.Response:
    """Stop signing for the issuer with its delegated key (and forget the key)."""
    _national(request)
    issuer_id = _issuer_id(request)
    audit_target(request, "ocsp-signer", issuer_id, NATIONAL)

    async def remove() -> bool:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            deleted = await queries.delete_signer(conn, issuer_id)
            if deleted:
                await _announce(conn, issuer_id, None)
        return deleted

    if not await _shielded(remove()):
        raise errors.NotFound("this issuing authority has no delegated signer")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/issuers/{issuer_id}/signer", get_signer)
    app.router.add_put("/v1/issuers/{issuer_id}/signer", put_signer)
    app.router.add_delete("/v1/issuers/{issuer_id}/signer", delete_signer)
