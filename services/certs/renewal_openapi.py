"""OpenAPI fragment of the renewal hand-over (issue 15), assembled into the certs
document by ``openapi``."""
from __future__ import annotations

from .renewals import REASON_MAX, STATUSES

_TS = {"type": ["string", "null"], "format": "date-time"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_CAS = {"name": "cas", "in": "path", "required": True, "schema": {"type": "string", "examples": ["B"]}}
_SERIAL = {"type": "string", "description": "Decimal"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*codes: int) -> dict:
    return {str(c): {"description": {401: "No or bad token", 403: "Missing right", 404: "No such renewal, or "
                                     "another house's", 409: "Already decided, or the certificate is registered "
                                     "meanwhile", 422: "Invalid fields (see errors)", 400: "Unreadable body"}[c],
                     "content": {"application/problem+json": {"schema": _ref("Problem")}}} for c in codes}


_CERT_SUMMARY = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "serial": _SERIAL, "serial_hex": {"type": "string"},
    "issuer": {"type": "string"}, "subject": {"type": ["string", "null"]}, "not_before": _TS, "not_after": _TS,
    "status": {"type": "string"}}}

SCHEMAS = {
    "Renewal": {"type": "object", "description": "A certificate presented on :8443 with the user's right "
                "credentials, not registered, from a registered issuing authority, naming the holder of a "
                "certificate registered to that user (same subject, or the same serialNumber / "
                "organizationIdentifier). Serial, issuer and validity are read from the certificate itself.",
                "properties": {
                    "id": {"type": "string", "format": "uuid"}, "username": {"type": "string"},
                    "cas": {"type": "string"}, "provider_cui": {"type": "string"}, "serial": _SERIAL,
                    "serial_hex": {"type": "string"}, "issuer": {"type": "string"},
                    "issuer_id": {"type": "string", "format": "uuid"}, "subject": {"type": "string"},
                    "not_before": _TS, "not_after": _TS,
                    "replaces": {"type": "string", "format": "uuid",
                                 "description": "The registered certificate it follows"},
                    "presented_at": _TS, "presented_from": {"type": ["string", "null"]},
                    "last_presented_at": _TS, "status": {"enum": list(STATUSES)}, "decided_at": _TS,
                    "decided_by": {"type": ["string", "null"],
                                   "description": "The operator, or system:auto-renewal"},
                    "reason": {"type": ["string", "null"], "description": "The rejection's reason"},
                    "certificate_id": {"type": ["string", "null"], "format": "uuid",
                                       "description": "The certificate the approval registered"},
                    "replaced": {**_CERT_SUMMARY, "description": "The followed certificate, for comparison"}}},
    "RenewalPage": {"type": "object", "properties": {
        "items": {"type": "array", "items": _ref("Renewal")}, "total": {"type": "integer"},
        "pages": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
    "RenewalRejection": {"type": "object", "required": ["reason"], "additionalProperties": False,
                         "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX,
                                                   "description": "What the provider's desktop shows"}}},
    "RenewalSettings": {"type": "object", "properties": {
        "cas": {"type": "string"}, "auto_approve": {"type": "boolean", "description": "Approve a renewal "
                "presented while the certificate it follows is valid and not suspended; default off"},
        "updated_at": _TS, "updated_by": {"type": "string"}}},
}

PATHS = {
    "/v1/renewals": {"get": {
        "summary": "Renewals of the caller's house (every house, or ?cas=, for CNAS), newest first",
        "parameters": [{"name": "cas", "in": "query", "schema": {"type": "string"}},
                       {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                       {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                       {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
        "responses": {"200": {"description": "A page", **_json(_ref("RenewalPage"))}, **_problems(401, 403, 422)}}},
    "/v1/renewals/{id}": {"parameters": [_ID], "get": {
        "summary": "One renewal", "responses": {"200": {"description": "The renewal", **_json(_ref("Renewal"))},
                                                **_problems(401, 403, 404)}}},
    "/v1/renewals/{id}/approve": {"parameters": [_ID], "post": {
        "summary": "Approve (certificates:write): the new certificate is registered for the user "
                   "(CertificateRegistered); the old one stays valid until it expires or is retired",
        "responses": {"201": {"description": "The new certificate's record", **_json(_ref("Certificate"))},
                      **_problems(401, 403, 404, 409, 422)}}},
    "/v1/renewals/{id}/reject": {"parameters": [_ID], "post": {
        "summary": "Reject with a reason (certificates:write); RenewalRejected tells the online channel, "
                   "whose answer to that certificate becomes renewal_rejected with the reason",
        "requestBody": {"required": True, **_json(_ref("RenewalRejection"))},
        "responses": {"200": {"description": "The renewal, rejected", **_json(_ref("Renewal"))},
                      **_problems(400, 401, 403, 404, 409, 422)}}},
    "/v1/renewal-settings/{cas}": {"parameters": [_CAS], "get": {
        "summary": "The house's automatic approval", "responses": {
            "200": {"description": "The setting", **_json(_ref("RenewalSettings"))}, **_problems(401, 403, 404)}},
        "put": {"summary": "Switch the house's automatic approval (a house administrator: certificates:write "
                           "and users:write)",
                "requestBody": {"required": True, **_json({"type": "object", "required": ["auto_approve"],
                                                           "additionalProperties": False,
                                                           "properties": {"auto_approve": {"type": "boolean"}}})},
                "responses": {"200": {"description": "Now so", **_json(_ref("RenewalSettings"))},
                              **_problems(400, 401, 403, 404, 422)}}},
}

OPENAPI = {"paths": PATHS, "components": {"schemas": SCHEMAS}}
