"""HTTP pieces every service shares: problem+json errors, request ids and the canonical
log line, the operational endpoints (/healthz, /readyz, /metrics, /openapi.json) and
JSON body reading."""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from shared import errors
from shared.logging import get_logger

log = get_logger(__name__)

PROBLEM_CT = "application/problem+json"
REQUEST_SECONDS = Histogram("siui_http_request_seconds", "HTTP request latency",
                            ["service", "route", "method", "status"],
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

ReadinessCheck = Callable[[web.Application], Awaitable[None]]
SERVICE_NAME = web.AppKey("service_name", str)
READINESS = web.AppKey("readiness", list)
OPENAPI = web.AppKey("openapi", dict)


def problem(status: int, title: str, detail: str, *, slug: str, instance: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """An RFC 9457 problem document."""
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v})
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                        content_type=PROBLEM_CT, headers=headers)


def problem_from(exc: errors.DomainError, request: web.Request) -> web.Response:
    headers = {}
    if isinstance(exc, errors.TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = exc.extra.get("challenge", "Bearer")
    extra = {k: v for k, v in exc.extra.items() if k != "challenge"}
    return problem(exc.status, exc.title, exc.detail, slug=exc.type_slug, instance=request.path,
                   headers=headers, errors=exc.errors, **extra)


HOT_PATH_ATTR = "siui_hot_path"


def hot_path(handler):
    """Mark ``handler`` as a hot path (an OCSP answer): ``request_middleware`` still maps its
    errors, but skips the request id, the per-request log line and the latency histogram,
    which would cost more than the answer. Such a handler keeps its own cheap metrics."""
    setattr(handler, HOT_PATH_ATTR, True)
    return handler


@web.middleware
async def request_middleware(request: web.Request, handler):
    """Request id, one canonical log line, latency metric, and errors mapped once."""
    # aiohttp wraps handlers with functools.update_wrapper, so the mark survives wrapping.
    if getattr(handler, HOT_PATH_ATTR, False):
        try:
            return await handler(request)
        except errors.DomainError as exc:
            return problem_from(exc, request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("request_failed", method=request.method, path=request.path)
            return problem(500, "Internal error", "The request could not be completed; it has been logged",
                           slug="internal-error", instance=request.path)
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except errors.DomainError as exc:
            response = problem_from(exc, request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = problem(exc.status, exc.reason, exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason,
                               slug=exc.reason.lower().replace(" ", "-"), instance=request.path,
                               headers={k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")})
        except Exception:
            log.exception("request_failed", method=request.method, path=request.path)
            response = problem(500, "Internal error",
                               "The request could not be completed; it has been logged as " + request_id,
                               slug="internal-error", instance=request.path)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        REQUEST_SECONDS.labels(request.app[SERVICE_NAME], route, request.method, str(status)).observe(elapsed)
        if not request.path.startswith(("/healthz", "/readyz", "/metrics")):
            log.info("request", method=request.method, path=request.path, status=status,
                     ms=round(elapsed * 1000, 2))
        structlog.contextvars.unbind_contextvars("request_id")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "service": request.app[SERVICE_NAME]})


async def readyz(request: web.Request) -> web.Response:
    failures = {}
    for check in request.app[READINESS]:
        try:
            await check(request.app)
        except Exception as exc:
            failures[check.__name__] = str(exc) or type(exc).__name__
    if failures:
        return problem(503, "Not ready", "; ".join(f"{k}: {v}" for k, v in failures.items()),
                       slug="not-ready", instance=request.path)
    return web.json_response({"status": "ready", "service": request.app[SERVICE_NAME]})


_MULTIPROCESS_REGISTRY: CollectorRegistry | None = None


def _multiprocess_registry() -> CollectorRegistry | None:
    """With PROMETHEUS_MULTIPROC_DIR set (the ocsp workers), a registry that reads every
    worker's files: one scrape lands on one worker, and must still count them all."""
    global _MULTIPROCESS_REGISTRY
    if _MULTIPROCESS_REGISTRY is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        _MULTIPROCESS_REGISTRY = registry
    return _MULTIPROCESS_REGISTRY


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text; across all workers when they share a directory."""
    registry = _multiprocess_registry()
    body = generate_latest(registry) if registry is not None else generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def base_app(service: str, openapi_doc: dict, *, middlewares=(), client_max_size: int = 1024 ** 2,
             **kw) -> web.Application:
    """An application with the shared middleware and the operational endpoints."""
    from shared.audit import audit_middleware, list_audit

    app = web.Application(middlewares=[audit_middleware, request_middleware, *middlewares],
                          client_max_size=client_max_size, **kw)
    app[SERVICE_NAME] = service
    app[READINESS] = []
    app[OPENAPI] = with_platform_paths(openapi_doc)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/v1/audit", list_audit)
    return app


_PLATFORM_PATHS = {
    "/healthz": {"get": {"summary": "Alive", "tags": ["operations"],
                         "responses": {"200": {"description": "The process answers"}}}},
    "/readyz": {"get": {"summary": "Ready: database and broker reachable", "tags": ["operations"],
                        "responses": {"200": {"description": "Ready"},
                                      "503": {"description": "Not ready (problem+json says why)"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["operations"],
                         "responses": {"200": {"description": "Prometheus text format"}}}},
    "/v1/audit": {"get": {
        "summary": "The audit trail of this service: every write an operator attempted",
        "tags": ["audit"], "security": [{"bearer": []}],
        "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": t}}
                       for n, t in (("cas", "string"), ("actor", "string"),
                                    ("after_id", "integer"), ("limit", "integer"))],
        "responses": {"200": {"description": "Entries, oldest first (house admins: their house)"},
                      "401": {"description": "No valid token"},
                      "403": {"description": "The audit:read right is missing"}}}},
}


def with_platform_paths(doc: dict) -> dict:
    """The service's OpenAPI document plus the endpoints every service shares."""
    paths = {**_PLATFORM_PATHS, **doc.get("paths", {})}
    return {**doc, "paths": paths}


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or a 400 problem saying what is wrong with it."""
    if request.content_type not in ("application/json", "application/merge-patch+json", ""):
        raise errors.BadRequest("send the body as application/json")
    raw = await request.read()
    if not raw:
        raise errors.BadRequest("the request body is empty; a JSON object is expected")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object")
    return body


_TYPE_NAMES = {str: "a string", bool: "true or false", int: "a whole number", list: "a list",
               dict: "an object"}


def check_fields(body: dict[str, Any], spec: dict[str, type | tuple[type, ...]], *,
                 required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a body against ``{field: type}``: unknown, missing and mistyped fields → 422."""
    problems: dict[str, str] = {}
    for name in body:
        if name not in spec:
            problems[name] = "unknown field"
    for name in required:
        if body.get(name) in (None, ""):
            problems[name] = "is required"
    for name, expected in spec.items():
        value = body.get(name)
        if value is None or name in problems:
            continue
        kinds = expected if isinstance(expected, tuple) else (expected,)
        # bool is an int in Python; a JSON true is never a number here.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            problems[name] = "must be " + " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
    if problems:
        raise errors.Invalid("some fields are not acceptable", errors=problems)
    return body


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid(f"query parameter {name} must be a whole number", errors={name: "not a number"}) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise errors.Invalid(f"query parameter {name} is out of range", errors={name: f"must be between {minimum} and {maximum}"})
    return value
