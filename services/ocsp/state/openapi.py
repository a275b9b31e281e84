"""OpenAPI fragment of the delegated signers (``/v1/issuers/{issuer_id}/signer``)."""
from __future__ import annotations


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _problems(*codes: int) -> dict:
    text = {400: "Unreadable body", 401: "No or bad token", 403: "Missing right, or not CNAS",
            404: "No such issuing authority or signer", 422: "Invalid fields (see errors)"}
    return {str(c): {"description": text[c], "content": {"application/problem+json": {"schema": _ref("Problem")}}}
            for c in codes}


_ISSUER_ID = {"name": "issuer_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}

OPENAPI = {
    "components": {"schemas": {
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
                "created_at": {"type": "string", "format": "date-time"}, "created_by": {"type": "string"}}}
    }},
    "paths": {
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
                       "responses": {"204": {"description": "Removed"}, **_problems(401, 403, 404)}}}
    },
}
