"""Choosing the *Casa de asigurari* from the window's list: how each house is named in
it, and type-ahead (a few letters typed while the list has the focus pick the house),
so that the list works from the keyboard as well as with the mouse. Pure; the Tk
combobox (:mod:`.gui.wizard`) only applies the answers."""
from __future__ import annotations

import unicodedata

from shared.houses import HOUSES, House

TYPE_AHEAD_PAUSE_MS = 1000  # a longer pause between keys starts a new search, as in lists
MAX_TYPED = 32  # longer than any code or county name


def house_choice_label(choice: House) -> str:
    """How a house appears in the window's list: ``B — București (CAS-B)``; a house
    without a county by its name, shortened to fit the list."""
    if choice.county:
        return f"{choice.code} \u2014 {choice.county} ({choice.short})"
    name = choice.name
    if len(name) > 44:  # at a word's end
        name = name[:44].rsplit(" ", 1)[0].rstrip(" ,") + "\u2026"
    return f"{choice.code} \u2014 {name}"


def find_house(typed: str) -> House | None:
    """The house a person means by the first letters typed in the list: a code typed
    whole first (``B`` is Bucharest, not Bacău), else the first code or county name
    that begins so (diacritics ignored: ``iasi`` finds Iași)."""
    key = _plain(typed.strip())[:32]
    if not key:
        return None
    for candidate in HOUSES:
        if candidate.code.lower() == key:
            return candidate
    for candidate in HOUSES:
        if candidate.code.lower().startswith(key):
            return candidate
    for candidate in HOUSES:
        if _plain(candidate.county or candidate.name).startswith(key):
            return candidate
    return None


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class TypeAhead:
    """Letters typed in quick succession, searched with :func:`find_house`."""

    def __init__(self, pause_ms: int = TYPE_AHEAD_PAUSE_MS) -> None:
        self._pause = pause_ms
        self._typed = ""
        self._last = None

    def key(self, char: str, time_ms: int) -> House | None:
        """A printable key typed at ``time_ms`` (the event's time): the house meant by
        what was typed so far, or None."""
        if not char or not char.isprintable():
            return None
        if self._last is None or not 0 <= time_ms - self._last <= self._pause:
            self._typed = ""
        self._last = time_ms
        self._typed = (self._typed + char)[:MAX_TYPED]
        return find_house(self._typed)
