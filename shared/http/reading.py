"""Reading request input: JSON bodies, their fields, query values. Anything a client
sends that cannot be used is a 400 (unreadable) or 422 (a value breaks a rule) problem."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from shared import errors


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
