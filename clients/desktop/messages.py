"""What the provider reads, in Romanian (the default) and English.

Every text has both languages with the same ``{placeholders}`` (a unit test holds the
catalogue to that). The texts live by subject: :mod:`.texts_online` (the semaphore and
every offline reason), :mod:`.texts_activation` (the serial, keygen's answers, the
terminal's prompts), :mod:`.texts_window` (the window's labels); one key is defined once.

The reasons the online channel gives (``reason`` in its 401 answers) each have a text of
their own, as do the client's own reasons for being offline (house unreachable, TLS
refused, untrusted server): the status bar never shows a bare code it knows, and names
one it does not.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from clients.desktop import texts_activation, texts_online, texts_window
from clients.desktop.texts_online import LOCAL_REASONS, SERVER_REASONS, SESSION_REASONS

__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "SERVER_REASONS", "SESSION_REASONS",
           "LOCAL_REASONS", "Messages", "resolve_language", "catalogue"]

LANGUAGES = ("ro", "en")
DEFAULT_LANGUAGE = "ro"


def _merged(*parts: Mapping[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for part in parts:
        twice = merged.keys() & part.keys()
        if twice:  # one key, one text: a second definition would silently win
            raise RuntimeError(f"texts defined twice: {sorted(twice)}")
        merged.update(part)
    return merged


_CATALOGUE = _merged(texts_online.TEXTS, texts_activation.TEXTS, texts_window.TEXTS)


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
