"""OpenAPI fragment of the responder: the OCSP endpoints (DER, not JSON, but described
so that one document says everything the service answers)."""
from __future__ import annotations

from services.ocsp.responder.codec import MAX_CERTS_PER_REQUEST, MAX_REQUEST_BYTES

_OCSP_RESPONSE = {"content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}}}
_OCSP_ANSWERS = (
    "An RFC 6960 OCSPResponse (DER), HTTP 200 whatever it says. Per CertID (SHA-1, SHA-256, "
    "SHA-384 or SHA-512, answered in the client's hash): registered and active → good; suspended → "
    "revoked, reason certificateHold, at the suspension time; revoked → revoked with its reason; "
    "registered issuer but unknown serial → unknown. Response statuses: `unauthorized` when any "
    "CertID names an issuer that is not registered; `malformedRequest` for anything undecodable, "
    f"a body over {MAX_REQUEST_BYTES} bytes, more than {MAX_CERTS_PER_REQUEST} CertIDs, or a nonce "
    "outside 1..128 octets (RFC 9654); `tryLater` when too many answers wait to be signed or the "
    "HSM holding the responder key fails (counted in siui_ocsp_hsm_errors_total); `unauthorized` "
    "too when the signer's certificate is outside its validity (nothing is signed then). "
    "A nonce is echoed. Signed by the responder certificate (GET /v1/responder.pem), or by the "
    "issuer's delegated signer when every CertID's issuer has the same one; responderID byKey, "
    "the signer certificate included, thisUpdate = now and nextUpdate = now + SIUI_OCSP_VALIDITY "
    "(default 1 hour), never later than the signer certificate's notAfter. During a rotation the "
    "next responder certificate (GET /v1/responder-next.pem) signs every answer from "
    "SIUI_OCSP_RESPONDER_SWITCH_AT on. Single-CertID requests without a nonce are answered with the "
    "certificate's pre-signed answer: signed once per state (and again at half its validity) by one "
    "elected process and served byte for byte by every worker of every responder, so the same state "
    "gives the same bytes and ETag everywhere; it stops being served the moment that certificate's "
    "state changes (a suspension shows within one second) and 5 minutes before its nextUpdate. "
    "Requests with a nonce, and any whose pre-signed answer is missing, are signed live (and cached "
    "by the worker).")

OPENAPI = {"paths": {
        "/": {"post": {
            "x-siui-hot-path": True,
            "summary": "OCSP request (RFC 6960 over HTTP POST)",
            "description": "Send `Content-Type: application/ocsp-request` (other types are tolerated, "
                           "the body is read as DER either way). " + _OCSP_ANSWERS,
            "requestBody": {"required": True, "content": {"application/ocsp-request": {
                "schema": {"type": "string", "format": "binary", "maxLength": MAX_REQUEST_BYTES}}}},
            "responses": {"200": {"description": "OCSPResponse", **_OCSP_RESPONSE}}}},
        "/{request}": {"get": {
            "x-siui-hot-path": True,
            "summary": "OCSP request (RFC 5019 GET)",
            "description": "The path is the base64 of the DER request; `+`, `/` and `=` may be "
                           "percent-encoded or not, and path cleaning that merged a `//` is repaired. "
                           + _OCSP_ANSWERS + " Successful answers carry `Cache-Control: max-age=<SIUI_OCSP_MAX_AGE, "
                           "default 60>, public, no-transform, must-revalidate` (short, because a "
                           "suspension must reach clients fast), `Last-Modified` (producedAt), `Expires` "
                           "(the earlier of nextUpdate and now + max-age) and `ETag` (SHA-256 of the body); "
                           "`If-None-Match` with that ETag answers 304, from any worker or responder "
                           "of the array while the state is unchanged.",
            "parameters": [{"name": "request", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OCSPResponse", **_OCSP_RESPONSE},
                          "304": {"description": "Not modified (ETag matched)"}}}},
        "/v1/responder.pem": {"get": {
            "summary": "The responder certificate that signs answers (trust it directly, or its CA)",
            "description": "After a rotation's switch time, the new one (`Cache-Control: no-cache`).",
            "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {
                "schema": {"type": "string"}}}}}}},
        "/v1/responder-next.pem": {"get": {
            "summary": "The next responder certificate, published ahead of a rotation (extension)",
            "description": "The certificate that signs every answer from the configured switch time "
                           "(SIUI_OCSP_RESPONDER_SWITCH_AT) on: clients that pin the responder "
                           "(`openssl ocsp -VAfile`) add it before the switch. 404 when no rotation is "
                           "pending (none configured, or the switch is past: it is then "
                           "/v1/responder.pem).",
            "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {
                "schema": {"type": "string"}}}},
                          "404": {"description": "No rotation pending", "content": {
                              "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}}
}}
