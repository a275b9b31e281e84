"""OpenAPI 3.1 description of the ocsp service (served at /openapi.json).

The OCSP responder itself speaks DER, not JSON; it is described here too so that one
document says everything the service answers. The log routes add their own, more
detailed paths when they are registered (``services.ocsp.logroutes``).
"""
from __future__ import annotations

from shared.openapi import BEARER, problem_schema

from .codec import MAX_CERTS_PER_REQUEST, MAX_REQUEST_BYTES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _problems(*codes: int) -> dict:
    text = {400: "Unreadable body", 401: "No or bad token", 403: "Missing right, or not CNAS",
            404: "No such issuing authority or signer", 422: "Invalid fields (see errors)"}
    return {str(c): {"description": text[c], "content": {"application/problem+json": {"schema": _ref("Problem")}}}
            for c in codes}


_OCSP_RESPONSE = {"content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}}}
_OCSP_ANSWERS = (
    "An RFC 6960 OCSPResponse (DER), HTTP 200 whatever it says. Per CertID (SHA-1, SHA-256, "
    "SHA-384 or SHA-512, answered in the client's hash): registered and active → good; suspended → "
    "revoked, reason certificateHold, at the suspension time; revoked → revoked with its reason; "
    "registered issuer but unknown serial → unknown. Response statuses: `unauthorized` when any "
    "CertID names an issuer that is not registered; `malformedRequest` for anything undecodable, "
    f"a body over {MAX_REQUEST_BYTES} bytes, more than {MAX_CERTS_PER_REQUEST} CertIDs, or a nonce "
    "outside 1..128 octets (RFC 9654); `tryLater` when too many answers wait to be signed. "
    "A nonce is echoed. Signed by the responder certificate (GET /v1/responder.pem), or by the "
    "issuer's delegated signer when every CertID's issuer has the same one; responderID byKey, "
    "the signer certificate included, thisUpdate = now and nextUpdate = now + SIUI_OCSP_VALIDITY "
    "(default 1 hour). Single-CertID requests without a nonce are answered from a cache of signed "
    "responses, dropped the moment that certificate's state changes (a suspension shows within "
    "one second).")
_LOG_ENTRY = {"type": "object", "properties": {
    "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
    "operation": {"enum": ["ocsp", "connect"]},
    "status": {"enum": ["good", "revoked", "unknown", "unauthorized", "malformed", "try_later", "online",
                        "offline"]},
    "latency_ms": {"type": "number"}, "client": {"type": ["string", "null"]},
    "cas": {"type": ["string", "null"]}, "username": {"type": ["string", "null"]},
    "serial": {"type": ["string", "null"]}, "issuer_id": {"type": ["string", "null"]},
    "certificate_id": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]}}}
_ISSUER_ID = {"name": "issuer_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}

OPENAPI_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: ocsp", "version": "1",
             "description": "OCSP responder (RFC 6960 / RFC 5019), delegated signers, the OCSP log and "
                            "its live stream (:8104), and the providers' online channel (:8443)."},
    "servers": [{"url": "http://127.0.0.1:8104"}],
    "components": {
        "securitySchemes": {"bearer": BEARER,
                            "basic": {"type": "http", "scheme": "basic"}},
        "schemas": {
            "Problem": problem_schema(),
            "SignerUpload": {"type": "object", "required": ["certificate_pem", "private_key_pem"],
                             "additionalProperties": False, "properties": {
                "certificate_pem": {"type": "string", "description": "The delegated responder certificate: "
                                    "issued by this issuer, EKU OCSPSigning (ocsp-nocheck recommended)"},
                "private_key_pem": {"type": "string", "description": "Its unencrypted PKCS#8 or traditional "
                                    "PEM key (RSA or EC P-256/384/521); kept AES-256-GCM encrypted, never returned"}}},
            "Signer": {"type": "object", "properties": {
                "issuer_id": {"type": "string", "format": "uuid"}, "subject": {"type": "string"},
                "serial": {"type": "string", "description": "decimal"},
                "not_before": {"type": "string", "format": "date-time"},
                "not_after": {"type": "string", "format": "date-time"},
                "sha256_fingerprint": {"type": "string"}, "ocsp_nocheck": {"type": "boolean"},
                "certificate_pem": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"}, "created_by": {"type": "string"}}},
            "LogEntry": _LOG_ENTRY,
        },
    },
    "paths": {
        "/": {"post": {
            "summary": "OCSP request (RFC 6960 over HTTP POST)",
            "description": "Send `Content-Type: application/ocsp-request` (other types are tolerated, "
                           "the body is read as DER either way). " + _OCSP_ANSWERS,
            "requestBody": {"required": True, "content": {"application/ocsp-request": {
                "schema": {"type": "string", "format": "binary", "maxLength": MAX_REQUEST_BYTES}}}},
            "responses": {"200": {"description": "OCSPResponse", **_OCSP_RESPONSE}}}},
        "/{request}": {"get": {
            "summary": "OCSP request (RFC 5019 GET)",
            "description": "The path is the base64 of the DER request; `+`, `/` and `=` may be "
                           "percent-encoded or not, and path cleaning that merged a `//` is repaired. "
                           + _OCSP_ANSWERS + " Successful answers carry `Cache-Control: max-age=<SIUI_OCSP_MAX_AGE, "
                           "default 60>, public, no-transform, must-revalidate` (short, because a "
                           "suspension must reach clients fast), `Last-Modified` (producedAt), `Expires` "
                           "(the earlier of nextUpdate and now + max-age) and `ETag` (SHA-256 of the body); "
                           "`If-None-Match` with that ETag answers 304.",
            "parameters": [{"name": "request", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OCSPResponse", **_OCSP_RESPONSE},
                          "304": {"description": "Not modified (ETag matched)"}}}},
        "/v1/responder.pem": {"get": {
            "summary": "The responder certificate that signs answers (trust it directly, or its CA)",
            "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {
                "schema": {"type": "string"}}}}}}},
        "/v1/issuers/{issuer_id}/signer": {
            "parameters": [_ISSUER_ID],
            "put": {"summary": "Delegate the issuer's OCSP signing to this certificate and key (CNAS only)",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("SignerUpload")}}},
                    "responses": {"200": {"description": "Stored; answers for this issuer are now signed with it",
                                          "content": {"application/json": {"schema": _ref("Signer")}}},
                                  **_problems(400, 401, 403, 404, 422)}},
            "get": {"summary": "The issuer's delegated signer certificate (never the key)",
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "The signer",
                                          "content": {"application/json": {"schema": _ref("Signer")}}},
                                  **_problems(401, 403, 404)}},
            "delete": {"summary": "Stop delegated signing for the issuer (CNAS only); the key is erased",
                       "security": [{"bearer": []}],
                       "responses": {"204": {"description": "Removed"}, **_problems(401, 403, 404)}}},
        "/v1/log": {"get": {
            "summary": "Log OCSP: every OCSP answer and online connect, newest last",
            "description": "A county reader sees only their house. Filters: cas, username, serial, "
                           "status, operation, time range; paged with after/limit.",
            "security": [{"bearer": []}],
            "parameters": [{"name": n, "in": "query", "schema": {"type": t}} for n, t in (
                ("cas", "string"), ("username", "string"), ("serial", "string"), ("status", "string"),
                ("after", "integer"), ("limit", "integer"))],
            "responses": {"200": {"description": "Entries", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"items": {"type": "array", "items": _ref("LogEntry")}}}}}},
                **_problems(401, 403, 422)}}},
        "/v1/log/stream": {"get": {
            "summary": "The same entries live, as Server-Sent Events; resumable with Last-Event-ID",
            "security": [{"bearer": []}],
            "parameters": [{"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "text/event-stream; `id:` entry id, `data:` LogEntry JSON",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          **_problems(401, 403)}}},
        "/v1/online/connect": {"post": {
            "summary": "The provider's Conectare online (:8443, mutual TLS)",
            "description": "Served on :8443 only. The desktop presents the provider's certificate (TLS "
                           "client auth) and HTTP Basic `<CUI>_CAS-<cas>:<licence serial>`. 200 only when "
                           "the certificate is registered to that external user, not suspended or revoked, "
                           "within its validity, and the serial is the provider's current key; otherwise "
                           "401 with a reason a person understands. Every connect is an OCSP log entry.",
            "servers": [{"url": "https://127.0.0.1:8443"}],
            "security": [{"basic": []}],
            "responses": {
                "200": {"description": "Online", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "semaphore": {"const": "online"}, "session_token": {"type": "string"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "username": {"type": "string"}, "cas": {"type": "string"}}}}}},
                "401": {"description": "Offline, with the reason", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"semaphore": {"const": "offline"},
                                                     "reason": {"type": "string"}}}}}}}}},
    },
}
