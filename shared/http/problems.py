"""Errors as RFC 9457 problem documents, mapped once: domain errors (``shared.errors``),
aiohttp's HTTP exceptions and our own bugs all leave as ``application/problem+json``,
with the request id, one canonical log line and the latency metric per request."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import Histogram

from shared import errors
from shared.transient import DATABASE_AWAY, RETRY_AFTER_SECONDS
from shared.logging import get_logger

log = get_logger(__name__)

PROBLEM_CT = "application/problem+json"
REQUEST_SECONDS = Histogram("siui_http_request_seconds", "HTTP request latency",
                            ["service", "route", "method", "status"],
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The service's name, for the metric label and the log line (set by ``base_app``).
SERVICE_NAME = web.AppKey("service_name", str)


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
    if isinstance(exc, (errors.TooManyRequests, errors.Unavailable)):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = exc.extra.get("challenge", "Bearer")
    extra = {k: v for k, v in exc.extra.items() if k != "challenge"}
    return problem(exc.status, exc.title, exc.detail, slug=exc.type_slug, instance=request.path,
                   headers=headers, errors=exc.errors, **extra)


def unavailable(instance: str) -> web.Response:
    """503 with Retry-After: a dependency (the database, another service) is away for now."""
    return problem(503, "Service unavailable", "a service this request needs is unavailable for a "
                   f"moment; try again in {RETRY_AFTER_SECONDS} seconds", slug="unavailable",
                   instance=instance, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


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
        except DATABASE_AWAY:
            return unavailable(request.path)
        except Exception:
            log.exception("request_failed", method=request.method, path=request.path)
            return problem(500, "Internal error", "The request could not be completed; it has been logged",
                           slug="internal-error", instance=request.path)
    # A client's (or proxy's) id is kept to join their logs with ours, if it looks like one:
    # it goes into every log line and back into a header, so nothing else gets through.
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
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
        except DATABASE_AWAY as exc:
            # The database (or a service we call) is away for now: say when to come back.
            log.warning("request_unavailable", method=request.method, path=request.path, error=repr(exc))
            response = unavailable(request.path)
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
    except asyncio.CancelledError:
        status = 499  # the client went away (or the server is stopping): nobody got an answer
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        REQUEST_SECONDS.labels(request.app[SERVICE_NAME], route, request.method, str(status)).observe(elapsed)
        if not request.path.startswith(("/healthz", "/readyz", "/metrics")):
            log.info("request", method=request.method, path=request.path, status=status,
                     ms=round(elapsed * 1000, 2))
        structlog.contextvars.unbind_contextvars("request_id")


