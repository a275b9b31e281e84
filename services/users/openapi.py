"""OpenAPI 3.1 description of the users service's JSON endpoints (served at /openapi.json)."""
from __future__ import annotations

from shared.auth import ALL_RIGHTS
from shared.openapi import BEARER, PROBLEM_RESPONSE, problem_schema

_AUTH_ERRORS = {"401": {**PROBLEM_RESPONSE, "description": "no valid token, or the session was ended"},
                "403": {**PROBLEM_RESPONSE, "description": "the caller's roles lack the right"}}
_USERNAME = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_DETAIL = {"description": "the user", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/UserDetail"}}}}
_NULLABLE_STR = {"type": ["string", "null"]}


def _retry_after(description: str) -> dict:
    return {**PROBLEM_RESPONSE, "description": description, "headers": {"Retry-After": {
        "description": "whole seconds after which the attempt may be let through",
        "schema": {"type": "integer", "minimum": 1}}}}


def _body(ref: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


OPENAPI_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: users", "version": "1.0.0", "description": (
        "House staff (internal users) with roles and rights, providers' external users "
        "(`<CUI>_CAS-<cas>`, made from KeyIssued), and sessions. Every call but "
        "`POST /v1/sessions` needs `Authorization: Bearer <token>`. A county user sees only "
        "its house: another house's user answers 404.")},
    "components": {
        "securitySchemes": {"bearer": BEARER},
        "schemas": {
            "Problem": problem_schema(
                certificates={"type": "integer",
                              "description": "delete refused: certificates the user still has"}),
            "Credentials": {"type": "object", "required": ["username", "password"],
                            "additionalProperties": False, "properties": {
                                "username": {"type": "string"}, "password": {"type": "string"}}},
            "Session": {"type": "object", "required": ["token", "expires_at", "user"], "properties": {
                "token": {"type": "string", "description": "EdDSA JWT: sub, cas, rights, roles, jti, iat, exp, iss, aud"},
                "expires_at": {"type": "string", "format": "date-time"},
                "user": {"type": "object", "properties": {
                    "username": {"type": "string"}, "cas": {"type": "string"},
                    "employee_code": _NULLABLE_STR, "employee_name": _NULLABLE_STR,
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "rights": {"type": "array", "items": {"type": "string", "enum": sorted(ALL_RIGHTS)}}}}}},
            "UserItem": {"type": "object", "properties": {
                "username": {"type": "string", "examples": ["12433636_CAS-B"]},
                "employee_code": _NULLABLE_STR, "employee_name": _NULLABLE_STR,
                "type": {"type": "string", "enum": ["internal", "external"]},
                "cas": {"type": "string", "examples": ["B"]},
                "schema": {"type": "string", "examples": ["SIUIB"]},
                "org_unit": {"type": "string", "examples": ["CAS-B"]}}},
            "UserPage": {"type": "object", "required": ["items", "total", "pages", "page", "per_page"], "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/UserItem"}},
                "total": {"type": "integer", "description": "rows matching (\"Numarul total\")"},
                "pages": {"type": "integer", "description": "ceil(total / per_page) (\"pagini\"); 0 when empty"},
                "page": {"type": "integer"}, "per_page": {"type": "integer", "enum": [10, 20, 50, 100]}}},
            "UserDetail": {"allOf": [{"$ref": "#/components/schemas/UserItem"}, {"type": "object", "properties": {
                "enabled": {"type": "boolean"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "roles": {"type": "array", "items": {"type": "string"}, "description": "internal users only"},
                "rights": {"type": "array", "items": {"type": "string"}, "description": "internal users only"},
                "locked_until": {"type": ["string", "null"], "format": "date-time",
                                 "description": ("internal users only: the latest end of a lock of this "
                                                 "account from one client address (other addresses "
                                                 "are not locked); in the past means no longer locked")},
                "provider_cui": {"type": "string", "description": "external users only"},
                "provider_code": {"type": "string", "description": "external users only"},
                "provider_name": {"type": "string", "description": "external users only"},
                "certificates": {"type": "integer", "description": "external users only: registered, not revoked"},
                "key_changes": {"type": "array", "description": "external users only: latest 20 keys, newest first",
                                "items": {"type": "object", "properties": {
                                    "key_id": {"type": "string"}, "reset": {"type": "boolean"},
                                    "issued_at": {"type": "string", "format": "date-time"},
                                    "issued_by": {"type": "string"}}}}}}]},
            "NewUser": {"type": "object", "additionalProperties": False,
                        "required": ["username", "password", "cas", "employee_name"], "properties": {
                "username": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9._-]{2,63}$",
                             "description": "stored lower-case"},
                "password": {"type": "string", "minLength": 12, "maxLength": 128,
                             "description": "not a well-known password, not containing the user name or employee code, 5+ distinct characters"},
                "cas": {"type": "string", "description": "house code (AB … VN, B, OPSNAJ) or CNAS; county admins: their own"},
                "employee_code": {"type": "string", "maxLength": 32}, "employee_name": {"type": "string", "maxLength": 200},
                "roles": {"type": "array", "items": {"type": "string"},
                          "description": "national roles only for CNAS users; only rights the caller holds"},
                "enabled": {"type": "boolean", "default": True}}},
            "UserChanges": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
                "employee_code": _NULLABLE_STR, "employee_name": _NULLABLE_STR,
                "password": {"type": "string", "description": "also clears the account's locks; ends the user's sessions"},
                "enabled": {"type": "boolean", "description": "false ends the user's sessions (SessionRevoked for each)"},
                "unlock": {"type": "boolean", "description": "true clears the account's locks, from every address"}}},
            "Roles": {"type": "object", "required": ["roles"], "additionalProperties": False, "properties": {
                "roles": {"type": "array", "items": {"type": "string"}}}},
            "Role": {"type": "object", "properties": {
                "name": {"type": "string"}, "description": {"type": "string"},
                "rights": {"type": "array", "items": {"type": "string", "enum": sorted(ALL_RIGHTS)}},
                "national": {"type": "boolean", "description": "only CNAS users may hold it"}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/sessions": {"post": {
            "summary": "Log in", "security": [], "requestBody": _body("Credentials"),
            "description": (
                "201: a session token. **401** with one answer, byte for byte and after the same "
                "work, for an unknown user, an external user (they never log in), a wrong password, "
                "and an account locked *from the caller's address*: after SIUI_LOGIN_MAX_FAILURES (5) "
                "wrong passwords in a row from one client address, that address cannot log in to "
                "that account for SIUI_LOGIN_LOCKOUT_MINUTES (15), whatever password it sends; every "
                "other address, the owner's, is unaffected. A disabled account is said so only after "
                "its correct password. **429** with Retry-After, the same for every user name: more "
                "than SIUI_LOGIN_PER_ADDRESS_PER_MINUTE (30) attempts from the client address in the "
                "last minute (sliding window, shared by every replica), or more than "
                "SIUI_LOGIN_GLOBAL_PER_SECOND (20) attempts a second reaching this process from "
                "everybody. **503** with Retry-After: SIUI_LOGIN_CONCURRENCY (2) password checks are "
                "running and SIUI_LOGIN_QUEUE (16) more wait; answered at once, not queued. The "
                "client address is the peer's, or the X-Forwarded-For of a proxy listed in "
                "SIUI_TRUSTED_PROXIES (the console is one)."),
            "responses": {"201": {"description": "logged in", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Session"}}}},
                "400": PROBLEM_RESPONSE,
                "401": {**PROBLEM_RESPONSE, "description": (
                    "wrong user name or password, or the account is locked from this address "
                    "(one answer; or, after the correct password, a disabled account)")},
                "422": PROBLEM_RESPONSE,
                "429": _retry_after("too many attempts from the client address, or from everybody "
                                    "at this moment; the same for every user name"),
                "503": _retry_after("every password-checking thread is busy and the queue is full")}}},
        "/v1/sessions/revoked": {"get": {
            "summary": "Ids of ended sessions whose tokens have not expired yet",
            "description": ("Read by the other services when they start, so that a restart does not "
                            "forget a logout (they also follow SessionRevoked events). No token "
                            "needed: a token id opens nothing."),
            "tags": ["sessions"],
            "responses": {"200": {"description": "`{\"items\": [{\"jti\", \"expires_at\"}]}`"}}}},
        "/v1/sessions/current": {"delete": {
            "summary": "Log out: the token is refused from now on (SessionRevoked tells the other services)",
            "responses": {"204": {"description": "logged out"}, "401": _AUTH_ERRORS["401"]}}},
        "/v1/users": {
            "get": {"summary": "Lista utilizatorilor (users:read)", "parameters": [
                {"name": "type", "in": "query", "schema": {"type": "string", "enum": ["all", "internal", "external"], "default": "all"}},
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100},
                 "description": "substring of user name, employee code or name, provider code or name; case-insensitive"},
                {"name": "cas", "in": "query", "schema": {"type": "string"},
                 "description": "CNAS users: one house; ignored for county users (always their own)"},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "enum": [10, 20, 50, 100], "default": 20}}],
                "responses": {"200": {"description": "a page, ordered by user name", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/UserPage"}}}},
                    **_AUTH_ERRORS, "422": PROBLEM_RESPONSE}},
            "post": {"summary": "Nou: create an internal user (users:write)", "requestBody": _body("NewUser"),
                     "responses": {"201": _USER_DETAIL, "400": PROBLEM_RESPONSE, **_AUTH_ERRORS,
                                   "409": {**PROBLEM_RESPONSE, "description": "user name taken"}, "422": PROBLEM_RESPONSE}}},
        "/v1/users/{username}": {
            "parameters": [_USERNAME],
            "get": {"summary": "A user (users:read)", "responses": {
                "200": _USER_DETAIL, **_AUTH_ERRORS, "404": PROBLEM_RESPONSE}},
            "patch": {"summary": "Modifica: employee fields, password, enabled, unlock (users:write; internal users only)",
                      "requestBody": _body("UserChanges"), "responses": {
                          "200": _USER_DETAIL, "400": PROBLEM_RESPONSE, **_AUTH_ERRORS, "404": PROBLEM_RESPONSE,
                          "409": {**PROBLEM_RESPONSE, "description": "disabling your own account"},
                          "422": {**PROBLEM_RESPONSE, "description": "bad fields, or an external user"}}},
            "delete": {"summary": "Sterge (users:write)", "description": (
                "An internal user is removed and its sessions revoked (not your own account). "
                "An external user with certificates still registered is refused (409, "
                "`certificates`); without, it is removed and ExternalUserDeleted is published "
                "(its key stops working online); a new key for the provider creates it again."),
                "responses": {"204": {"description": "deleted"}, **_AUTH_ERRORS, "404": PROBLEM_RESPONSE, "409": PROBLEM_RESPONSE}}},
        "/v1/users/{username}/roles": {"put": {
            "summary": "Replace a user's roles (users:write); changed rights end the user's sessions",
            "parameters": [_USERNAME], "requestBody": _body("Roles"),
            "responses": {"200": _USER_DETAIL, "400": PROBLEM_RESPONSE, **_AUTH_ERRORS, "404": PROBLEM_RESPONSE,
                          "422": {**PROBLEM_RESPONSE, "description": (
                              "unknown role; an external user (they have no roles or rights); a "
                              "national role for a user outside CNAS")}}}},
        "/v1/roles": {"get": {"summary": "Roles and their rights (users:read)", "responses": {
            "200": {"description": "every role", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"items": {"type": "array", "items": {
                    "$ref": "#/components/schemas/Role"}}}}}}},
            **_AUTH_ERRORS}}},
    },
}
