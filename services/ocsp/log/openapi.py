"""OpenAPI fragment of the OCSP log: ``GET /v1/log`` and ``GET /v1/log/stream``."""
from __future__ import annotations

from services.ocsp.log.entry import OPERATIONS, STATUSES
from services.ocsp.log.routes import MAX_LIMIT

_FILTER_PARAMS = [
    {"name": "cas", "in": "query", "schema": {"type": "string"},
     "description": "house code; a county reader always sees only their own house"},
    {"name": "username", "in": "query", "schema": {"type": "string"},
     "description": "external user; needs the right ocsp-log:personal (403 without it)"},
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
_SCHEMAS = {
    "LogEntry": {
        "type": "object",
        "required": ["id", "at", "operation", "status", "latency_ms"],
        "properties": {
            "id": {"type": "integer", "description": "increasing; the stream's event id"},
            "at": {"type": "string", "format": "date-time"},
            "operation": {"type": "string", "enum": sorted(OPERATIONS)},
            "status": {"type": "string", "enum": sorted(STATUSES)},
            "latency_ms": {"type": "number"},
            "client": {"type": ["string", "null"],
                       "description": "caller address; without ocsp-log:personal its network only "
                                      "(IPv4 /24, IPv6 /48, e.g. 10.1.2.0/24), or *** when not an address"},
            "cas": {"type": ["string", "null"]},
            "username": {"type": ["string", "null"],
                         "description": "without ocsp-log:personal the CUI's middle is masked: 12****36_CAS-B"},
            "serial": {"type": ["string", "null"], "description": "decimal"},
            "issuer_id": {"type": ["string", "null"]},
            "certificate_id": {"type": ["string", "null"]},
            "detail": {"type": ["string", "null"], "description": "e.g. a refusal's reason code"},
        },
    },
}
_PATHS = {
    "/v1/log": {"get": {
        "summary": "Log OCSP: OCSP answers and online connects, newest last",
        "description": "Readers without the right `ocsp-log:personal` (house viewers) see `client` "
                       "and `username` masked and may not filter by `username`. Kept "
                       "`SIUI_OCSP_LOG_RETENTION_DAYS` (90) days, or a house group's own "
                       "`SIUI_OCSP_LOG_RETENTION_BY_HOUSE`.",
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

OPENAPI = {"paths": _PATHS, "components": {"schemas": _SCHEMAS}}
