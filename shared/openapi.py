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
