"""OpenAPI 3.1 of the console's machine-readable endpoints (served at /openapi.json).

The console is mostly HTML pages for people (listed at the end, as text/html); the JSON
it answers is the dashboard's data and the platform endpoints. Errors of the JSON
endpoints are RFC 9457 problems; a page's errors are pages.
"""
from __future__ import annotations

from shared.openapi import PROBLEM_RESPONSE, problem_schema

_HTML = {"description": "an HTML page (Romanian)", "content": {"text/html": {"schema": {"type": "string"}}}}
_COUNTS = {"type": "object", "additionalProperties": {"type": "number"}}
_SESSION = [{"session": []}]


def _page(summary: str, *, post: str | None = None) -> dict:
    item = {"get": {"summary": summary, "security": _SESSION, "responses": {"200": _HTML, "303": {
        "description": "not logged in: to the login page"}}}}
    if post:
        item["post"] = {"summary": post, "security": _SESSION,
                        "description": "an HTML form post; carries the session's CSRF token in `csrf`",
                        "responses": {"303": {"description": "done: to the record's page"},
                                      "403": {**_HTML, "description": "no CSRF token, or not allowed"},
                                      "422": {**_HTML, "description": "the form again, errors by its fields"}}}
    return item


OPENAPI_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "SIUI Access: console", "version": "1.0.0", "description": (
        "The web console of the houses' staff, in Romanian. It calls the other services' APIs "
        "with the operator's token, which it keeps in an AES-GCM sealed, HttpOnly, "
        "SameSite=Strict cookie; every form carries a CSRF token.")},
    "components": {
        "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "siui_console",
                                        "description": "`__Host-siui_console` when served over TLS"}},
        "schemas": {
            "Problem": problem_schema(),
            "DashboardSample": {"type": "object", "required": ["at", "ocsp", "queues"], "properties": {
                "at": {"type": "number", "description": "Unix time of the sample"},
                "house": {"type": ["string", "null"], "description": "the house the series are limited to"},
                "ocsp": {"type": "object", "properties": {
                    "by_status": {**_COUNTS, "description": "OCSP answers so far, by status (running totals)"},
                    "by_house": {**_COUNTS, "description": "OCSP answers so far, by house"}}},
                "connects": {**_COUNTS, "description": "online connects so far (heartbeats not counted), "
                                                       "by result: online, offline"},
                "suspensions": {"type": "number", "description": "suspensions committed so far"},
                "state_changes": {**_COUNTS, "description": "certificate state changes committed so far, by "
                                                            "action: registered, suspended, reinstated, revoked"},
                "suspension_source": {"type": "string", "description": "the metric counted (empty: the certs "
                                                                       "service did not report it)"},
                "outbox_backlog": {**_COUNTS, "description": "events not yet published, by schema"},
                "errors_5xx": {**_COUNTS, "description": "HTTP 5xx answers so far, by service"},
                "unreachable": {"type": "array", "items": {"type": "string"},
                                "description": "services whose /metrics did not answer"},
                "queues": {"type": "object", "additionalProperties": {"type": ["integer", "null"]},
                           "description": "messages waiting per queue (null: unknown)"}}},
        },
    },
    "paths": {
        "/panou/date": {"get": {
            "summary": "Panou operational: one sample of the live numbers",
            "description": "Counters are running totals since each service started; the page "
                           "computes rates from two samples. A county operator's series are "
                           "limited to their house; a CNAS user's to the house chosen, if any.",
            "security": _SESSION,
            "responses": {"200": {"description": "the sample", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/DashboardSample"}}}},
                "401": PROBLEM_RESPONSE}}},
        "/log-ocsp/stream": {"get": {
            "summary": "Log OCSP, live: the ocsp service's stream relayed with the operator's token",
            "security": _SESSION,
            "parameters": [
                {"name": "casa", "in": "query", "schema": {"type": "string"},
                 "description": "house (CNAS users; a county operator always sees their own)"},
                {"name": "utilizator", "in": "query", "schema": {"type": "string"}},
                {"name": "stare", "in": "query", "schema": {"type": "string"},
                 "description": "good, revoked, unknown, unauthorized, malformed, online, offline"},
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"},
                 "description": "resume after this entry id"},
                {"name": "dupa", "in": "query", "schema": {"type": "integer"},
                 "description": "resume after this entry id (when the header cannot be sent)"}],
            "responses": {"200": {"description": "Server-Sent Events: `id:` entry id, `data:` the entry",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          "401": PROBLEM_RESPONSE, "403": PROBLEM_RESPONSE, "422": PROBLEM_RESPONSE, "503": PROBLEM_RESPONSE}}},
        "/": {"get": {"summary": "Autentificare: the login form", "responses": {"200": _HTML}},
              "post": {"summary": "log in with `username` and `password` (form)",
                       "responses": {"303": {"description": "logged in"}, "401": {
                           **_HTML, "description": "refused (a locked account says until when)"}}}},
        "/iesire": {"post": {"summary": "log out (ends the session in the users service)",
                             "responses": {"303": {"description": "to the login page"}}}},
        "/casa": {"post": {"summary": "a CNAS user chooses the house shown (`casa`)",
                           "responses": {"303": {"description": "back"}}}},
        "/furnizori": _page("Furnizori / Persoane juridice"),
        "/furnizori/nou": _page("Persoana juridica: new", post="create"),
        "/furnizori/{id}": _page("Persoana juridica", post="Salveaza"),
        "/furnizori/{id}/cheie": {"post": {
            "summary": "Generare parola (reset=0) / Resetare parola (reset=1, confirmat=1)",
            "responses": {"200": {**_HTML, "description": "the serial, shown once, and generatePassword.pdf"}}}},
        "/utilizatori": _page("Lista utilizatorilor"),
        "/utilizatori/nou": _page("a new staff account", post="create"),
        "/utilizatori/{username}": _page("a user (roles and rights tabs for staff)", post="Salveaza"),
        "/certificate": _page("Certificate utilizatori"),
        "/certificate/nou": _page("a new certificate", post="Citeste certificatul / Salveaza"),
        "/certificate/{id}": _page("a certificate", post="the Suspendat box"),
        "/log-ocsp": _page("Log OCSP"),
        "/autoritati": _page("Autoritati emitente"),
        "/autoritati/nou": _page("a new issuing authority (CNAS)", post="register"),
        "/autoritati/lista-incredere": _page("the national Trusted List (CNAS): upload or fetch, see the difference",
                                             post="Verifica lista"),
        "/autoritati/lista-incredere/preia": _page("fetch the list from SIUI_CERTS_TL_URL (CNAS)", post="Preia"),
        "/autoritati/lista-incredere/aplica": _page("apply the list just shown (CNAS)", post="Aplica lista"),
        "/autoritati/{id}": _page("an issuing authority"),
        "/panou": _page("Panou operational"),
    },
}
