"""OpenAPI 3.1 description of the keygen service's JSON endpoints (served at /openapi.json)."""
from __future__ import annotations

from shared.openapi import BEARER, PROBLEM_RESPONSE, problem_schema

from services.keygen.providers import ORG_TYPES

_AUTH_ERRORS = {"401": {**PROBLEM_RESPONSE, "description": "no valid token"},
                "403": {**PROBLEM_RESPONSE, "description": "the caller's roles lack the right"}}
_NOT_FOUND = {**PROBLEM_RESPONSE, "description": "no such provider, or one of another house (county users)"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_STR = {"type": ["string", "null"]}
_DATE = {"type": ["string", "null"], "format": "date",
         "description": "1900-01-01 .. 2199-12-31"}
_TIME = {"type": "string", "format": "date-time"}
_NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"},
                               "description": "the serial is in clear: nothing may cache it"}}
_DETAIL = {"description": "the provider", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Provider"}}}}
_SERIAL = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$",
           "examples": ["F8E73-MVXY-FYKQ-9TGK"],
           "description": ("17 symbols of 0-9 A-Z without I L O U, the last a GF(32) check symbol "
                           "(README: \"The activation key\")")}


_TEXT_RULE = ("Every text field refuses (422 naming it) control characters (NUL, C0, C1, line "
              "separators), lone UTF-16 surrogates, bidirectional controls (U+202A-202E, "
              "U+2066-2069, U+200E, U+200F, U+061C), zero-width and invisible characters "
              "(U+200B-200D, U+2060, U+FEFF, the soft hyphen U+00AD, other format characters, "
              "fillers, variation selectors), private-use and unassigned code points: what the "
              "signed agreement prints must be what is stored. A number too long to read "
              "(thousands of digits) is out of range (422), not an unreadable body.")


def _json_body(ref: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_FIELDS = {
    "cas": {"type": "string", "description": "house code: AB … VN, B (Bucharest) or OPSNAJ; not CNAS"},
    "cui": {"type": "string", "description": "CUI (2-10 digits, optionally RO-prefixed; stored without RO) or a 13-digit CNP; its check digit must match"},
    "name": {"type": "string", "maxLength": 200, "description": "Nume"},
    "description": {**_STR, "maxLength": 500, "description": "Descriere"},
    "code": {**_STR, "maxLength": 32, "description": "Cod: the provider code; defaults to the CUI"},
    "cui_date": {**_DATE, "description": "Data CUI (1900-01-01 .. 2199-12-31)"},
    "org_type": {"type": ["string", "null"], "enum": [*ORG_TYPES, None], "description": "Tip organizatoric (matched ignoring case and diacritics)"},
    "fiscal_attribute": {**_STR, "description": "Atribut fiscal, e.g. RO (set by an RO-prefixed CUI)"},
    "fiscal_attribute_date": {**_DATE, "description": "Data atribut fiscal (1900-01-01 .. 2199-12-31)"},
    "trade_register_no": {**_STR, "examples": ["J40/10/3456"], "description": "Nr.Reg.Comert"},
    "registered_on": {**_DATE, "description": "Data inregistrarii (1900-01-01 .. 2199-12-31)"},
    "country": {"type": "string", "default": "ROM", "description": "Tara (ISO 3166 alpha-3)"},
    "locality": {**_STR, "maxLength": 100, "examples": ["17913 Bucuresti"], "description": "Localitate"},
    "currency": {"type": "string", "default": "RON", "description": "Valuta (ISO 4217)"},
    "print_order": {"type": ["integer", "null"], "minimum": 0, "maximum": 1000000, "description": "Ordine printare"},
    "valid_from": {**_DATE, "description": "Valabil de la (1900-01-01 .. 2199-12-31)"},
    "valid_to": {**_DATE, "description": "Valabil pana la (1900-01-01 .. 2199-12-31, not before valid_from)"},
    "work_point": {**_STR, "maxLength": 200, "description": "Punct de lucru"},
    "location_type": {**_STR, "maxLength": 100, "description": "Tip locatie"},
    "legal_representative": {"type": ["object", "null"], "required": ["name", "cnp"],
                             "additionalProperties": False, "description": "printed on the agreement",
                             "properties": {"name": {"type": "string"},
                                            "cnp": {"type": "string", "description": "13 digits, check digit verified"}}},
}
_KEY = {"type": "object", "properties": {
    "key_id": {"type": "string", "format": "uuid"}, "reset": {"type": "boolean"},
    "issued_at": _TIME, "issued_by": {"type": "string"},
    "replaced_at": {"type": ["string", "null"], "format": "date-time"}, "replaced_by": _STR,
    "status": {"enum": ["current", "replaced"], "description": "replaced (înlocuită) once a reset replaced it"}}}

OPENAPI_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: keygen", "version": "1.0.0", "description": (
        "Providers (\"Furnizori / Persoane juridice\"), their activation keys (\"Generare parola\" / "
        "\"Resetare parola\") with the signed agreement generatePassword.pdf, and the desktop's "
        "activation. Every call but `POST /v1/activations` needs `Authorization: Bearer <token>`. "
        "A county user sees only its house: another house's provider answers 404. Keys are "
        "stored only as HMAC-SHA256 digests; a serial is in clear only in the answer that issues it.")},
    "components": {
        "securitySchemes": {"bearer": BEARER},
        "schemas": {
            "Problem": problem_schema(
                provider_id={"type": "string", "format": "uuid",
                             "description": "409 duplicate CUI: the provider already registered"}),
            "NewProvider": {"type": "object", "required": ["cas", "cui", "name"],
                            "additionalProperties": False, "properties": _FIELDS,
                            "description": _TEXT_RULE},
            "ProviderChanges": {"type": "object", "additionalProperties": False, "properties": _FIELDS,
                                "description": ("only the fields to change; null clears an optional one. "
                                                "cas cannot change (422); cui only while the provider never "
                                                "had a key (409); legal_representative is replaced whole")},
            "Provider": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"}, **_FIELDS,
                "has_key": {"type": "boolean"},
                "key_id": {"type": ["string", "null"], "format": "uuid", "description": "the current key"},
                "key_issued_at": {"type": ["string", "null"], "format": "date-time"},
                "external_user": {**_STR, "examples": ["12433636_CAS-B"],
                                  "description": "<CUI>_CAS-<cas>, once a key was issued"},
                "keys": {"type": "array", "items": _KEY, "description": "key history, oldest first (never digests)"},
                "created_at": _TIME, "created_by": {"type": "string"},
                "updated_at": _TIME, "updated_by": {"type": "string"}}},
            "ProviderItem": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"}, "cas": {"type": "string"},
                "cui": {"type": "string"}, "code": {"type": "string"}, "name": {"type": "string"},
                "org_type": _STR, "locality": _STR, "valid_from": _DATE, "valid_to": _DATE,
                "has_key": {"type": "boolean"}, "key_id": {"type": ["string", "null"], "format": "uuid"},
                "key_issued_at": {"type": ["string", "null"], "format": "date-time"}}},
            "ProviderPage": {"type": "object", "required": ["items", "total", "pages", "page", "per_page"], "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/ProviderItem"}},
                "total": {"type": "integer", "description": "providers matching (\"Numarul total\")"},
                "pages": {"type": "integer", "description": "ceil(total / per_page); 0 when empty"},
                "page": {"type": "integer"}, "per_page": {"type": "integer", "enum": [10, 20, 50, 100]}}},
            "HistoryEntry": {"type": "object", "properties": {
                "at": _TIME, "by": {"type": "string"}, "action": {"type": "string", "enum": ["created", "updated"]},
                "changes": {"type": "object", "description": "field → {old, new} (updates)",
                            "additionalProperties": {"type": "object", "properties": {"old": {}, "new": {}}}}}},
            "IssueKey": {"type": "object", "required": ["reset"], "additionalProperties": False, "properties": {
                "reset": {"type": "boolean", "description": "false: Generare parola; true: Resetare parola"}}},
            "IssuedKey": {"type": "object", "required": ["license_serial", "key_id", "external_user", "issued_at"],
                          "properties": {"license_serial": _SERIAL, "key_id": {"type": "string", "format": "uuid"},
                                         "external_user": {"type": "string", "examples": ["12433636_CAS-B"]},
                                         "issued_at": _TIME}},
            "Activation": {"type": "object", "required": ["license_serial", "cas"], "additionalProperties": False,
                           "properties": {"license_serial": {"type": "string", "maxLength": 64, "description": (
                               "as typed: case, blanks and dashes are free; O reads as 0, I and L as 1, U as V")},
                               "cas": {"type": "string", "maxLength": 16,
                                       "description": "the house chosen (\"Casa de asigurari\")"}}},
            "Activated": {"type": "object", "required": ["external_user", "provider", "cas"], "properties": {
                "external_user": {"type": "string", "examples": ["12433636_CAS-B"]},
                "provider": {"type": "object", "properties": {"cui": {"type": "string"}, "name": {"type": "string"}}},
                "cas": {"type": "string"}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/providers": {
            "get": {"summary": "Furnizori: the list (providers:read)", "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100},
                 "description": "substring of name, CUI or code; ignores case and diacritics"},
                {"name": "cas", "in": "query", "schema": {"type": "string"},
                 "description": "CNAS users: one house; ignored for county users (always their own)"},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "enum": [10, 20, 50, 100], "default": 20}}],
                "responses": {"200": {"description": "a page, ordered by name", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ProviderPage"}}}},
                    **_AUTH_ERRORS, "422": PROBLEM_RESPONSE}},
            "post": {"summary": "Nou: register a provider (providers:write)", "requestBody": _json_body("NewProvider"),
                     "responses": {"201": {**_DETAIL, "headers": {"Location": {"schema": {"type": "string"}}}},
                                   "400": PROBLEM_RESPONSE, "401": _AUTH_ERRORS["401"],
                                   "403": {**PROBLEM_RESPONSE, "description": "no right, or a county user registering at another house"},
                                   "409": {**PROBLEM_RESPONSE, "description": "this CUI is already registered at this house (`provider_id`)"},
                                   "422": {**PROBLEM_RESPONSE, "description": "bad fields, named in `errors` (e.g. a CUI/CNP check digit)"}}}},
        "/v1/providers/{id}": {
            "parameters": [_ID],
            "get": {"summary": "A provider with its current key and key history (providers:read)",
                    "responses": {"200": _DETAIL, **_AUTH_ERRORS, "404": _NOT_FOUND}},
            "patch": {"summary": "Modifica: change fields (providers:write); a history entry records what changed",
                      "requestBody": {"required": True, "content": {
                          "application/json": {"schema": {"$ref": "#/components/schemas/ProviderChanges"}},
                          "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/ProviderChanges"}}}},
                      "responses": {"200": _DETAIL, "400": PROBLEM_RESPONSE, **_AUTH_ERRORS, "404": _NOT_FOUND,
                                    "409": {**PROBLEM_RESPONSE, "description": "the new CUI is taken at this house, or a key was already issued"},
                                    "422": PROBLEM_RESPONSE}}},
        "/v1/providers/{id}/history": {"get": {
            "summary": "Who created and changed the provider, what and when, oldest first (providers:read)",
            "parameters": [_ID],
            "responses": {"200": {"description": "the history", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"items": {"type": "array", "items": {
                    "$ref": "#/components/schemas/HistoryEntry"}}}}}}},
                **_AUTH_ERRORS, "404": _NOT_FOUND}}},
        "/v1/providers/{id}/keys": {"get": {
            "summary": "The licence key's history, oldest first (providers:read): each key issued, who "
                       "issued or reset it and when, who replaced it and when",
            "description": "Never a key, a digest or any part of a serial: keys are named by their key_id.",
            "parameters": [_ID],
            "responses": {"200": {"description": "the keys", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"items": {"type": "array", "items": _KEY}}}}}},
                **_AUTH_ERRORS, "404": _NOT_FOUND}}},
        "/v1/providers/{id}/activation-key": {"post": {
            "summary": "Generare parola / Resetare parola (keys:issue)",
            "description": (
                "Issues a new activation key. `reset: false` only for a provider without a key, "
                "`reset: true` only for one with a key (409 naming the button to use); a reset "
                "replaces the old key at once. One transaction stores the key's digest and writes "
                "KeyIssued (never the key) to the outbox. With `Accept: application/pdf` the answer "
                "is the agreement generatePassword.pdf, PAdES-signed with the house's "
                "document-signing certificate; the serial, key id and external user then come in "
                "the X- headers, so one call gives both. If the agreement cannot be made, no key "
                "is issued (500). A provider whose stored details hold a character the agreement "
                "must not print (a bidirectional control, an invisible character: see NewProvider) "
                "gets no key: 422 naming the fields, to be corrected first (PATCH)."),
            "parameters": [_ID, {"name": "Accept", "in": "header", "schema": {"type": "string"},
                                 "description": "application/pdf for the signed agreement; JSON otherwise"}],
            "requestBody": _json_body("IssueKey"),
            "responses": {
                "201": {"description": "the key (JSON), or the signed agreement carrying it (PDF)",
                        "headers": {**_NO_STORE,
                                    "Content-Disposition": {"schema": {"type": "string"},
                                                            "description": "PDF only: attachment; filename=\"generatePassword.pdf\""},
                                    "X-License-Serial": {"schema": _SERIAL, "description": "PDF only: the serial, shown once"},
                                    "X-Key-Id": {"schema": {"type": "string", "format": "uuid"}, "description": "PDF only"},
                                    "X-External-User": {"schema": {"type": "string"}, "description": "PDF only: <CUI>_CAS-<cas>"},
                                    "X-Issued-At": {"schema": _TIME, "description": "PDF only"}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssuedKey"}},
                                    "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}}}},
                "400": PROBLEM_RESPONSE, **_AUTH_ERRORS, "404": _NOT_FOUND,
                "409": {**PROBLEM_RESPONSE, "description": ("\"this provider already has a key: use Resetare parola\" or "
                                                    "\"this provider has no key yet: use Generare parola\"")},
                "422": {**PROBLEM_RESPONSE, "description": (
                    "bad body, or the provider's stored details must be corrected first "
                    "(`errors` names the fields)")}}}},
        "/v1/activations": {"post": {
            "summary": "Activare: the desktop application checks its licence serial (no token)",
            "security": [],
            "description": (
                "A serial that is malformed or fails its check character (a typo) is answered 422 "
                "at once, before any lookup; it is neither stored nor counted. The provider's "
                "current key at its own house always activates (200), whatever was tried before "
                "from that address or against that provider. Every other well-formed serial "
                "(never issued, replaced by a reset, another house's key) gets the same 403 with "
                "the same message and counts the same against the client address (an IPv6 "
                "address by its /64); after SIUI_ACTIVATION_MAX_FAILURES (100) such refusals "
                "within SIUI_ACTIVATION_WINDOW_MINUTES (15) the address gets 429 with "
                "Retry-After instead of 403, the same for every serial, until the oldest leaves "
                "the window. There is no limit per provider. Successes and counted refusals are "
                "stored (never the serial) for SIUI_ACTIVATION_LOG_DAYS (30) days."),
            "requestBody": _json_body("Activation"),
            "responses": {"200": {"description": "activated", "headers": _NO_STORE,
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Activated"}}}},
                          "400": {**PROBLEM_RESPONSE, "description": "the body is not a JSON object"},
                          "403": {**PROBLEM_RESPONSE, "description": (
                              "the serial is not a current key of this house: never issued, replaced "
                              "by a reset, or another house's (one answer, body and headers, for every cause)")},
                          "422": {**PROBLEM_RESPONSE, "description": (
                              "a field is missing, unknown, too long or not a string, the serial is "
                              "malformed or fails its check character, or the house is unknown "
                              "(`errors` names the field); not counted")},
                          "429": {**PROBLEM_RESPONSE, "description": (
                              "this client address had SIUI_ACTIVATION_MAX_FAILURES refusals in the "
                              "window: the same answer for every serial but the current key, which "
                              "still activates"), "headers": {
                              "Retry-After": {"schema": {"type": "integer", "minimum": 1},
                                              "description": "seconds until the address is below its limit"}}}}}},
    },
}
