"""OpenAPI pieces every service's document uses: the RFC 9457 problem and the bearer
token scheme. Each service adds the problem fields only it answers."""
from __future__ import annotations

from typing import Any

BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA), from POST :8102/v1/sessions"}


def problem_schema(**extra_properties: dict[str, Any]) -> dict[str, Any]:
    """The problem document (``application/problem+json``) with ``errors`` per field and
    any service-specific members (e.g. ``locked_until``)."""
    return {"type": "object", "description": "RFC 9457 problem document", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "field name (legal_representative.cnp for nested ones) → what is wrong"},
        **extra_properties}}

# A response that is a problem document (refers to components/schemas/Problem).
PROBLEM_RESPONSE = {"description": "RFC 9457 problem", "content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}


def assemble(document: dict[str, Any], *fragments: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI document from the service's own and its features' fragments.

    A fragment has ``paths`` and optionally ``components`` (``schemas``,
    ``securitySchemes``); a path or component defined twice is a mistake, so it raises
    ValueError at start instead of letting one silently win."""
    paths = dict(document.get("paths", {}))
    components = {kind: dict(items) for kind, items in document.get("components", {}).items()}
    for fragment in fragments:
        for path, item in fragment.get("paths", {}).items():
            if path in paths:
                raise ValueError(f"OpenAPI path {path} is defined twice")
            paths[path] = item
        for kind, items in fragment.get("components", {}).items():
            into = components.setdefault(kind, {})
            for name, value in items.items():
                if name in into and into[name] != value:
                    raise ValueError(f"OpenAPI component {kind}/{name} is defined twice, differently")
                into[name] = value
    return {**document, "paths": paths, **({"components": components} if components else {})}


#: What the platform itself may answer, whatever the handler (shared.http): the input
#: layer's 400, a body over the size bound, a dependency away. Documented once here so
#: every operation says so; an operation marks itself ``x-siui-hot-path`` (the OCSP
#: answers, which speak OCSP statuses instead) to be left as it is.
_PLATFORM_STATUSES = {
    "400": "The request cannot be read: not JSON, nested too deep, a number beyond 64 bits, "
           "or text with NUL, control characters or lone surrogates (problem+json)",
    "503": "A service this request needs is away for a moment; Retry-After says when to come back",
}
_CONDITIONAL = {
    "401": ("secured", "No or invalid token"),
    "403": ("secured", "The token lacks the right, or the record is not for this caller's house"),
    "404": ("path", "No such record (another house's records do not exist for a county operator)"),
    "413": ("body", "The body is larger than this service accepts"),
    "422": ("input", "Some values are not acceptable; errors names each"),
}


def with_platform_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the platform's problem responses added to every operation that
    does not already document them (see ``_PLATFORM_STATUSES``)."""
    paths = {}
    for path, item in document.get("paths", {}).items():
        new_item = dict(item)
        shared_params = item.get("parameters", [])
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or operation.get("x-siui-hot-path"):
                continue
            params = [*shared_params, *operation.get("parameters", [])]
            facts = {"secured": bool(operation.get("security")), "path": "{" in path,
                     "body": "requestBody" in operation,
                     "input": "requestBody" in operation or any(p.get("in") in ("query", "header") for p in params)}
            responses = dict(operation.get("responses", {}))
            for status, text in _PLATFORM_STATUSES.items():
                responses.setdefault(status, {**PROBLEM_RESPONSE, "description": text})
            for status, (fact, text) in _CONDITIONAL.items():
                if facts[fact]:
                    responses.setdefault(status, {**PROBLEM_RESPONSE, "description": text})
            new_item[method] = {**operation, "responses": responses}
        paths[path] = new_item
    components = dict(document.get("components", {}))
    components["schemas"] = {"Problem": problem_schema(), **components.get("schemas", {})}
    return {**document, "paths": paths, "components": components}
