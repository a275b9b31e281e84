"""Every text the desktop shows exists in Romanian and English, and every reason the
online channel (or the client itself) gives has its own words."""
from __future__ import annotations

import string

import pytest

from clients.desktop.messages import (LANGUAGES, LOCAL_REASONS, SERVER_REASONS, Messages,
                                      catalogue, resolve_language)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(catalogue()))
def test_each_text_has_both_languages_with_the_same_placeholders(key):
    texts = catalogue()[key]
    assert set(texts) == set(LANGUAGES)
    assert _placeholders(texts["ro"]) == _placeholders(texts["en"])
    assert texts["ro"].strip() and texts["en"].strip()


@pytest.mark.parametrize("reason", SERVER_REASONS + LOCAL_REASONS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_reason_has_its_own_message(reason, language):
    text = Messages(language).reason(reason, user="12433636_CAS-B", house="CAS-B",
                                     server="https://127.0.0.1:8443", detail="x", status=503,
                                     seconds=60)
    assert text != Messages(language)("unknown_reason", reason=reason)
    assert "{" not in text


def test_the_reasons_a_provider_asked_about_say_what_happened():
    ro, en = Messages("ro"), Messages("en")
    assert "nu este înregistrat la această casă" in ro.reason("certificate_not_registered", house="CAS-B", user="u")
    assert "suspendat" in ro.reason("certificate_suspended", house="CAS-B")
    assert "expirat" in ro.reason("certificate_expired")
    assert "înlocuită" in ro.reason("key_replaced")
    assert "nu poate fi contactată" in ro.reason("unreachable", server="s")
    assert "not registered at this insurance house" in en.reason("certificate_not_registered", house="CAS-B", user="u")
    assert "suspended" in en.reason("certificate_suspended", house="CAS-B")
    assert "expired" in en.reason("certificate_expired")
    assert "replaced" in en.reason("key_replaced")
    assert "cannot be reached" in en.reason("unreachable", server="s")


def test_a_reason_the_client_does_not_know_is_named_not_hidden():
    assert "session_frozen" in Messages("en").reason("session_frozen")


def test_a_missing_detail_does_not_break_the_message():
    assert "?" in Messages("ro").reason("certificate_not_registered")


@pytest.mark.parametrize("choice, env, expected", [
    ("en", {"LANG": "ro_RO.UTF-8"}, "en"),
    (None, {"LANG": "en_US.UTF-8"}, "en"),
    (None, {"LANG": "ro_RO.UTF-8"}, "ro"),
    (None, {"LANG": "C.UTF-8"}, "ro"),
    (None, {}, "ro"),
    (None, {"LC_ALL": "ro_RO.UTF-8", "LANG": "en_GB.UTF-8"}, "ro"),
    (None, {"LC_MESSAGES": "en_GB.UTF-8", "LANG": "ro_RO.UTF-8"}, "en"),
])
def test_the_language_is_the_option_else_the_locale_else_romanian(choice, env, expected):
    assert resolve_language(choice, env) == expected
