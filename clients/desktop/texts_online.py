"""The online channel's words: the semaphore, every reason the channel gives for
being offline, and the client's own reasons (no answer, TLS refused, throttled).

Server reasons come from services/ocsp (``reason`` in its 401 answers). The server's own
``message`` is shown whenever it sends one; these texts are the client's fallback, and
the reason for having one for every code is that the status bar never shows a bare code
for a reason it knows.
"""
from __future__ import annotations

# Reasons the ocsp online channel answers with (services/ocsp/online/rules.py, the
# contract's list, and those the renewal and issuer-status work adds).
SERVER_REASONS = (
    "certificate_missing", "credentials_missing", "certificate_not_registered",
    "certificate_other_user", "certificate_suspended", "certificate_revoked",
    "certificate_expired", "certificate_not_yet_valid", "wrong_key", "key_malformed",
    "key_replaced", "unknown_user", "session_invalid", "session_expired",
    "renewal_pending", "renewal_rejected", "revoked_by_issuer",
)
# Reasons about the session itself: a heartbeat refused for one of them is followed at
# once by a new connect, which the certificate and key may well still allow.
SESSION_REASONS = ("session_invalid", "session_expired")
# Reasons the client finds itself, before or instead of an answer.
LOCAL_REASONS = ("unreachable", "tls_rejected", "certificate_untrusted", "server_untrusted", "server_error",
                 "throttled", "protocol", "not_activated", "not_connected")

TEXTS: dict[str, dict[str, str]] = {
    # -- the semaphore --------------------------------------------------------------
    "online": {
        "ro": "Conectat online la {house} ca {user}.",
        "en": "Connected online to {house} as {user}.",
    },
    "certificate_missing": {
        "ro": "Serverul nu a primit niciun certificat digital: alegeți la conectare "
              "certificatul furnizorului (PEM cu cheia, sau PKCS#12).",
        "en": "The server received no digital certificate: choose the provider's "
              "certificate when connecting (PEM with its key, or PKCS#12).",
    },
    "certificate_not_registered": {
        "ro": "Certificatul digital nu este înregistrat la această casă de asigurări "
              "({house}). Cereți casei să îl adauge în SIUI (Certificate utilizatori) "
              "pentru {user}.",
        "en": "The digital certificate is not registered at this insurance house "
              "({house}). Ask the house to add it in SIUI (Certificate utilizatori) "
              "for {user}.",
    },
    "certificate_other_user": {
        "ro": "Certificatul digital este înregistrat pentru alt utilizator, nu pentru {user}.",
        "en": "The digital certificate is registered to another user, not to {user}.",
    },
    "certificate_suspended": {
        "ro": "Certificatul digital a fost suspendat de casa de asigurări ({house}): "
              "accesul online este oprit până la reactivarea lui.",
        "en": "The digital certificate was suspended by the insurance house ({house}): "
              "online access is stopped until it is reinstated.",
    },
    "certificate_revoked": {
        "ro": "Certificatul digital a fost revocat: folosiți un certificat nou, înregistrat "
              "la casa de asigurări.",
        "en": "The digital certificate was revoked: use a new certificate, registered at "
              "the insurance house.",
    },
    "certificate_expired": {
        "ro": "Certificatul digital a expirat: reînnoiți-l și cereți casei de asigurări "
              "să îl înregistreze.",
        "en": "The digital certificate has expired: renew it and ask the insurance house "
              "to register it.",
    },
    "certificate_not_yet_valid": {
        "ro": "Certificatul digital nu este încă valabil: verificați data și ora calculatorului.",
        "en": "The digital certificate is not valid yet: check the computer's date and time.",
    },
    "key_malformed": {
        "ro": "Seria de licență păstrată la activare este deteriorată: activați din nou.",
        "en": "The licence serial kept at activation is damaged: activate again.",
    },
    "wrong_key": {
        "ro": "Seria de licență nu este acceptată pentru {user}: activați din nou cu seria "
              "primită de la casa de asigurări.",
        "en": "The licence serial is not accepted for {user}: activate again with the "
              "serial the insurance house gave you.",
    },
    "key_replaced": {
        "ro": "Seria de licență a fost înlocuită de casa de asigurări (Resetare parola): "
              "activați din nou cu seria nouă.",
        "en": "The licence serial was replaced by the insurance house (Resetare parola): "
              "activate again with the new serial.",
    },
    "unknown_user": {
        "ro": "Utilizatorul {user} nu este cunoscut la casa de asigurări: activați din nou "
              "sau contactați casa.",
        "en": "The user {user} is not known at the insurance house: activate again or "
              "contact the house.",
    },
    "credentials_missing": {
        "ro": "Cererea de conectare nu conține utilizatorul și seria de licență: activați "
              "din nou aplicația.",
        "en": "The connection request carries no user and licence serial: activate the "
              "application again.",
    },
    "session_invalid": {
        "ro": "Sesiunea online nu mai este valabilă pentru acest certificat; se "
              "reconectează automat.",
        "en": "The online session is no longer valid for this certificate; reconnecting "
              "automatically.",
    },
    "session_expired": {
        "ro": "Sesiunea online a expirat; se reconectează automat.",
        "en": "The online session has expired; reconnecting automatically.",
    },
    "renewal_pending": {
        "ro": "Certificatul digital reînnoit așteaptă aprobarea casei de asigurări "
              "({house}); accesul online revine după aprobare.",
        "en": "The renewed digital certificate awaits the insurance house's approval "
              "({house}); online access returns once it is approved.",
    },
    "renewal_rejected": {
        "ro": "Casa de asigurări ({house}) a respins certificatul digital reînnoit; motivul "
              "este în mesajul serverului. Contactați casa de asigurări.",
        "en": "The insurance house ({house}) rejected the renewed digital certificate; the "
              "reason is in the server's message. Contact your insurance house.",
    },
    "revoked_by_issuer": {
        "ro": "Certificatul digital a fost revocat de autoritatea emitentă: folosiți un "
              "certificat nou, înregistrat la casa de asigurări.",
        "en": "The digital certificate was revoked by its issuing authority: use a new "
              "certificate, registered at the insurance house.",
    },
    "not_connected": {
        "ro": "Neconectat: alegeți Administrare / Conectare online.",
        "en": "Not connected: choose Administrare / Conectare online.",
    },
    "unreachable": {
        "ro": "Casa de asigurări nu poate fi contactată ({server}); se reîncearcă automat.",
        "en": "The insurance house cannot be reached ({server}); retrying automatically.",
    },
    "tls_rejected": {
        "ro": "Serverul a refuzat certificatul digital la negocierea TLS ({detail}).",
        "en": "The server refused the digital certificate in the TLS handshake ({detail}).",
    },
    "certificate_untrusted": {
        "ro": "Certificatul digital nu este emis de o autoritate emitentă înregistrată în SIUI. "
              "Folosiți certificatul calificat al furnizorului.",
        "en": "The digital certificate is not issued by an issuing authority registered in SIUI. "
              "Use the provider's qualified certificate.",
    },
    "server_untrusted": {
        "ro": "Certificatul serverului nu este de încredere ({detail}); verificați --ca.",
        "en": "The server's certificate is not trusted ({detail}); check --ca.",
    },
    "server_error": {
        "ro": "Eroare la serverul casei de asigurări (HTTP {status}); se reîncearcă automat.",
        "en": "The insurance house's server failed (HTTP {status}); retrying automatically.",
    },
    "throttled": {
        "ro": "Prea multe încercări: serverul cere o pauză de {seconds} s; se reîncearcă "
              "automat.",
        "en": "Too many attempts: the server asks for a pause of {seconds} s; retrying "
              "automatically.",
    },
    "protocol": {
        "ro": "Răspuns neașteptat de la server (HTTP {status}).",
        "en": "Unexpected answer from the server (HTTP {status}).",
    },
    "not_activated": {
        "ro": "Aplicația nu este activată: alegeți întâi Administrare / Activare.",
        "en": "The application is not activated: first choose Administrare / Activare.",
    },
    "unknown_reason": {
        "ro": "Conectare refuzată ({reason}).",
        "en": "Connection refused ({reason}).",
    },
    "disconnected": {
        "ro": "Deconectat.",
        "en": "Disconnected.",
    },
    "last_check": {"ro": "verificat la {time}", "en": "checked at {time}"},
    "next_attempt": {"ro": "reîncercare la {time}", "en": "next attempt at {time}"},
}
