"""The OCSP responder's HTTP edge: ``POST /``, ``GET /{base64}`` and ``GET /v1/responder.pem``.

Only HTTP here: reading the request, the RFC 5019 caching headers, the log entry and
the metrics; ``services.ocsp.answering`` decides what to answer. This is the hot path,
so it is marked ``hot_path`` (no per-request log line) and keeps its own metrics with
pre-resolved label children.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from functools import lru_cache

from aiohttp import web
from prometheus_client import Counter, Histogram

from shared import errors
from shared.http import hot_path

from .answering import MALFORMED, Responder, Result
from .codec import MAX_REQUEST_BYTES, MalformedRequest, decode_get_path
from .oplog import OPLOG, LogEntry

OCSP_RESPONSE_CT = "application/ocsp-response"

RESPONSES = Counter("siui_ocsp_responses_total", "OCSP answers, one per CertID (or per request when "
                    "no CertID could be looked up)", ["status", "cas"])
LATENCY = Histogram("siui_ocsp_response_seconds", "Time from the request's body to its answer",
                    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1))
_observe = LATENCY.observe
_counters: dict[tuple[str, str], object] = {}

RESPONDER = web.AppKey("ocsp_responder", Responder)
MAX_AGE = web.AppKey("ocsp_max_age", int)
RESPONDER_PEM = web.AppKey("ocsp_responder_pem", bytes)


def _count(status: str, cas: str | None) -> None:
    key = (status, cas or "")
    counter = _counters.get(key)
    if counter is None:  # .labels() costs more than the increment: resolve each pair once
        counter = _counters[key] = RESPONSES.labels(*key)
    counter.inc()


@lru_cache(maxsize=64)
def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _record(request: web.Request, result: Result, started: float) -> None:
    """One log entry and one count per CertID answered; never slows the answer down."""
    elapsed = time.perf_counter() - started
    _observe(elapsed)
    latency_ms = elapsed * 1000
    at = datetime.now(timezone.utc)
    client = request.remote
    record = request.app[OPLOG].record
    if not result.answers:
        _count(result.status, None)
        record(LogEntry(at, "ocsp", result.status, latency_ms, client))
        return
    successful = result.status == "successful"
    # The log knows no internalError (our fault, not the client's): the client was told
    # to come back, so it is logged as try_later with the cause in the detail.
    detail = "internal_error" if result.status == "internal_error" else None
    for cert_id, found in result.answers:
        entry = found.record
        if not successful:
            status = "try_later" if detail else result.status
        elif entry is None:
            status = "unknown"
        else:
            status = "revoked" if entry.status == "revoked" or entry.suspended else "good"
        cas = entry.cas if entry is not None else None
        _count(status, cas)
        record(LogEntry(at, "ocsp", status, latency_ms, client, cas,
                        entry.username if entry is not None else None, str(cert_id.serial),
                        found.issuer.issuer_id if found.issuer is not None else None,
                        entry.certificate_id if entry is not None else None, detail))


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
    _record(request, result, started)
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
    if tail.lstrip("/").startswith("v1/"):
        raise errors.NotFound("no such resource")
    started = time.perf_counter()
    try:
        der = decode_get_path(tail)
    except MalformedRequest:
        result = Result(MALFORMED, "malformed")
    else:
        result = await request.app[RESPONDER].respond(der)
    _record(request, result, started)
    if result.status != "successful":
        return _ocsp_response(result)
    etag = result.etag or '"' + hashlib.sha256(result.der).hexdigest() + '"'
    max_age = request.app[MAX_AGE]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    expires = min(result.next_update, now + timedelta(seconds=max_age))
    headers = {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Last-Modified": _http_date(result.produced_at),
        "Expires": _http_date(expires),
        "ETag": etag,
    }
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=result.der, content_type=OCSP_RESPONSE_CT, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return any(candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(","))



async def responder_pem(request: web.Request) -> web.Response:
    """GET /v1/responder.pem: the certificate that signs answers (for trusted-responder set-ups)."""
    return web.Response(body=request.app[RESPONDER_PEM], content_type="application/x-pem-file",
                        headers={"Content-Disposition": 'attachment; filename="responder.pem"'})


def add_responder_routes(app: web.Application) -> None:
    """POST / and the GET catch-all; the catch-all is the least specific route, so
    /healthz, /metrics, /openapi.json and /v1/* resolve before it."""
    app.router.add_get("/v1/responder.pem", responder_pem)
    app.router.add_post("/", post_request)
    app.router.add_get("/{tail:.*}", get_request, allow_head=False)
