"""OpenAPI 3.1 description of the certs service's JSON endpoints (served at /openapi.json)."""
from __future__ import annotations

from shared.openapi import BEARER, assemble, problem_schema

from .certificates import REVOCATION_REASONS, STATUSES
from .crl import MAX_URL_LENGTH, MAX_URLS
from .renewal_openapi import OPENAPI as RENEWALS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*codes: int) -> dict:
    text = {400: "Unreadable body", 401: "No or bad token", 403: "Missing right (or not CNAS)",
            404: "No such record, or another house's", 409: "Conflict", 422: "Invalid fields (see errors)",
            502: "A server outside SIUI (the Trusted List's publisher) did not answer as it should"}
    return {str(c): {"description": text[c], "content": {"application/problem+json": {"schema": _ref("Problem")}}}
            for c in codes}


_TS = {"type": ["string", "null"], "format": "date-time"}
_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_SERIAL = {"type": "string", "description": "Decimal (serials reach 20 octets, beyond JSON's safe integers)"}

_SCHEMAS = {
    "Problem": problem_schema(),
    "Issuer": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        "subject_dn": {"type": "string", "examples": [
            "C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"],
            "description": "RDNs in encoded order, RFC 4514 names and escapes; other attributes by OID "
                           "(2.5.4.97=VATRO-...)"},
        "serial": _SERIAL, "serial_hex": {"type": "string"},
        "not_before": _TS, "not_after": _TS,
        "hashes": {"type": "object", "description": "What OCSP CertIDs carry: hex hashes of the subject "
                   "DER (name) and of the subjectPublicKey bits (key)",
                   "properties": {alg: {"type": "object", "properties": {"name": {"type": "string"},
                                                                          "key": {"type": "string"}}}
                                  for alg in ("sha1", "sha256")}},
        "certificate_url": {"type": "string"}, "created_at": _TS, "created_by": {"type": "string"},
        "updated_at": _TS, "updated_by": {"type": ["string", "null"]},
        "crl_urls": {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": MAX_URLS,
                     "description": "CRL URLs set by CNAS; the registered certificates' CRL Distribution "
                                    "Points are used after them"},
        "status_checked_at": {**_TS, "description": "Last fetch of the authority's status, whatever its result"},
        "crl_url": {"type": ["string", "null"], "description": "Where the newest verified CRL came from"},
        "crl_this_update": {**_TS, "description": "thisUpdate of the newest verified CRL"},
        "crl_next_update": {**_TS, "description": "nextUpdate of the newest verified CRL; past it, the "
                                                 "authority's \"good\" is no longer vouched for (alerted)"},
        "status_error": {"type": ["string", "null"],
                         "description": "Why the last fetch gave no usable CRL (null after a success)"},
        "trusted_list": {"type": ["object", "null"], "description": "What the national Trusted List says of "
                         "this authority (null: registered by hand and never listed); withdrawn_at set when a "
                         "later list no longer grants it (flagged, not deleted)",
                         "properties": {"tsp_name": {"type": "string"}, "service_name": {"type": "string"},
                                        "status": {"type": "string"}, "imported_at": _TS, "withdrawn_at": _TS}}}},
    "ListedService": {"type": "object", "properties": {
        "issuer_id": {"type": "string", "format": "uuid", "description": "For changed ones"},
        "tsp_name": {"type": "string"}, "service_name": {"type": "string"}, "status": {"type": "string"},
        "status_since": _TS, "subject_dn": {"type": "string"}, "certificate_pem": {"type": "string"},
        "changes": {"type": "array", "items": {"enum": ["certificate", "listed", "granted again", "names"]}}}},
    "TrustedListDiff": {"type": "object", "properties": {
        "import_id": {"type": "string", "format": "uuid"}, "sequence_number": {"type": "integer"},
        "territory": {"type": "string"}, "issued_at": _TS, "next_update": _TS, "sha256": {"type": "string"},
        "new": {"type": "array", "items": _ref("ListedService"),
                "description": "Granted CA/QC services not registered yet"},
        "changed": {"type": "array", "items": _ref("ListedService")},
        "withdrawn": {"type": "array", "items": {"type": "object", "properties": {
            "issuer_id": {"type": "string"}, "subject_dn": {"type": "string"}, "reason": {"type": "string"}}}},
        "unchanged": {"type": "integer"}}},
    "TrustedListStatus": {"type": "object", "properties": {
        "source_url": {"type": ["string", "null"], "description": "SIUI_CERTS_TL_URL; null: upload only"},
        "last_applied": {"type": ["object", "null"], "properties": {
            "import_id": {"type": "string", "format": "uuid"}, "sequence_number": {"type": "integer"},
            "territory": {"type": "string"}, "issued_at": _TS, "next_update": _TS, "sha256": {"type": "string"},
            "uploaded_at": _TS, "uploaded_by": {"type": "string"}, "applied_at": _TS,
            "applied_by": {"type": "string"}}}}},
    "TrustedListResult": {"type": "object", "properties": {
        "import_id": {"type": "string", "format": "uuid"}, "sequence_number": {"type": "integer"},
        **{k: {"type": "array", "items": {"type": "object", "properties": {
            "issuer_id": {"type": "string"}, "subject_dn": {"type": "string"}}}} for k in ("added", "updated", "flagged")},
        "unchanged": {"type": "integer"}}},
    "IssuerPatch": {"type": "object", "required": ["crl_urls"], "additionalProperties": False, "properties": {
        "crl_urls": {"type": "array", "maxItems": MAX_URLS, "items": {
            "type": "string", "maxLength": MAX_URL_LENGTH, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
            "description": "http or https only, no credentials in the URL"}}},
    "StatusRefresh": {"type": "object", "properties": {
        "issuer_id": {"type": "string", "format": "uuid"},
        "sources": {"type": "array", "items": {"type": "string"}, "description": "The URLs that will be tried, in order"},
        "status_url": {"type": "string"}}},
    "IssuerDetail": {"allOf": [_ref("Issuer"), {"type": "object", "properties": {
        "certificate_pem": {"type": "string"}}}]},
    "IssuerUpload": {"type": "object", "required": ["certificate_pem"], "additionalProperties": False,
                     "properties": {"certificate_pem": {"type": "string",
                                                        "description": "PEM, or base64 of the DER"}}},
    "Certificate": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "username": {"type": "string", "examples": ["12433636_CAS-B"]},
        "cas": {"type": "string"}, "provider_cui": {"type": "string"}, "provider_code": {"type": "string"},
        "provider_name": {"type": "string"}, "schema": {"type": "string", "examples": ["SIUIB"]},
        "org_unit": {"type": "string", "examples": ["CAS-B"]}, "serial": _SERIAL,
        "serial_hex": {"type": "string"}, "issuer": {"type": "string", "description": "Issuer DN"},
        "issuer_id": {"type": "string", "format": "uuid"},
        "subject": {"type": ["string", "null"], "description": "Known when the certificate was uploaded"},
        "not_before": _TS, "not_after": _TS, "status": {"enum": list(STATUSES)},
        "suspended": {"type": "boolean"}, "suspended_at": _TS, "revoked_at": _TS,
        "revocation_reason": {"type": ["string", "null"]}, "last_used_at": _TS,
        "created_at": _TS, "created_by": {"type": "string"}, "updated_at": _TS,
        "issuer_status": {"enum": ["good", "revoked", "unknown"], "description":
                          "What the issuing authority says (its CRL), beside SIUI's own status: revoked once a "
                          "verified CRL lists it; good when the newest verified CRL, read after the registration "
                          "and not past its nextUpdate, does not; unknown otherwise"},
        "issuer_revoked_at": {**_TS, "description": "The issuer's revocation time (from its CRL)"},
        "issuer_revocation_reason": {"type": ["string", "null"], "description": "The issuer's CRLReason "
                                     "(key_compromise, ...), null when its CRL gives none"},
        "issuer_checked_at": {**_TS, "description": "When the issuer's newest CRL was read (verificat la)"}}},
    "CertificateDetail": {"allOf": [_ref("Certificate"), {"type": "object", "properties": {
        "certificate_pem": {"type": ["string", "null"]}, "issuer_certificate_url": {"type": "string"},
        "history": {"type": "array", "items": {"type": "object", "properties": {
            "at": _TS, "actor": {"type": "string"},
            "action": {"enum": ["registered", "suspended", "reinstated", "revoked", "revoked_by_issuer"]},
            "reason": {"type": ["string", "null"]}, "comment": {"type": ["string", "null"]}}}}}}]},
    "CertificatePage": {"type": "object", "properties": {
        "items": {"type": "array", "items": _ref("Certificate")}, "total": {"type": "integer"},
        "pages": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
    "CertificateRegistration": {"type": "object", "required": ["username"], "additionalProperties": False,
        "description": "Either certificate_pem (serial, issuer, subject and validity are read from it and its "
                       "signature is checked against the registered issuer), or serial with issuer_id "
                       "(or issuer, the DN in any order or spacing).",
        "properties": {
            "username": {"type": "string", "description": "An external user of the caller's house"},
            "provider": {"type": "string", "description": "Optional: the provider code; must be the user's"},
            "serial": {"type": ["string", "integer"], "description": "Decimal, or hex with 0x", "examples": ["12", "0x0C"]},
            "issuer_id": {"type": "string", "format": "uuid"},
            "issuer": {"type": "string", "description": "The issuer DN instead of issuer_id"},
            "certificate_pem": {"type": "string", "description": "PEM, or base64 of the DER"}}},
    "Suspension": {"type": "object", "required": ["suspended"], "additionalProperties": False, "properties": {
        "suspended": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 500}}},
    "Revocation": {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
        "reason": {"enum": sorted(set(REVOCATION_REASONS) | set(REVOCATION_REASONS.values())),
                   "description": "RFC 5280 CRLReason (keyCompromise or key_compromise); certificateHold is a suspension"},
        "comment": {"type": "string", "maxLength": 500}}},
}

_WINDOW_COUNTS = {"type": "object", "required": ["within_30", "within_15", "within_7"], "properties": {
    name: {"type": "integer", "minimum": 0} for name in ("within_30", "within_15", "within_7")}}
_SCHEMAS["ExpiringCounts"] = {"type": "object", "required": ["as_of", "windows", "items", "total"], "properties": {
    "as_of": _TS, "windows": {"type": "array", "items": {"type": "integer"}, "examples": [[30, 15, 7]]},
    "items": {"type": "array", "items": {"allOf": [_WINDOW_COUNTS, {"type": "object", "required": ["cas"],
                                                                     "properties": {"cas": {"type": "string"}}}]}},
    "total": _WINDOW_COUNTS}}

_CERT_QUERY = [{"name": n, "in": "query", "schema": s, "description": d} for n, s, d in (
    ("cas", {"type": "string"}, "House (CNAS only; a county sees its own whatever it asks)"),
    ("username", {"type": "string"}, "External user name, exact"),
    ("provider", {"type": "string"}, "Provider code or CUI"),
    ("suspended", {"type": "boolean"}, "true / false"),
    ("status", {"enum": list(STATUSES)}, ""),
    ("issuer_id", {"type": "string", "format": "uuid"}, ""),
    ("expiring_within_days", {"type": "integer", "minimum": 0, "maximum": 3650},
     "Only not revoked certificates whose validity ends within N days from now, soonest first"),
    ("page", {"type": "integer", "minimum": 1, "default": 1}, ""),
    ("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, ""))]

OPENAPI_DOC = assemble({
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: certs", "version": "1.0.0",
             "description": "Issuing authorities (Autoritati emitente) and user certificates (Certificate "
                            "utilizatori): registration, suspension (Suspendat), revocation, last use, expiry. "
                            "Every change is published as an event (certs.*) for the OCSP service."},
    "components": {"schemas": _SCHEMAS,
                   "securitySchemes": {"bearer": BEARER}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/issuers": {
            "get": {"summary": "List issuing authorities (every house)", "parameters": [
                {"name": "dn", "in": "query", "schema": {"type": "string"},
                 "description": "Only the authority with this DN, however ordered, spaced or cased"}],
                "responses": {"200": {"description": "Authorities", **_json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Issuer")}, "total": {"type": "integer"}}})},
                    **_problems(401, 403, 422)}},
            "post": {"summary": "Register an issuing authority from its CA certificate (CNAS only)",
                     "requestBody": {"required": True, **_json(_ref("IssuerUpload"))},
                     "responses": {"201": {"description": "Registered; IssuerRegistered published",
                                           **_json(_ref("IssuerDetail"))}, **_problems(400, 401, 403, 409, 422)}}},
        "/v1/issuers/{id}": {
            "parameters": [_ID_PARAM],
            "get": {"summary": "One issuing authority", "responses": {
                "200": {"description": "The authority", **_json(_ref("IssuerDetail"))}, **_problems(401, 403, 404)}},
            "put": {"summary": "Replace the CA certificate (renewal; same DN) (CNAS only)",
                    "requestBody": {"required": True, **_json(_ref("IssuerUpload"))},
                    "responses": {"200": {"description": "Replaced; IssuerUpdated published",
                                          **_json(_ref("IssuerDetail"))}, **_problems(400, 401, 403, 404, 422)}},
            "patch": {"summary": "Set the authority's CRL URLs (CNAS only); fetched soon after",
                      "requestBody": {"required": True, **_json(_ref("IssuerPatch"))},
                      "responses": {"200": {"description": "Set", **_json(_ref("Issuer"))},
                                    **_problems(400, 401, 403, 404, 422)}}},
        "/v1/issuers/{id}/refresh-status": {
            "parameters": [_ID_PARAM],
            "post": {"summary": "Fetch the authority's CRL now (CNAS only): the background fetcher does it; the "
                                "authority's status fields show the result. A certificate its CRL lists becomes "
                                "issuer_status revoked, and CertificateRevokedByIssuer is published",
                     "responses": {"202": {"description": "Asked", **_json(_ref("StatusRefresh"))},
                                   **_problems(401, 403, 404, 409)}}},
        "/v1/issuers/{id}/certificate.pem": {
            "parameters": [_ID_PARAM],
            "get": {"summary": "The authority's certificate file", "responses": {
                "200": {"description": "PEM", "content": {"application/x-pem-file": {"schema": {"type": "string"}}}},
                **_problems(401, 403, 404)}}},
        "/v1/trusted-list": {
            "get": {"summary": "Where the list comes from (SIUI_CERTS_TL_URL, or null: upload only) and the list "
                               "applied last: its sequence number, digest, who uploaded and applied it and when",
                    "responses": {"200": {"description": "The source and the last applied list",
                                          **_json(_ref("TrustedListStatus"))},
                                  **_problems(401, 403)}},
            "post": {"summary": "Upload the national Trusted List (ETSI TS 119 612 XML; CNAS only): its XML signature "
                                "is verified with the configured list operator's certificate "
                                "(SIUI_CERTS_TL_OPERATOR_CERT), its granted CA/QC services compared with the "
                                "registered issuers; nothing changes until apply",
                     "requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}} for t in (
                         "application/xml", "text/xml", "application/vnd.etsi.tsl+xml")}},
                     "responses": {"200": {"description": "The difference applying it would make",
                                           **_json(_ref("TrustedListDiff"))},
                                   "413": {"description": "Larger than SIUI_CERTS_TL_MAX_BYTES"},
                                   **_problems(400, 401, 403, 409, 422)}}},
        "/v1/trusted-list/fetch": {
            "post": {"summary": "Download the list from SIUI_CERTS_TL_URL (CNAS only; bounded like the CRL downloads: "
                                "timeout, size cap, public addresses, no redirects) and read it as an upload",
                     "requestBody": {"required": False, **_json({"type": "object", "additionalProperties": False})},
                     "responses": {"200": {"description": "The difference applying it would make",
                                           **_json(_ref("TrustedListDiff"))},
                                   **_problems(400, 401, 403, 409, 422, 502)}}},
        "/v1/trusted-list/apply": {
            "post": {"summary": "Apply the newest uploaded list (or import_id) in one transaction (CNAS only): new "
                                "services registered as issuers (IssuerRegistered), changed ones updated, withdrawn "
                                "ones flagged; applying the same list again changes nothing",
                     "requestBody": {"required": False, **_json({"type": "object", "additionalProperties": False,
                                                                 "properties": {"import_id": {"type": "string",
                                                                                              "format": "uuid"}}})},
                     "responses": {"200": {"description": "What was done", **_json(_ref("TrustedListResult"))},
                                   **_problems(400, 401, 403, 404, 422)}}},
        "/v1/certificates": {
            "get": {"summary": "List certificates of the caller's house (all houses for CNAS)",
                    "parameters": _CERT_QUERY,
                    "responses": {"200": {"description": "A page", **_json(_ref("CertificatePage"))},
                                  **_problems(401, 403, 422)}},
            "post": {"summary": "Register a user certificate. The same certificate may be registered for the "
                                "same provider's external user in several houses (each house's record its own); "
                                "for another provider, or twice for one user, 409",
                     "requestBody": {"required": True, **_json(_ref("CertificateRegistration"))},
                     "responses": {"201": {"description": "Registered; CertificateRegistered published",
                                           **_json(_ref("Certificate"))}, **_problems(400, 401, 403, 409, 422)}}},
        "/v1/certificates/expiring": {
            "get": {"summary": "How many certificates expire within 30, 15 and 7 days, per house (the "
                               "dashboard's counts; the list is GET /v1/certificates?expiring_within_days=N)",
                    "description": "Counted like expiring_within_days: not revoked (suspended included), "
                                   "validity ending between now and the window's end; a window includes "
                                   "the narrower ones. A county sees its own house (always listed, zeros "
                                   "included); CNAS every house that has any, or the one asked for.",
                    "parameters": [{"name": "cas", "in": "query", "schema": {"type": "string", "maxLength": 8},
                                    "description": "House (CNAS only; a county gets its own whatever it asks)"}],
                    "responses": {"200": {"description": "Counts", **_json(_ref("ExpiringCounts"))},
                                  **_problems(401, 403, 422)}}},
        "/v1/certificates/{id}": {
            "parameters": [_ID_PARAM],
            "get": {"summary": "Certificate detail with its history", "responses": {
                "200": {"description": "Detail", **_json(_ref("CertificateDetail"))}, **_problems(401, 403, 404)}},
            "patch": {"summary": "Suspend or reinstate (certificates:suspend); idempotent. A certificate its "
                                 "issuing authority revoked cannot be reinstated (409)",
                      "requestBody": {"required": True, **_json(_ref("Suspension"))},
                      "responses": {"200": {"description": "Now so; CertificateSuspended/Reinstated published "
                                            "if it changed", **_json(_ref("CertificateDetail"))},
                                    **_problems(400, 401, 403, 404, 409, 422)}}},
        "/v1/certificates/{id}/revoke": {
            "parameters": [_ID_PARAM],
            "post": {"summary": "Revoke for good (certificates:suspend); 409 if already revoked",
                     "requestBody": {"required": True, **_json(_ref("Revocation"))},
                     "responses": {"200": {"description": "Revoked; CertificateRevoked published",
                                           **_json(_ref("CertificateDetail"))},
                                   **_problems(400, 401, 403, 404, 409, 422)}}},
    },
}, RENEWALS)
