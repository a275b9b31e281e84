"""What the clerk reads: dates as the seed writes them (dd-mm-yyyy) and the services'
English messages in Romanian.

The services answer in English (problem+json ``detail`` and ``errors``); the common
messages are translated here, by pattern, so that a field error reads "este obligatoriu"
next to the field. A message without a translation is shown as the service wrote it:
an untranslated message is better than a hidden one.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

# Romania's clock: what the clerk's wall clock says, summer time included.
LOCAL_TZ = ZoneInfo("Europe/Bucharest")
DATE_FORMAT = "%d-%m-%Y"
_DMY = re.compile(r"\s*(\d{1,2})[-./](\d{1,2})[-./](\d{4})\s*")
BAD_DATE = "data trebuie scrisa zz-ll-aaaa, de exemplu 29-11-2010"


def _parse_instant(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def show_date(value: str | None) -> str:
    """An ISO date or date-time from the API as dd-mm-yyyy ("" for none)."""
    if not value:
        return ""
    if len(value) == 10:
        try:
            return date.fromisoformat(value).strftime(DATE_FORMAT)
        except ValueError:
            return value
    moment = _parse_instant(value)
    return moment.astimezone(LOCAL_TZ).strftime(DATE_FORMAT) if moment else value


def show_time(value: str | None) -> str:
    """An ISO date-time from the API as dd-mm-yyyy HH:MM:SS, Romanian time ("" for none)."""
    if not value:
        return ""
    moment = _parse_instant(value)
    return moment.astimezone(LOCAL_TZ).strftime(DATE_FORMAT + " %H:%M:%S") if moment else value


def parse_date(text: str | None) -> str | None:
    """A date typed as dd-mm-yyyy (or dd.mm.yyyy, d/m/yyyy) as ISO for the API.

    None for an empty field; ValueError (with the Romanian message) for anything else.
    ISO dates are accepted too: they are what a browser's date picker sends.
    """
    if text is None or not text.strip():
        return None
    match = _DMY.fullmatch(text)
    try:
        if match:
            return date(int(match[3]), int(match[2]), int(match[1])).isoformat()
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ValueError(BAD_DATE) from None


# (pattern of the English message, Romanian); groups are substituted as \1.
_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"is required.*", "este obligatoriu"),
    (r"unknown field", "camp necunoscut"),
    (r"must be at most (\d+) characters", r"poate avea cel mult \1 caractere"),
    (r"must be at least (\d+) characters", r"trebuie sa aiba cel putin \1 caractere"),
    (r"must not contain control characters", "nu poate contine caractere de control"),
    (r"must be an ISO 8601 date.*", BAD_DATE),
    (r"is not a calendar date", "nu este o data calendaristica"),
    (r"must not be before 1900", "nu poate fi inainte de 1900"),
    (r"must not be before valid_from", "nu poate fi inainte de «Valabil de la»"),
    (r"is not a valid CUI: its check digit does not match",
     "nu este un CUI valid: cifra de control nu corespunde"),
    (r"is not a valid CNP: its check digit does not match",
     "nu este un CNP valid: cifra de control nu corespunde"),
    (r"is not a valid CNP.*", "nu este un CNP valid (13 cifre, cu data nasterii si judetul)"),
    (r"must be a CUI .* or a CNP", "trebuie sa fie un CUI (2-10 cifre, optional cu RO) sau un CNP"),
    (r"a CNP does not take the RO prefix", "un CNP nu are prefixul RO"),
    (r"must look like J40/10/3456.*", "trebuie sa arate ca J40/10/3456 (J/F/C, judet 1-52, numar, an)"),
    (r"is not a known organisation type", "nu este un tip organizatoric cunoscut"),
    (r"may hold only letters, digits and .*", "poate contine doar litere, cifre si . / _ -"),
    (r"must be an ISO 3166 alpha-3 country code.*", "trebuie sa fie un cod de tara din 3 litere, ca ROM"),
    (r"must be an ISO 4217 currency code.*", "trebuie sa fie un cod de valuta din 3 litere, ca RON"),
    (r"must be a fiscal attribute.*", "trebuie sa fie un atribut fiscal, ca RO"),
    (r"must be an integer.*|must be a whole number|not a number", "trebuie sa fie un numar intreg"),
    (r"must be between (\d+) and (\d+)", r"trebuie sa fie intre \1 si \2"),
    (r"CNAS does not register providers.*", "CNAS nu inregistreaza furnizori: alegeti o casa judeteana"),
    (r"is not (an insurance house|a house) code.*", "nu este codul unei case de asigurari"),
    (r"must be 3 to 64 characters.*",
     "3-64 caractere: o litera, apoi litere, cifre, «.», «_» sau «-»"),
    (r"must use at least (\d+) different characters", r"trebuie sa foloseasca cel putin \1 caractere diferite"),
    (r"is a well-known password.*", "este o parola cunoscuta; alegeti alta"),
    (r"must not contain the user name or employee code",
     "nu poate contine numele de utilizator sau codul salariatului"),
    (r"unknown role (.*)", r"rol necunoscut: \1"),
    (r"only CNAS users may hold national roles.*", "doar utilizatorii CNAS pot avea roluri nationale"),
    (r"external users have no roles or rights.*", "utilizatorii externi nu au roluri sau drepturi"),
    (r"no issuing authority (has this id|is registered with this DN)",
     "nu exista o autoritate emitenta inregistrata astfel"),
    (r"its issuer (.*) is not a registered issuing authority",
     r"emitentul \1 nu este o autoritate emitenta inregistrata"),
    (r"write the serial in decimal.*", "scrieti numarul serial in zecimal (12) sau hexazecimal cu 0x (0x0C)"),
    (r"a certificate serial is a positive number", "numarul serial trebuie sa fie pozitiv"),
    (r"this is a CA certificate.*", "este certificatul unei autoritati; inregistrati-l la Autoritati emitente"),
    (r"its signature does not verify.*", "semnatura nu corespunde autoritatii emitente inregistrate"),
    (r"it expired on (\S+)", "certificatul a expirat"),
    (r"not a PEM certificate.*|not a readable X.509 certificate.*|send exactly one certificate.*",
     "fisierul nu este un certificat X.509 (PEM sau DER)"),
    (r"not a CA certificate.*", "nu este certificatul unei autoritati de certificare (CA)"),
    (r"user (\S+) belongs to provider (\S+)", r"utilizatorul \1 apartine furnizorului \2"),
    (r".*is not an external user.*|.*no (such )?external user.*|.*unknown user.*",
     "nu exista un utilizator extern cu acest nume in casa dumneavoastra"),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), ro) for p, ro in _MESSAGES)

# Details of whole answers (problem+json "detail"), matched the same way.
_DETAILS: tuple[tuple[str, str], ...] = (
    # The one refusal of a login (unknown name, wrong password, or a lock of the account
    # from this address: the service does not say which, and neither may the page).
    (r"wrong user name or password \(after (\d+) wrong passwords in a row from one address, "
     r"that account cannot log in from there for (\d+) minutes\)",
     r"Nume de utilizator sau parola gresita. Dupa \1 parole gresite la rand de la aceeasi adresa, "
     r"contul nu mai poate fi folosit de la acea adresa timp de \2 minute."),
    (r"wrong user name or password", "Nume de utilizator sau parola gresita."),
    (r"too many login attempts from your address; try again in (\d+) s",
     r"Prea multe incercari de autentificare de la adresa dumneavoastra; reincercati peste \1 s."),
    (r"too many login attempts at the moment; try again in (\d+) s",
     r"Prea multe incercari de autentificare in acest moment; reincercati peste \1 s."),
    (r"too many logins are being checked at the moment; try again in (\d+) s",
     r"Serviciul de autentificare este ocupat; reincercati peste \1 s."),
    (r"this account is disabled.*", "Contul este dezactivat; adresati-va administratorului casei."),
    (r"some (fields|query parameters) are not acceptable", "Unele campuri nu sunt completate corect."),
    (r"the session (has expired|was ended).*|the token is not valid.*|log in.*",
     "Sesiunea a expirat; autentificati-va din nou."),
    (r"your roles do not include the right.*", "Rolurile dumneavoastra nu permit aceasta operatie."),
    (r"issuing authorities are managed by CNAS.*",
     "Autoritatile emitente sunt gestionate de CNAS; casa judeteana le poate doar consulta."),
    (r"you may only act for house (\S+)", r"Puteti lucra doar pentru casa \1."),
    (r"an issuing authority with the DN (.*) is already registered",
     r"O autoritate emitenta cu DN-ul \1 este deja inregistrata."),
    (r"serial (\S+) .* is already registered", r"Certificatul cu numarul serial \1 este deja inregistrat."),
    (r"the user name (\S+) is already taken", r"Numele de utilizator \1 este deja folosit."),
    (r"you cannot (delete|disable) your own account", "Nu va puteti sterge sau dezactiva propriul cont."),
    (r".*already has (an activation )?key.*", "Furnizorul are deja o cheie: folositi «Resetare parola»."),
    (r".*has no (activation )?key.*", "Furnizorul nu are inca o cheie: folositi «Generare parola»."),
    (r".*(same CUI|already registered|already exists).*", "Inregistrarea exista deja."),
    (r"the certificate cannot be registered.*", "Certificatul nu poate fi inregistrat."),
    (r"no such .*|not found", "Inregistrarea nu exista (sau apartine altei case)."),
)
_COMPILED_DETAILS = tuple((re.compile(p, re.IGNORECASE), ro) for p, ro in _DETAILS)


# The shipped roles and the rights, as the Roluri / Drepturi tabs name them.
ROLE_DESCRIPTIONS = {
    "national-admin": "Administrator CNAS: toate drepturile, in toate casele, inclusiv autoritatile emitente",
    "house-admin": "Administratorul casei: tot ce tine de casa, inclusiv conturile personalului si auditul",
    "house-operator": "Operator: furnizori, chei de activare, certificate utilizatori si suspendarea lor",
    "house-viewer": "Consultare: furnizori, utilizatori, certificate, autoritati emitente si Log OCSP",
}
RIGHT_LABELS = {
    "providers:read": "Furnizori: consultare", "providers:write": "Furnizori: modificare",
    "keys:issue": "Generare / Resetare parola", "users:read": "Utilizatori: consultare",
    "users:write": "Utilizatori: modificare", "certificates:read": "Certificate: consultare",
    "certificates:write": "Certificate: adaugare", "certificates:suspend": "Certificate: suspendare",
    "issuers:read": "Autoritati emitente: consultare", "issuers:write": "Autoritati emitente: adaugare (CNAS)",
    "ocsp-log:read": "Log OCSP",
    "ocsp-log:personal": "Log OCSP: adrese si utilizatori in clar", "audit:read": "Jurnal de audit",
}


def role_description(role: dict) -> str:
    """A role's description in Romanian (the service's own for a role we do not know)."""
    return ROLE_DESCRIPTIONS.get(role.get("name", ""), role.get("description", ""))


def _translate(text: str, table) -> str | None:
    for pattern, romanian in table:
        match = pattern.fullmatch(text.strip())
        if match:
            return match.expand(romanian)
    return None


def field_message(text: str) -> str:
    """One field error in Romanian (the original when no translation is known)."""
    return _translate(text, _COMPILED) or text


def field_errors(errors: dict[str, str] | None, form_names: dict[str, str] | None = None) -> dict[str, str]:
    """Every field error of a problem document, in Romanian, by field name; ``form_names``
    renames an API field to the form field that shows it (``certificate_pem`` → ``fisier``)."""
    form_names = form_names or {}
    return {form_names.get(name, name): field_message(str(message)) for name, message in (errors or {}).items()}


def detail_message(text: str | None, status: int) -> str:
    """A problem's ``detail`` in Romanian; a status-based sentence when unknown."""
    known = _translate(text or "", _COMPILED_DETAILS)
    if known:
        return known
    generic = {400: "Cererea nu a putut fi citita.", 401: "Autentificati-va din nou.",
               403: "Nu aveti dreptul sa faceti aceasta operatie.",
               404: "Inregistrarea nu exista (sau apartine altei case).",
               409: "Operatia nu este posibila in starea actuala.",
               422: "Unele campuri nu sunt completate corect.",
               429: "Prea multe incercari; reincercati peste putin timp.",
               502: "Un serviciu nu a raspuns corect; reincercati.",
               503: "Un serviciu nu este disponibil acum; reincercati peste putin timp."}.get(status)
    if generic and text:
        return f"{generic} ({text})"
    return generic or text or "Eroare."
