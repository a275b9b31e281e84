"""The words of *Activare* and of the terminal's prompts: the licence serial refused
before anything is sent, keygen's answers, the wizard's steps, passphrases and status.

The screen labels the seed names (*Reactivare baza de date curenta*, *Inainte*, *Casa de
asigurari*, *Serie de licenta*) are spelled as the seed's screens spell them, without
diacritics, so that a provider following the seed's how-to finds them; sentences are
written in proper Romanian.
"""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
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
    "activation_throttled": {
        "ro": "Prea multe încercări nereușite: încercați din nou peste {seconds} s.",
        "en": "Too many failed attempts: try again in {seconds} s.",
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
    },}
