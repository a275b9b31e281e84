"""Typed errors raised by domain and data code; ``shared.http`` maps them to RFC 9457.

Domain code never builds HTTP answers: it raises one of these, with a message a person
can act on, and the error middleware turns it into ``application/problem+json``.
"""
from __future__ import annotations


class DomainError(Exception):
    """Base of every error the edge knows how to answer."""

    status = 500
    title = "Internal error"
    type_slug = "internal-error"

    def __init__(self, detail: str, *, errors: dict[str, str] | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra


class Invalid(DomainError):
    """The request is well-formed JSON but its values break a rule (422)."""

    status = 422
    title = "Invalid request"
    type_slug = "invalid"


class BadRequest(DomainError):
    """The request cannot be read at all: not JSON, wrong shape (400)."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class Unauthorized(DomainError):
    status = 401
    title = "Authentication required"
    type_slug = "unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int, **kw):
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency is away or the service is saturated for now (503, with Retry-After)."""

    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kw):
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class BadGateway(DomainError):
    """A server we depend on outside SIUI answered wrongly or not at all (502): for
    example the Trusted List's publisher. The request itself was fine."""

    status = 502
    title = "Bad gateway"
    type_slug = "bad-gateway"
