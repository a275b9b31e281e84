"""The window's words (``python -m clients.desktop gui``): menus, the Activare wizard's
steps, the certificate dialog, the panels. The seed's screen words stay as the seed
spells them (*Administrare*, *Activare*, *Inainte*, *Casa de asigurari*, ...), in both
languages, with the English gloss beside them, as in the terminal.

A ``&`` marks the letter Alt (menus) or the keyboard (buttons) reaches an item by;
:func:`mnemonic` takes it out and says where it was.
"""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    # -- the main window -------------------------------------------------------------
    "window_title": {"ro": "SIUI — aplicația furnizorului", "en": "SIUI — provider's desktop"},
    "menu_admin": {"ro": "&Administrare", "en": "&Administrare"},
    "menu_activate": {"ro": "&Activare…", "en": "&Activare (activation)…"},
    "menu_connect": {"ro": "&Conectare online…", "en": "&Conectare online (connect)…"},
    "menu_disconnect": {"ro": "&Deconectare", "en": "&Disconnect"},
    "menu_quit": {"ro": "&Ieșire", "en": "&Quit"},
    "panel_activation": {"ro": "Activare", "en": "Activation"},
    "field_user": {"ro": "Utilizator:", "en": "User:"},
    "field_house": {"ro": "Casa de asigurari:", "en": "Insurance house:"},
    "field_provider": {"ro": "Furnizor:", "en": "Provider:"},
    "field_activated_at": {"ro": "Activat la:", "en": "Activated at:"},
    "provider_value": {"ro": "{name} (CUI {cui})", "en": "{name} (CUI {cui})"},
    "panel_certificate": {"ro": "Certificat digital", "en": "Digital certificate"},
    "field_subject": {"ro": "Titular:", "en": "Holder:"},
    "field_issuer": {"ro": "Emis de:", "en": "Issued by:"},
    "field_valid_until": {"ro": "Valabil până la:", "en": "Valid until:"},
    "no_certificate": {
        "ro": "Niciun certificat ales: Administrare / Conectare online.",
        "en": "No certificate chosen yet: Administrare / Conectare online.",
    },
    "connecting": {"ro": "Se conectează la {server}…", "en": "Connecting to {server}…"},
    # -- the Activare wizard ---------------------------------------------------------
    "wizard_window_title": {"ro": "Activare", "en": "Activare (activation)"},
    "wizard_step": {"ro": "Pasul {step} din 3", "en": "Step {step} of 3"},
    "wizard_existing": {
        "ro": "Activarea curentă: {user} ({house}). Bifați caseta pentru a o înlocui.",
        "en": "Current activation: {user} ({house}). Tick the box to replace it.",
    },
    "wizard_none": {
        "ro": "Aplicația nu este activată încă pe acest calculator.",
        "en": "The application is not activated on this computer yet.",
    },
    "button_next": {"ro": "&Inainte >", "en": "&Inainte (next) >"},
    "button_back": {"ro": "< Inap&oi", "en": "< Inap&oi (back)"},
    "button_cancel": {"ro": "&Renunta", "en": "&Renunta (cancel)"},
    "button_close": {"ro": "In&chide", "en": "In&chide (close)"},
    "label_serial": {"ro": "Serie de licenta:", "en": "Serie de licenta (licence serial):"},
    "serial_hint": {
        "ro": "Patru grupe de caractere, ca pe Convenție; seria întreagă se poate lipi "
              "în prima căsuță.",
        "en": "Four groups of characters, as on the agreement; the whole serial may be "
              "pasted into the first box.",
    },
    "serial_incomplete": {"ro": "{count} din 17 caractere", "en": "{count} of 17 characters"},
    "serial_valid": {
        "ro": "Seria de licență este corectă: {serial}",
        "en": "The licence serial is well formed: {serial}",
    },
    "label_house": {"ro": "Casa de asigurari:", "en": "Casa de asigurari (insurance house):"},
    "house_hint": {
        "ro": "Alegeți din listă sau tastați codul (ex. B, CJ) ori numele județului.",
        "en": "Choose from the list or type the code (e.g. B, CJ) or the county's name.",
    },
    "house_missing": {
        "ro": "Alegeți casa de asigurări din listă.",
        "en": "Choose the insurance house from the list.",
    },
    # -- the certificate dialog ------------------------------------------------------
    "connect_window_title": {"ro": "Conectare online", "en": "Conectare online (connect)"},
    "connect_intro": {
        "ro": "Certificatul digital al furnizorului, înregistrat la casa de asigurări:",
        "en": "The provider's digital certificate, registered at the insurance house:",
    },
    "choice_p12": {"ro": "Fișier PKCS#12 (.p12, .pfx)", "en": "PKCS#12 file (.p12, .pfx)"},
    "choice_pem": {"ro": "Certificat și cheie PEM", "en": "PEM certificate and key"},
    "field_p12": {"ro": "Fișier:", "en": "File:"},
    "field_cert": {"ro": "Certificat:", "en": "Certificate:"},
    "field_key": {"ro": "Cheie privată:", "en": "Private key:"},
    "field_passphrase": {"ro": "Parola:", "en": "Passphrase:"},
    "button_browse": {"ro": "Alege…", "en": "Browse…"},
    "button_connect": {"ro": "&Conectare", "en": "&Connect"},
    "pick_p12_title": {"ro": "Alegeți fișierul PKCS#12", "en": "Choose the PKCS#12 file"},
    "pick_cert_title": {"ro": "Alegeți certificatul", "en": "Choose the certificate"},
    "pick_key_title": {"ro": "Alegeți cheia privată", "en": "Choose the private key"},
    "files_all": {"ro": "Toate fișierele", "en": "All files"},
    "files_missing": {
        "ro": "Alegeți fișierul PKCS#12, sau certificatul și cheia.",
        "en": "Choose the PKCS#12 file, or the certificate and its key.",
    },
    "loading_certificate": {"ro": "Se citește certificatul…", "en": "Reading the certificate…"},
}


def mnemonic(label: str) -> tuple[str, int]:
    """``"&Activare…"`` -> ``("Activare…", 0)``: the label without its ``&`` and the
    index of the letter it marked (-1 when none)."""
    index = label.find("&")
    if index == -1 or index == len(label) - 1:
        return label, -1
    return label[:index] + label[index + 1:], index
