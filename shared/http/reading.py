"""Reading request input: JSON bodies, their fields, query values. Anything a client
sends that cannot be used is a 400 (unreadable) or 422 (a value breaks a rule) problem."""
from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from shared import errors
from shared.http.problems import HOT_PATH_ATTR
from shared.validation import MAX_INT, MAX_JSON_DEPTH, json_depth, json_problems, parse_json_int, text_problem


_WHOLE = re.compile(r"-?[0-9]{1,19}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body: 400 when it cannot be read (not JSON, nested deeper
    than ``MAX_JSON_DEPTH``, a number beyond 64 bits, NaN), 422 naming each field whose
    text cannot be stored (NUL, control characters, lone surrogates)."""
    if request.content_type not in ("application/json", "application/merge-patch+json", ""):
        raise errors.BadRequest("send the body as application/json")
    raw = await request.read()  # bounded by the application's client_max_size
    if not raw:
        raise errors.BadRequest("the request body is empty; a JSON object is expected")
    if json_depth(raw) is None:
        raise errors.BadRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw, parse_int=parse_json_int, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.BadRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object")
    problems = json_problems(body)
    if problems:
        raise errors.Invalid("some fields hold text that cannot be accepted", errors=problems)
    return body


@web.middleware
async def input_middleware(request: web.Request, handler):
    """Query parameters and path segments hold text, not NUL or control characters or
    lone surrogates; one place refuses them (400) before any handler or query sees them.
    (Hot paths, the OCSP answers, judge their own input: garbage there is an OCSP error.)"""
    if getattr(handler, HOT_PATH_ATTR, False):
        return await handler(request)
    problems = {}
    for name, value in request.query.items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            problems[name[:40] if not text_problem(name) else "(query)"] = problem
    for name, value in request.match_info.items():
        problem = text_problem(value)
        if problem:
            problems[name] = problem
    if problems:
        raise errors.BadRequest("the address holds text that cannot be accepted", errors=problems)
    return await handler(request)


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


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 1,
              maximum: int | None = None) -> int:
    """A whole-number query parameter within [minimum, maximum] (at most ``MAX_INT``), or 422."""
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    maximum = MAX_INT if maximum is None else maximum
    if not _WHOLE.fullmatch(raw):
        raise errors.Invalid(f"query parameter {name} must be a whole number",
                             errors={name: "not a number (or too long)"})
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid(f"query parameter {name} must be a whole number", errors={name: "not a number"}) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise errors.Invalid(f"query parameter {name} is out of range", errors={name: f"must be between {minimum} and {maximum}"})
    return value
