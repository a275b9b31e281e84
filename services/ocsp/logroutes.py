"""HTTP of the OCSP log: ``GET /v1/log`` (filters, paging) and ``GET /v1/log/stream``
(Server-Sent Events, resumable with ``Last-Event-ID``).

Several processes serve the port and each buffers only its own entries, so the stream
reads from the database: it tails ``id > last sent`` whenever any writer's
``pg_notify('ocsp_log')`` arrives (``LogFeed``, one LISTEN connection per process), and
once a second regardless, in case a notification was missed. Writers commit ids in
order (see ``logstore``), so tailing by id neither skips nor repeats an entry.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from weakref import WeakSet

import asyncpg
from aiohttp import web
from aiohttp_sse import sse_response

from services.ocsp import oplog_queries as q
from services.ocsp.logstore import LOG_FEED
from services.ocsp.oplog import OPERATIONS, STATUSES
from shared import errors
from shared.auth import Principal, Right, authorize, house_filter
from shared.db import POOL
from shared.houses import is_house
from shared.http import OPENAPI, query_int
from shared.logging import get_logger

log = get_logger(__name__)

STREAM_BATCH = 500
STREAM_POLL = 1.0         # seconds: the fallback when a notification is missed
HEARTBEAT = 15.0          # seconds between ": ping" comments, so proxies keep the stream
MAX_LIMIT = 1000


@dataclass(frozen=True)
class LogFilter:
    """What a reader asked to see; ``cas`` is already limited to what they may see."""

    cas: str | None = None
    username: str | None = None
    serial: str | None = None
    status: str | None = None
    operation: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {"cas": self.cas, "username": self.username, "serial": self.serial,
                "status": self.status, "operation": self.operation, "since": self.since,
                "until": self.until}


def parse_serial(text: str) -> str:
    """A certificate serial as typed (decimal, or hex with ``0x``), in the log's decimal form."""
    raw = text.strip().replace(":", "").replace(" ", "")
    try:
        value = int(raw[2:], 16) if raw.lower().startswith("0x") else int(raw, 10)
    except ValueError:
        raise ValueError("must be a decimal number or 0x-hex") from None
    if value < 0:
        raise ValueError("must not be negative")
    return str(value)


def parse_time(text: str) -> datetime:
    """An ISO 8601 moment; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date or time, e.g. 2026-01-31T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_filters(query: Mapping[str, str], principal: Principal) -> LogFilter:
    """The filters of a log query; 422 naming each unacceptable parameter. A county
    reader is held to their own house whatever ``cas`` they send."""
    problems: dict[str, str] = {}

    def text(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value or None

    requested = (text("cas") or "").upper() or None
    if requested and principal.is_national and not is_house(requested):
        problems["cas"] = "is not a house code (AB ... VN, B, OPSNAJ)"
    serial = text("serial")
    if serial:
        try:
            serial = parse_serial(serial)
        except ValueError as exc:
            problems["serial"] = str(exc)
    status, operation = text("status"), text("operation")
    if status and status not in STATUSES:
        problems["status"] = "must be one of " + ", ".join(sorted(STATUSES))
    if operation and operation not in OPERATIONS:
        problems["operation"] = "must be one of " + ", ".join(sorted(OPERATIONS))
    moments: dict[str, datetime | None] = {"from": None, "to": None}
    for name in moments:
        if text(name):
            try:
                moments[name] = parse_time(text(name))
            except ValueError as exc:
                problems[name] = str(exc)
    if moments["from"] and moments["to"] and moments["from"] >= moments["to"]:
        problems["to"] = "must be later than from"
    if problems:
        raise errors.Invalid("some query parameters are not acceptable", errors=problems)
    return LogFilter(cas=house_filter(principal, requested), username=text("username"), serial=serial,
                     status=status, operation=operation, since=moments["from"], until=moments["to"])


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
    async with request.app[POOL].acquire() as conn:
        if after is not None:
            rows = await q.entries_after(conn, after, limit, **filters.params())
        else:
            rows = list(reversed(await q.entries_before(conn, before, limit, **filters.params())))
    items = [entry_json(r) for r in rows]
    return web.json_response({
        "items": items,
        # Where to continue: forward from the last item shown, back from the first.
        "next_after": items[-1]["id"] if items else after,
        "prev_before": items[0]["id"] if items else before,
    })


STREAMS = web.AppKey("ocsp_log_streams", WeakSet)


def _resume_point(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid("Last-Event-ID must be an entry id",
                             errors={"Last-Event-ID": "not a number"}) from None
    if value < 0:
        raise errors.Invalid("Last-Event-ID must be an entry id", errors={"Last-Event-ID": "negative"})
    return value


def sse_events(rows) -> str:
    """Server-Sent Events text for log rows: ``id:`` the entry id, ``data:`` its JSON
    (json.dumps writes no line breaks, so one data line each)."""
    return "".join(f"id: {row['id']}\ndata: {json.dumps(entry_json(row), ensure_ascii=False)}\n\n"
                   for row in rows)


async def stream_log(request: web.Request) -> web.StreamResponse:
    """GET /v1/log/stream: entries as Server-Sent Events (``id:`` = entry id), from
    ``Last-Event-ID`` (or ``?after=``) on, else from now; a ``: ping`` every 15 s."""
    principal = authorize(request, Right.OCSP_LOG_READ)
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
                changed = feed.changed()
                async with pool.acquire() as conn:
                    rows = await q.entries_after(conn, last, STREAM_BATCH, **filters.params())
                if rows:
                    # One write per batch, not per entry: at tens of thousands of answers a
                    # second the per-write cost is what would make the stream fall behind.
                    await resp.write(sse_events(rows).encode())
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
    """Register the log routes, the stream shutdown hook, and their OpenAPI paths."""
    app[STREAMS] = WeakSet()
    app.router.add_get("/v1/log", list_log)
    app.router.add_get("/v1/log/stream", stream_log)
    app.on_shutdown.append(_stop_streams)
    if OPENAPI in app:
        doc = app[OPENAPI]
        components = doc.get("components", {})
        app[OPENAPI] = {**doc, "paths": {**doc.get("paths", {}), **LOG_PATHS},
                        "components": {**components,
                                       "schemas": {**components.get("schemas", {}), **LOG_SCHEMAS}}}


# -- OpenAPI 3.1 of these routes (merged into the service's document by add_routes) --------

_FILTER_PARAMS = [
    {"name": "cas", "in": "query", "schema": {"type": "string"},
     "description": "house code; a county reader always sees only their own house"},
    {"name": "username", "in": "query", "schema": {"type": "string"}, "description": "external user"},
    {"name": "serial", "in": "query", "schema": {"type": "string"},
     "description": "certificate serial, decimal or 0x-hex"},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": sorted(STATUSES)}},
    {"name": "operation", "in": "query", "schema": {"type": "string", "enum": sorted(OPERATIONS)}},
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "entries at or after this moment"},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "entries before this moment"},
]
_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
LOG_SCHEMAS = {
    "LogEntry": {
        "type": "object",
        "required": ["id", "at", "operation", "status", "latency_ms"],
        "properties": {
            "id": {"type": "integer", "description": "increasing; the stream's event id"},
            "at": {"type": "string", "format": "date-time"},
            "operation": {"type": "string", "enum": sorted(OPERATIONS)},
            "status": {"type": "string", "enum": sorted(STATUSES)},
            "latency_ms": {"type": "number"},
            "client": {"type": ["string", "null"], "description": "caller address"},
            "cas": {"type": ["string", "null"]},
            "username": {"type": ["string", "null"]},
            "serial": {"type": ["string", "null"], "description": "decimal"},
            "issuer_id": {"type": ["string", "null"]},
            "certificate_id": {"type": ["string", "null"]},
            "detail": {"type": ["string", "null"], "description": "e.g. a refusal's reason code"},
        },
    },
}
LOG_PATHS = {
    "/v1/log": {"get": {
        "summary": "Log OCSP: OCSP answers and online connects, newest last",
        "security": [{"bearer": []}],
        "parameters": [*_FILTER_PARAMS,
                       {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0},
                        "description": "the page after this id (oldest first); pass next_after"},
                       {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
                        "description": "the newest entries before this id; pass prev_before"},
                       {"name": "limit", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}}],
        "responses": {
            "200": {"description": "a page of entries", "content": {"application/json": {"schema": {
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/LogEntry"}},
                               "next_after": {"type": ["integer", "null"]},
                               "prev_before": {"type": ["integer", "null"]}}}}}},
            "401": _PROBLEM, "403": _PROBLEM, "422": _PROBLEM}}},
    "/v1/log/stream": {"get": {
        "summary": "The same entries live, as Server-Sent Events",
        "description": "Each event: `id:` the entry id, `data:` the LogEntry as JSON. Resumes "
                       "after the `Last-Event-ID` header (or `?after=`); without either, starts "
                       "with entries written from now on. A `: ping` comment every 15 s.",
        "security": [{"bearer": []}],
        "parameters": [*_FILTER_PARAMS,
                       {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                       {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": {"description": "event stream",
                              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                      "401": _PROBLEM, "403": _PROBLEM, "422": _PROBLEM}}},
}
