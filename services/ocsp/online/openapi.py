"""OpenAPI fragment of the online channel (served on :8443)."""
from __future__ import annotations

from services.ocsp.online.rules import REASONS

_ONLINE = {"type": "object", "required": ["semaphore", "session_token", "expires_at", "username", "cas"],
           "properties": {"semaphore": {"const": "online"}, "session_token": {"type": "string"},
                          "expires_at": {"type": "string", "format": "date-time"},
                          "username": {"type": "string"}, "cas": {"type": "string"},
                          "message": {"type": "string"},
                          "heartbeat_seconds": {"type": "integer", "description": "how often to beat"},
                          "certificate_expires_at": {"type": "string", "format": "date-time",
                                                     "description": "the presented certificate's notAfter"},
                          "certificate_days_left": {"type": "integer", "minimum": 0,
                                                    "description": "whole days until it expires, rounded up"},
                          "warning": {"type": "string", "description":
                                      "only from 30 days before expiry: the sentence the desktop shows in "
                                      "its status bar (Romanian; English with Accept-Language: en)"},
                          "warning_code": {"const": "certificate_expiring"}}}
_OFFLINE = {"description": "Offline: problem+json with the reason, in Romanian (English with "
                           "Accept-Language: en)",
            "content": {"application/problem+json": {"schema": {
                "type": "object", "required": ["semaphore", "reason", "message"],
                "properties": {"semaphore": {"const": "offline"}, "reason": {"enum": list(REASONS)},
                               "message": {"type": "string"}, "detail": {"type": "string"},
                               "replaced_at": {"type": "string", "format": "date-time", "description":
                                               "key_replaced only, when known: when the house reset "
                                               "the key presented (the message says it too)"}}}}}}
_BUSY = {"description": "Overloaded (a reconnect storm): problem+json with reason server_busy, "
                        "answered before the credentials are read. Come back after Retry-After "
                        "(seconds, spread per answer between half SIUI_ONLINE_RETRY_AFTER and all of "
                        "it), with your own jitter on top; beyond a harder bound the connection is "
                        "closed before the TLS handshake instead.",
         "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
         "content": {"application/problem+json": {"schema": {
             "type": "object", "required": ["semaphore", "reason", "message"],
             "properties": {"semaphore": {"const": "offline"}, "reason": {"const": "server_busy"},
                            "message": {"type": "string"}, "detail": {"type": "string"}}}}}}
_CHANNEL = {"servers": [{"url": "https://127.0.0.1:8443"}],
            "responses": {"200": {"description": "Online",
                                  "content": {"application/json": {"schema": _ONLINE}}},
                          "401": _OFFLINE, "503": _BUSY}}
_PATHS = {
    "/v1/online/connect": {"post": {
        **_CHANNEL, "summary": "Conectare online: mutual TLS + Basic <CUI>_CAS-<cas>:<licence serial>",
        "description": "Served on :8443 only. Online when the presented certificate (TLS client auth, "
                       "issued by a registered issuer) is registered to that external user, neither "
                       "suspended nor revoked, within its validity, and the serial is the user's current "
                       "key. Every attempt is an OCSP log entry (operation connect); an online one "
                       "counts as the certificate's last use. A certificate that is not registered but is "
                       "issued by a registered issuer and names the holder of one registered to that user "
                       "(same subject, or the same serialNumber / organizationIdentifier), presented with the "
                       "user's current key within its validity, is a renewal: 401 reason renewal_pending "
                       "(certs records it for the house's approval, RenewalPresented), or renewal_rejected "
                       "with the house's reason in the message once the house rejected it. A reconnect may resume its TLS 1.3 "
                       "session (a ticket, accepted by every worker): it is still the certificate of "
                       "the handshake that opened the session, judged afresh.",
        "security": [{"basic": []}]}},
    "/v1/online/heartbeat": {"post": {
        **_CHANNEL, "summary": "Still online? Checks everything again (suspension, revocation, key reset)",
        "description": "Served on :8443 only, with the same client certificate and "
                       "`Authorization: Bearer <session_token>`; answers like connect, with a fresh token.",
        "security": [{"bearer": []}]}},
}

OPENAPI = {"paths": _PATHS}
