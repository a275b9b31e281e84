"""Log OCSP: the live stream of OCSP answers and online connects.

The browser's EventSource cannot send an Authorization header, so the console relays
the ocsp service's stream with the operator's token: the bytes are passed on as they
come (the events keep their ids), and the browser's ``Last-Event-ID`` is passed back
upstream, so a reconnect resumes exactly after the last entry the page received.
"""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

from shared import errors
from shared.auth import Right
from shared.houses import COUNTY_HOUSE_CODES

from services.console.api import problem_error
from services.console.web import api, as_domain_error, house_choice, operator, render

STATUSES = {"": "Toate", "good": "good", "revoked": "revoked", "unknown": "unknown",
            "unauthorized": "unauthorized", "malformed": "malformed", "online": "online",
            "offline": "offline"}
# The stream is long-lived: no total timeout; a read timeout above the upstream's 15 s
# heartbeat, so a stream whose upstream died ends and the browser reconnects.
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=45)
# The upstream streams open now: closed at shutdown, so that an open Log OCSP page
# does not hold the console's stop for the whole shutdown timeout.
STREAMS = web.AppKey("console_log_streams", set)


async def log_page(request: web.Request) -> web.Response:
    """GET /log-ocsp: the page; the entries arrive through /log-ocsp/stream."""
    principal = operator(request, Right.OCSP_LOG_READ)
    return render(request, "ocsp_log.html", {
        "statuses": STATUSES, "filter_house": house_choice(request),
        "filter_user": request.query.get("utilizator", ""), "filter_status": request.query.get("stare", ""),
        "national": principal.is_national, "personal": principal.can(Right.OCSP_LOG_PERSONAL)})


def upstream_params(query, principal) -> dict[str, str]:
    """The stream's filters as the ocsp service names them; a county operator's house
    is always their own (the ocsp service holds them to it as well)."""
    params: dict[str, str] = {}
    cas = (query.get("casa") or "").strip().upper()
    if not principal.is_national:
        cas = principal.cas
    if cas and cas in COUNTY_HOUSE_CODES:
        params["cas"] = cas
    username = (query.get("utilizator") or "").strip()
    # Only a reader who sees users may look for one (the ocsp service refuses the rest).
    if username and principal.can(Right.OCSP_LOG_PERSONAL):
        params["username"] = username[:200]
    status = (query.get("stare") or "").strip()
    if status in STATUSES and status:
        params["status"] = status
    return params


async def log_stream(request: web.Request) -> web.StreamResponse:
    """GET /log-ocsp/stream: the ocsp service's SSE stream, relayed."""
    principal = request.get("operator")
    if principal is None:
        raise errors.Unauthorized("log in to the console first")
    if not principal.can(Right.OCSP_LOG_READ):
        raise errors.Forbidden("your roles do not include the right to read the OCSP log")
    client = api(request)
    headers = client.headers("text/event-stream")
    resume = request.headers.get("Last-Event-ID") or request.query.get("dupa")
    if resume and resume.isdigit():
        headers["Last-Event-ID"] = resume
    try:
        upstream = await client.http.get(client.url("ocsp", "/v1/log/stream"),
                                         params=upstream_params(request.query, principal),
                                         headers=headers, timeout=STREAM_TIMEOUT)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raise errors.Unavailable("the OCSP log stream is not available now") from None
    request.app[STREAMS].add(upstream)
    try:
        return await _relay(request, upstream)
    finally:
        request.app[STREAMS].discard(upstream)


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    async with upstream:
        if upstream.status != 200:
            raise as_domain_error(problem_error("ocsp", upstream.status, await upstream.read()))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientError, asyncio.TimeoutError):
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
    return response


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every relayed stream (the browsers reconnect to another console)."""
    for upstream in list(app[STREAMS]):
        upstream.close()
