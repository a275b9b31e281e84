"""HTTP of the OCSP log: ``GET /v1/log`` (filters, paging) and ``GET /v1/log/stream``
(Server-Sent Events, resumable with ``Last-Event-ID``).

Several processes serve the port and each buffers only its own entries, so the stream
reads from the database: it tails ``id > last sent`` whenever any writer's
``pg_notify('ocsp_log')`` arrives (``feed.LogFeed``, on the process's LISTEN connection), and
once a second regardless, in case a notification was missed. Writers commit ids in
order (see ``writer``), so tailing by id neither skips nor repeats an entry.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any
from weakref import WeakSet

import asyncpg
from aiohttp import web
from aiohttp_sse import sse_response

from services.ocsp.log import queries as q
from services.ocsp.log.appkeys import LOG_FEED, STREAMS
from services.ocsp.log.filters import parse_filters
from services.ocsp.log.privacy import as_seen_by
from shared import errors
from shared.auth import VERIFIER, Principal, Right, TokenVerifier, authorize
from shared.clock import utc_now
from shared.db import POOL, reading
from shared.http.reading import query_int
from shared.logging import get_logger
from shared.validation import MAX_INT

log = get_logger(__name__)

STREAM_BATCH = 500
STREAM_POLL = 1.0         # seconds: the fallback when a notification is missed
HEARTBEAT = 15.0          # seconds between ": ping" comments, so proxies keep the stream
MAX_LIMIT = 1000


def entry_json(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the API shows it."""
    return {"id": row["id"], "at": row["at"].isoformat(), "operation": row["operation"],
            "status": row["status"], "latency_ms": round(float(row["latency_ms"]), 3),
            "client": row["client"], "cas": row["cas"], "username": row["username"],
            "serial": row["serial"], "issuer_id": row["issuer_id"],
            "certificate_id": row["certificate_id"], "detail": row["detail"]}


async def list_log(request: web.Request) -> web.Response:
    """GET /v1/log: matching entries, newest last. With ``after`` the page that follows
    that id; otherwise the newest ``limit`` (older ones with ``before``)."""
    principal = authorize(request, Right.OCSP_LOG_READ)
    filters = parse_filters(request.query, principal)
    limit = query_int(request, "limit", 100, maximum=MAX_LIMIT)
    after = query_int(request, "after", 0, minimum=0) if request.query.get("after") else None
    before = query_int(request, "before", 1, minimum=1) if request.query.get("before") else None
    # Pages of the log: a standby's, if one is set (the live stream below follows the
    # primary's NOTIFY, which a standby does not replay, so it stays there).
    async with reading(request.app) as conn:
        if after is not None:
            rows = await q.entries_after(conn, after, limit, **filters.params())
        else:
            rows = list(reversed(await q.entries_before(conn, before, limit, **filters.params())))
    items = [as_seen_by(entry_json(r), principal) for r in rows]
    return web.json_response({
        "items": items,
        # Where to continue: forward from the last item shown, back from the first.
        "next_after": items[-1]["id"] if items else after,
        "prev_before": items[0]["id"] if items else before,
    })


def _resume_point(request: web.Request) -> int | None:
    raw = (request.headers.get("Last-Event-ID") or request.query.get("after") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not raw.isascii() or len(raw) > 19 or int(raw) > MAX_INT:
        raise errors.Invalid("Last-Event-ID must be an entry id",
                             errors={"Last-Event-ID": "must be a whole number from 0 to 2^63-1"})
    return int(raw)


def session_end(principal: Principal, verifier: TokenVerifier, now) -> str | None:
    """Why the session a stream was opened with has ended ('revoked', 'expired'), or None."""
    if principal.token_id in verifier.revoked:
        return "revoked"
    if principal.expires_at is not None and now >= principal.expires_at:
        return "expired"
    return None


def sse_events(rows, principal: Principal) -> str:
    """Server-Sent Events text for log rows as ``principal`` may see them: ``id:`` the
    entry id, ``data:`` its JSON (json.dumps writes no line breaks, so one data line each)."""
    return "".join(f"id: {row['id']}\ndata: {json.dumps(as_seen_by(entry_json(row), principal), ensure_ascii=False)}\n\n"
                   for row in rows)


async def stream_log(request: web.Request) -> web.StreamResponse:
    """GET /v1/log/stream: entries as Server-Sent Events (``id:`` = entry id), from
    ``Last-Event-ID`` (or ``?after=``) on, else from now; a ``: ping`` every 15 s.

    The stream lasts as long as the session it was opened with: when the token expires,
    or is revoked (logout; users revokes the sessions of a user whose roles are removed,
    who is disabled or deleted), an ``event: session-ended`` is sent and the stream ends;
    the reader reconnects with ``Last-Event-ID`` and a fresh token, missing nothing."""
    principal = authorize(request, Right.OCSP_LOG_READ)
    verifier = request.app[VERIFIER]
    filters = parse_filters(request.query, principal)
    last = _resume_point(request)
    pool, feed = request.app[POOL], request.app[LOG_FEED]
    if last is None:
        async with pool.acquire() as conn:
            last = await q.max_id(conn)
    async with sse_response(request, ping_interval=HEARTBEAT) as resp:
        request.app[STREAMS].add(resp)
        try:
            while resp.is_connected():
                ended = session_end(principal, verifier, utc_now())
                if ended:
                    await resp.write(f"event: session-ended\ndata: {json.dumps({'reason': ended})}\n\n".encode())
                    break
                changed = feed.changed()
                async with pool.acquire() as conn:
                    rows = await q.entries_after(conn, last, STREAM_BATCH, **filters.params())
                if rows:
                    # One write per batch, not per entry: at tens of thousands of answers a
                    # second the per-write cost is what would make the stream fall behind.
                    await resp.write(sse_events(rows, principal).encode())
                    last = rows[-1]["id"]
                if len(rows) < STREAM_BATCH:
                    await feed.wait(changed, STREAM_POLL)
        except (ConnectionResetError, asyncio.TimeoutError):
            pass  # the reader went away; it resumes with Last-Event-ID
        finally:
            request.app[STREAMS].discard(resp)
    return resp


async def _stop_streams(app: web.Application) -> None:
    # Graceful shutdown waits for handlers; a stream would otherwise hold it to the timeout.
    for resp in list(app[STREAMS]):
        with contextlib.suppress(Exception):
            resp.stop_streaming()


def add_routes(app: web.Application) -> None:
    """Register the log routes and the hook that ends the streams at shutdown."""
    app[STREAMS] = WeakSet()
    app.router.add_get("/v1/log", list_log)
    app.router.add_get("/v1/log/stream", stream_log)
    app.on_shutdown.append(_stop_streams)


