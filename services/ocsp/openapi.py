"""The ocsp service's OpenAPI 3.1 document (served at /openapi.json), assembled once from
its features' fragments."""
from __future__ import annotations

from services.ocsp import log, online, responder, state
from shared.openapi import BEARER, assemble, problem_schema

OPENAPI_DOC = assemble({
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: ocsp", "version": "1",
             "description": "OCSP responder (RFC 6960 / RFC 5019), delegated signers, the OCSP log and "
                            "its live stream (:8104), and the providers' online channel (:8443)."},
    "servers": [{"url": "http://127.0.0.1:8104"}],
    "components": {
        "securitySchemes": {"bearer": BEARER, "basic": {"type": "http", "scheme": "basic"}},
        "schemas": {"Problem": problem_schema()},
    },
}, responder.OPENAPI, state.OPENAPI, log.OPENAPI, online.OPENAPI)
