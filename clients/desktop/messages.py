"""What the provider reads, in Romanian (the default) and English.

Every text has both languages with the same ``{placeholders}`` (a unit test holds the
catalogue to that). The screen labels the seed names (*Reactivare baza de date
curenta*, *Inainte*, *Casa de asigurari*, *Serie de licenta*) are spelled as the seed's
screens spell them, without diacritics, so that a provider following the seed's how-to
finds them; sentences are written in proper Romanian.

The reasons the online channel gives (``reason`` in its 401 answers) each have a text of
their own, as do the client's own reasons for being offline (house unreachable, TLS
refused, untrusted server): the status bar never shows a bare code.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

LANGUAGES = ("ro", "en")
DEFAULT_LANGUAGE = "ro"

# Reasons the ocsp online channel answers with (services/ocsp, the contract's list).
SERVER_REASONS = (
    "certificate_missing", "certificate_not_registered", "certificate_other_user",
    "certificate_suspended", "certificate_revoked", "certificate_expired",
    "certificate_not_yet_valid", "wrong_key", "key_malformed", "key_replaced", "unknown_user",
)
# Reasons the client finds itself, before or instead of an answer.
LOCAL_REASONS = ("unreachable", "tls_rejected", "server_untrusted", "server_error",
                 "throttled", "protocol", "not_activated")

_CATALOGUE: dict[str, dict[str, str]] = {
    # -- the semaphore --------------------------------------------------------------
    "online": {
        "ro": "Conectat online la {house} ca {user}.",
        "en": "Connected online to {house} as {user}.",
    },
    "certificate_missing": {
        "ro": "Serverul nu a primit niciun certificat digital: porniți conectarea cu "
              "--cert și --key sau cu --p12.",
        "en": "The server received no digital certificate: connect with --cert and --key "
              "or with --p12.",
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
    "unreachable": {
        "ro": "Casa de asigurări nu poate fi contactată ({server}); se reîncearcă automat.",
        "en": "The insurance house cannot be reached ({server}); retrying automatically.",
    },
    "tls_rejected": {
        "ro": "Serverul a refuzat certificatul digital la negocierea TLS ({detail}).",
        "en": "The server refused the digital certificate in the TLS handshake ({detail}).",
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
        "ro": "Prea multe încercări: se reîncearcă peste {seconds} s.",
        "en": "Too many attempts: retrying in {seconds} s.",
    },
    "protocol": {
        "ro": "Răspuns neașteptat de la server (HTTP {status}).",
        "en": "Unexpected answer from the server (HTTP {status}).",
    },
    "not_activated": {
        "ro": "Aplicația nu este activată: rulați întâi „python -m clients.desktop” "
              "(Administrare / Activare).",
        "en": "The application is not activated: first run \"python -m clients.desktop\" "
              "(Administrare / Activare).",
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
    # -- the licence serial, before anything is sent ----------------------------------
    "serial_empty": {
        "ro": "Introduceți seria de licență (4 grupe de caractere).",
        "en": "Enter the licence serial (4 groups of characters).",
    },
    "serial_characters": {
        "ro": "Seria de licență conține caractere care nu apar în serii: {chars}.",
        "en": "The licence serial contains characters no serial uses: {chars}.",
    },
    "serial_length": {
        "ro": "Seria de licență are 17 caractere (fără cratime); ați introdus {count}.",
        "en": "A licence serial has 17 characters (without dashes); you entered {count}.",
    },
    "serial_typo": {
        "ro": "Seria de licență are o greșeală de tastare: caracterul de control nu "
              "corespunde. Verificați-o pe Convenție.",
        "en": "The licence serial has a typo: its check character does not match. Check it "
              "against the agreement (Conventie).",
    },
    "serial_malformed": {
        "ro": "Seria de licență nu este validă ({detail}).",
        "en": "The licence serial is not valid ({detail}).",
    },
    # -- activation ------------------------------------------------------------------
    "activation_ok": {
        "ro": "Activare reușită: utilizator {user}, furnizor {provider} (CUI {cui}), {house}.",
        "en": "Activated: user {user}, provider {provider} (CUI {cui}), {house}.",
    },
    "activation_forbidden": {
        "ro": "Seria de licență nu este valabilă la această casă de asigurări.",
        "en": "The licence serial is not valid at this insurance house.",
    },
    "activation_invalid": {
        "ro": "Cererea de activare a fost respinsă: {detail}",
        "en": "The activation request was rejected: {detail}",
    },
    "activation_unreachable": {
        "ro": "Serverul de activare nu poate fi contactat ({server}).",
        "en": "The activation server cannot be reached ({server}).",
    },
    "activation_failed": {
        "ro": "Activarea a eșuat (HTTP {status}).",
        "en": "Activation failed (HTTP {status}).",
    },
    "activation_saved": {
        "ro": "Activarea este păstrată în {path} (accesibil doar utilizatorului curent, 0600).",
        "en": "The activation is kept in {path} (readable by the current user only, 0600).",
    },
    "activation_exists": {
        "ro": "Există deja o activare ({user}): bifați „Reactivare baza de date curenta” "
              "pentru a o înlocui.",
        "en": "An activation exists already ({user}): tick \"Reactivare baza de date "
              "curenta\" to replace it.",
    },
    "house_invalid": {
        "ro": "Nu există casa de asigurări „{text}”: alegeți un număr din listă sau un cod (ex. B, CJ).",
        "en": "No insurance house \"{text}\": choose a number from the list or a code (e.g. B, CJ).",
    },
    "file_permissions_fixed": {
        "ro": "Atenție: {path} era accesibil altor utilizatori; permisiunile au fost restrânse la 0600.",
        "en": "Warning: {path} was readable by other users; its permissions were narrowed to 0600.",
    },
    # -- the wizard ------------------------------------------------------------------
    "wizard_title": {
        "ro": "Administrare / Activare",
        "en": "Administrare / Activare (activation)",
    },
    "reactivate_box": {
        "ro": "Reactivare baza de date curenta",
        "en": "Reactivare baza de date curenta (reactivate the current database)",
    },
    "tick_prompt": {
        "ro": "x = bifeaza/debifeaza, Enter = Inainte, q = Renunta: ",
        "en": "x = tick/untick, Enter = Inainte (next), q = Renunta (cancel): ",
    },
    "serial_prompt": {
        "ro": "Serie de licenta (XXXXX-XXXX-XXXX-XXXX, q = Renunta): ",
        "en": "Serie de licenta, licence serial (XXXXX-XXXX-XXXX-XXXX, q = cancel): ",
    },
    "house_title": {"ro": "Casa de asigurari:", "en": "Casa de asigurari (insurance house):"},
    "house_prompt": {
        "ro": "Casa de asigurari (numarul din lista sau codul, ex. B; q = Renunta): ",
        "en": "Casa de asigurari (number in the list or code, e.g. B; q = cancel): ",
    },
    "summary": {
        "ro": "Serie de licenta: {serial}\nCasa de asigurari: {house}",
        "en": "Serie de licenta (licence serial): {serial}\nCasa de asigurari (house): {house}",
    },
    "confirm_prompt": {
        "ro": "Enter = Inainte, i = Inapoi, q = Renunta: ",
        "en": "Enter = Inainte (next), i = Inapoi (back), q = Renunta (cancel): ",
    },
    "contacting": {"ro": "Se trimite cererea de activare la {server}...",
                   "en": "Sending the activation request to {server}..."},
    "cancelled": {"ro": "Activare anulată.", "en": "Activation cancelled."},
    "connect_cancelled": {"ro": "Conectare anulată.", "en": "Connection cancelled."},
    # -- connect / status ------------------------------------------------------------
    "passphrase_prompt": {"ro": "Parola pentru {file}: ", "en": "Passphrase for {file}: "},
    "passphrase_wrong": {
        "ro": "Parola nu deschide {file}.",
        "en": "The passphrase does not open {file}.",
    },
    "credentials_unusable": {
        "ro": "Certificatul sau cheia nu pot fi folosite: {detail}",
        "en": "The certificate or key cannot be used: {detail}",
    },
    "certificate_info": {
        "ro": "Certificat: {subject}, emis de {issuer}, valabil până la {until}.",
        "en": "Certificate: {subject}, issued by {issuer}, valid until {until}.",
    },
    "status_activated": {
        "ro": "Activat: {user} la {house}\nFurnizor: {provider} (CUI {cui})\n"
              "Serie de licenta: {serial}\nActivat la: {at}\nFișier: {path}",
        "en": "Activated: {user} at {house}\nProvider: {provider} (CUI {cui})\n"
              "Licence serial: {serial}\nActivated at: {at}\nFile: {path}",
    },
}


def resolve_language(choice: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``--lang`` when given; else the locale (LC_ALL, LC_MESSAGES, LANG, in POSIX
    order): English for ``en*``, Romanian otherwise."""
    if choice:
        return choice if choice in LANGUAGES else DEFAULT_LANGUAGE
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "").strip()
        if value:
            return "en" if value.lower().startswith("en") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


class Messages:
    """The catalogue in one language: ``messages("online", house=..., user=...)``."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **params: object) -> str:
        return _CATALOGUE[key][self.language].format(**params)

    def reason(self, reason: str | None, /, **params: object) -> str:
        """The text for an offline reason, the server's or the client's own; an unknown
        reason is named rather than hidden."""
        if reason in SERVER_REASONS or reason in LOCAL_REASONS:
            return _CATALOGUE[reason][self.language].format_map(_Lenient(params))
        return self("unknown_reason", reason=reason or "?")


class _Lenient(dict):
    """Fills a placeholder the caller could not know (e.g. no house yet) with '?'."""

    def __missing__(self, key: str) -> str:
        return "?"


def catalogue() -> Mapping[str, Mapping[str, str]]:
    """Every text, by key and language (read-only use: tests and translators)."""
    return _CATALOGUE
