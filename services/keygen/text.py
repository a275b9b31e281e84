"""Which characters a provider's text may hold: one rule for the form and the agreement.

A provider's name, representative, trade-register number ... are printed on the signed
agreement. Some characters draw nothing yet change what is seen or copied:

- bidirectional controls (U+202A-202E embeddings and overrides, U+2066-2069 isolates,
  U+200E/U+200F marks, U+061C) reorder the text around them, so "SC ALFA SRL" stored
  with a U+202E can be shown as something else;
- zero-width and invisible characters (U+200B-200D, U+2060, U+FEFF, the soft hyphen
  U+00AD, fillers, variation selectors) make two texts that look identical differ, or
  hide a difference;
- control characters (NUL, C0, C1), line and paragraph separators break the line they
  are in; lone UTF-16 surrogates (a JSON ``"\\ud800"``) are not characters at all;
  private-use and unassigned code points have no agreed appearance.

None of them belongs in a provider's record, so :func:`problem_in` refuses them with a
message an operator can act on, and the agreement renderer refuses to draw them.
Pure functions.
"""
from __future__ import annotations

import unicodedata

__all__ = ["BIDI_CONTROLS", "INVISIBLE", "CONTROL_MESSAGE", "problem_in", "first_unsafe",
           "field_label"]

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F)))
    + "".join(map(chr, range(0x2066, 0x206A))))
# Format characters (Unicode category Cf: the zero-width ones, the soft hyphen, U+FEFF,
# invisible operators, tags ...) are all refused by category; these are the invisible
# characters of other categories.
INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0"  # CGJ, Hangul fillers, Khmer, blank Braille
    + "".join(map(chr, range(0xFE00, 0xFE10)))  # variation selectors
    + "".join(map(chr, range(0xE0100, 0xE01F0))))  # variation selectors supplement
# The console translates this one (services/console/texts.py): keep its wording.
CONTROL_MESSAGE = "must not contain control characters"


def _named(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"


def _why(c: str) -> str | None:
    """Why ``c`` may not be stored or printed, or None when it may."""
    category = unicodedata.category(c)
    if category == "Cs":
        return (f"contains an invalid character ({_named(c)}, half of a UTF-16 pair): "
                "retype the text")
    if category in ("Cc", "Zl", "Zp"):
        return CONTROL_MESSAGE
    if c in BIDI_CONTROLS:
        return (f"contains an invisible text-direction control ({_named(c)}) that can make "
                "the printed agreement show the text differently from what is stored: "
                "delete it (retype the text around it)")
    if category == "Cf" or c in INVISIBLE:
        return (f"contains an invisible character ({_named(c)}, often pasted from a web page "
                "or a document) that can hide a difference in the printed agreement: delete "
                "it (retype the text around it)")
    if category == "Co":
        return f"contains a private-use character ({_named(c)}) that has no agreed appearance"
    if category == "Cn":
        return f"contains a code point that is not a character ({_named(c)})"
    return None


def first_unsafe(text: str) -> tuple[str, str] | None:
    """The first character of ``text`` that may not be stored or printed, and why."""
    for c in text:
        # ASCII letters, digits and punctuation are the usual case: skip the lookup.
        if " " <= c <= "~":
            continue
        why = _why(c)
        if why is not None:
            return c, why
    return None


def problem_in(text: str) -> str | None:
    """Why ``text`` cannot be a provider's text (an English message naming the
    character), or None when it can."""
    found = first_unsafe(text)
    return found[1] if found else None


def field_label(name: object) -> str:
    """A field name a client sent, safe to echo in an answer: itself when it is short
    printable ASCII (every real field name is), else its escaped beginning."""
    text = str(name)
    if len(text) <= 40 and text.isascii() and text.isprintable():
        return text
    return ascii(text[:40])[1:-1]
