"""Calling the services' JSON APIs with the operator's token.

One ``aiohttp.ClientSession`` for the whole console (a ``cleanup_ctx`` resource); an
``Api`` is a light per-request view of it carrying the operator's token and the request
id, so that a clerk's click can be followed through every service's log. A problem
answer becomes :class:`ApiError` (status, detail, field errors); a service that does not
answer becomes an ``ApiError`` 503, never an exception the clerk sees as a crash.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from services.console.config import Config

HTTP = web.AppKey("console_http", aiohttp.ClientSession)
SERVICE_NAMES = {"keygen": "furnizori si chei", "users": "utilizatori", "certs": "certificate",
                 "ocsp": "OCSP"}


class ApiError(Exception):
    """A service refused (4xx) or failed (5xx); ``errors`` are its field errors."""

    def __init__(self, status: int, detail: str, *, errors: dict[str, str] | None = None,
                 service: str = "", body: dict | None = None):
        super().__init__(f"{service} {status}: {detail}")
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.service = service
        self.body = body or {}


def http_ctx(config: Config):
    """cleanup_ctx: the console's one client session towards the services."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=config.api_timeout, connect=5)
        # No cookie jar: the services authenticate by token, and a jar shared by every
        # operator's requests must never carry one operator's state into another's.
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                         raise_for_status=False) as session:
            app[HTTP] = session
            yield

    return ctx


@dataclass(frozen=True)
class Api:
    """The services as seen by one operator (``token`` may be empty: log in, health)."""

    http: aiohttp.ClientSession
    urls: dict[str, str]
    token: str = ""
    request_id: str = ""
    #: The browser's address. The services count login attempts and activations, and
    #: audit every write, by client address; they believe X-Forwarded-For only from the
    #: console's own address (their SIUI_TRUSTED_PROXIES). Without it every clerk would
    #: share the console's address: one stranger's guesses would lock an account for
    #: all, and the audit trail would name the console instead of the clerk's machine.
    client: str = ""

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.request_id:
            headers["X-Request-Id"] = self.request_id
        if self.client:
            headers["X-Forwarded-For"] = self.client
        return headers

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    async def call(self, method: str, service: str, path: str, *, params: dict | None = None,
                   body: Any = None, accept: str = "application/json",
                   document: tuple[bytes, str] | None = None) -> tuple[bytes, dict[str, str]]:
        """The answer's body and headers for a 2xx; ApiError otherwise. ``body`` is sent as
        JSON; ``document`` (bytes, content type) as it is, for a file such as an XML list."""
        clean = {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}
        headers = self.headers(accept)
        raw_body = None
        if document is not None:
            raw_body, headers["Content-Type"] = document
        try:
            async with self.http.request(method, self.url(service, path), params=clean,
                                         json=body, data=raw_body, headers=headers) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise problem_error(service, response.status, raw)
                return raw, dict(response.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(503, f"the {service} service does not answer ({type(exc).__name__})",
                           service=service) from None

    async def json(self, method: str, service: str, path: str, **kw) -> dict:
        raw, _ = await self.call(method, service, path, **kw)
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(502, f"the {service} service answered something that is not JSON",
                           service=service) from None

    async def get(self, service: str, path: str, **params) -> dict:
        return await self.json("GET", service, path, params=params)

    async def post(self, service: str, path: str, body: Any) -> dict:
        return await self.json("POST", service, path, body=body)

    async def patch(self, service: str, path: str, body: Any) -> dict:
        return await self.json("PATCH", service, path, body=body)

    async def put(self, service: str, path: str, body: Any) -> dict:
        return await self.json("PUT", service, path, body=body)

    async def delete(self, service: str, path: str) -> dict:
        return await self.json("DELETE", service, path)


def problem_error(service: str, status: int, raw: bytes) -> ApiError:
    """An ApiError from a problem+json answer (or from whatever else came back)."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    return ApiError(status, detail, errors={str(k): str(v) for k, v in errors.items()},
                    service=service, body=body)
