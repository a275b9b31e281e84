"""The endpoints every service answers for operations (``/healthz``, ``/readyz``,
``/metrics``, ``/openapi.json``) and ``base_app``, the application they are part of."""
from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.http.problems import SERVICE_NAME, problem, request_middleware
from shared.http.reading import input_middleware
from shared.openapi import assemble, with_platform_responses
from shared.supervisor import SUPERVISOR_RESTARTS, restarts

ReadinessCheck = Callable[[web.Application], Awaitable[None]]
READINESS = web.AppKey("readiness", list)
#: Checks of what the service works without for a while (ocsp answers from memory while
#: its database or broker is away): /readyz stays 200, ``"status": "degraded"``, and says
#: which are failing. READINESS holds what it cannot work without (503 while failing).
DEGRADED_BY = web.AppKey("degraded_by", list)
OPENAPI = web.AppKey("openapi", dict)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "service": request.app[SERVICE_NAME]})


async def _failing(app: web.Application, checks) -> dict[str, str]:
    failures = {}
    for check in checks:
        try:
            await check(app)
        except Exception as exc:
            failures[check.__name__] = str(exc) or type(exc).__name__
    return failures


async def readyz(request: web.Request) -> web.Response:
    failures = await _failing(request.app, request.app[READINESS])
    if failures:
        return problem(503, "Not ready", "; ".join(f"{k}: {v}" for k, v in failures.items()),
                       slug="not-ready", instance=request.path)
    degraded = await _failing(request.app, request.app[DEGRADED_BY])
    body = {"status": "degraded" if degraded else "ready", "service": request.app[SERVICE_NAME]}
    if degraded:
        body["degraded"] = degraded
    return web.json_response(body)


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


#: The bearer token /metrics asks for (read at start by ``metrics_token_ctx``).
METRICS_TOKEN = web.AppKey("metrics_token", bytes)


def metrics_token_ctx(path: Path):
    """cleanup_ctx: read the metrics token (deploy/devpki writes one; Prometheus sends it
    with ``authorization: credentials_file``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        token = path.read_bytes().strip()
        if len(token) < 16:
            raise ValueError(f"{path}: the metrics token must be at least 16 characters")
        app[METRICS_TOKEN] = token
        yield

    return ctx


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text; across all workers when they share a directory.
    Only with ``Authorization: Bearer <metrics token>``: the counters name houses and
    show each one's traffic, which is not for everyone who can reach the port."""
    expected = request.app.get(METRICS_TOKEN)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if expected is None or scheme.lower() != "bearer" or \
            not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected):
        return problem(401, "Authentication required", "send Authorization: Bearer <metrics token>",
                       slug="unauthorized", instance=request.path, headers={"WWW-Authenticate": "Bearer"})
    registry = _multiprocess_registry()
    body = generate_latest(registry) if registry is not None else generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def _complete_document(app: web.Application) -> None:
    # At start, when every feature and add_platform have added their paths: the problem
    # responses the platform may give, documented on every operation.
    app[OPENAPI] = with_platform_responses(app[OPENAPI])


def base_app(service: str, openapi_doc: dict, *, middlewares=(), client_max_size: int = 1024 ** 2,
             **kw) -> web.Application:
    """An application with the error middleware and the operational endpoints; the
    service adds its own routes (and ``shared.service.add_platform`` its database,
    broker and audit trail)."""
    app = web.Application(middlewares=[request_middleware, input_middleware, *middlewares],
                          client_max_size=client_max_size, **kw)
    app[SERVICE_NAME] = service
    app[READINESS] = []
    app[DEGRADED_BY] = []
    SUPERVISOR_RESTARTS.set(restarts())
    app[OPENAPI] = assemble(openapi_doc, OPERATIONAL_OPENAPI)
    app.on_startup.append(_complete_document)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app


OPERATIONAL_OPENAPI = {"paths": {
    "/healthz": {"get": {"summary": "Alive", "tags": ["operations"],
                         "responses": {"200": {"description": "The process answers"}}}},
    "/readyz": {"get": {"summary": "Ready: what the service needs is reachable", "tags": ["operations"],
                        "responses": {"200": {"description": "Ready; or degraded (still serving, from "
                                                              "memory: \"status\": \"degraded\" names what is away)"},
                                      "503": {"description": "Not ready (problem+json says why)"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (Authorization: Bearer <metrics token>)",
                         "tags": ["operations"], "security": [{"metrics": []}],
                         "responses": {"200": {"description": "Prometheus text format"},
                                       "401": {"description": "No or wrong metrics token"}}}},
    "/openapi.json": {"get": {"summary": "This document (OpenAPI 3.1)", "tags": ["operations"],
                              "responses": {"200": {"description": "JSON"}}}},
}}
