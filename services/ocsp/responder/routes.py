"""The responder's aiohttp edge: ``POST /``, ``GET /{base64}``, ``GET /v1/responder.pem``
and ``GET /v1/responder-next.pem``.

Only HTTP here: reading the request and answering it; ``answering`` decides what to
say and ``wire`` logs, counts and sets the caching headers exactly as the front does.
In production the front (``responder.front``) answers OCSP on the port before aiohttp
sees the connection; these handlers serve what it hands over (and the tests' clients).
Marked ``hot_path``: no per-request log line, the wire's own cheap metrics instead.
"""
from __future__ import annotations

import time

from aiohttp import web

from services.ocsp.log import OPLOG
from services.ocsp.responder.answering import MALFORMED, Result
from services.ocsp.responder.appkeys import MAX_AGE, RESPONDER
from services.ocsp.responder.codec import MAX_REQUEST_BYTES, MalformedRequest, decode_get_path
from services.ocsp.responder.wire import OCSP_RESPONSE_CT, get_reply, is_ocsp_get, record_answer
from shared import errors
from shared.http.clients import remote_address
from shared.http.problems import hot_path


def _ocsp_response(result: Result) -> web.Response:
    return web.Response(body=result.der, content_type=OCSP_RESPONSE_CT)


@hot_path
async def post_request(request: web.Request) -> web.Response:
    """POST /: an RFC 6960 request in the body. Any Content-Type is tolerated (some
    clients send none); a body over MAX_REQUEST_BYTES is answered malformedRequest."""
    started = time.perf_counter()
    length = request.content_length
    if length is not None and length > MAX_REQUEST_BYTES:
        result = Result(MALFORMED, "malformed")
    else:
        body = await _read_capped(request)
        result = await request.app[RESPONDER].respond(body) if body is not None else Result(MALFORMED, "malformed")
    record_answer(request.app[OPLOG].record, remote_address(request), result, started)
    return _ocsp_response(result)


async def _read_capped(request: web.Request) -> bytes | None:
    """The body, or None once it exceeds the cap (chunked bodies have no length up front)."""
    if request.content_length is not None:
        return await request.read()
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@hot_path
async def get_request(request: web.Request) -> web.Response:
    """GET /{base64 DER} (RFC 5019): the raw path, because aiohttp's cleaning of '//'
    and of '%2F' would break base64; answers carry HTTP caching headers."""
    tail = request.raw_path.partition("?")[0]
    if not is_ocsp_get(tail):
        raise errors.NotFound("no such resource")
    started = time.perf_counter()
    try:
        der = decode_get_path(tail)
    except MalformedRequest:
        result = Result(MALFORMED, "malformed")
    else:
        result = await request.app[RESPONDER].respond(der)
    record_answer(request.app[OPLOG].record, remote_address(request), result, started)
    status, headers = get_reply(result, request.app[MAX_AGE], request.headers.get("If-None-Match"))
    if headers is None:
        return _ocsp_response(result)
    if status == 304:
        return web.Response(status=304, headers=headers)
    return web.Response(body=result.der, content_type=OCSP_RESPONSE_CT, headers=headers)


def _pem(body: bytes, filename: str) -> web.Response:
    # Not cacheable for long: at a switch both documents change at once.
    return web.Response(body=body, content_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "Cache-Control": "no-cache"})


async def responder_pem(request: web.Request) -> web.Response:
    """GET /v1/responder.pem: the certificate that signs answers now (for trusted-responder set-ups)."""
    current, _ = request.app[RESPONDER].signers()
    return _pem(current.certificate_pem(), "responder.pem")


async def responder_next_pem(request: web.Request) -> web.Response:
    """GET /v1/responder-next.pem: the certificate that signs from the configured switch on,
    for clients that pin the responder (``openssl ocsp -VAfile``) to add before it; 404
    when no rotation is pending."""
    _, following = request.app[RESPONDER].signers()
    if following is None:
        raise errors.NotFound("no next responder certificate is configured (no rotation pending)")
    return _pem(following.certificate_pem(), "responder-next.pem")


def add_routes(app: web.Application) -> None:
    """POST / and the GET catch-all; the catch-all is the least specific route, so
    /healthz, /metrics, /openapi.json and /v1/* resolve before it."""
    app.router.add_get("/v1/responder.pem", responder_pem)
    app.router.add_get("/v1/responder-next.pem", responder_next_pem)
    app.router.add_post("/", post_request)
    app.router.add_get("/{tail:.*}", get_request, allow_head=False)
