"""The licence serial in four boxes (5-4-4-4), as the window's wizard shows it. Pure:
what the boxes hold after a keystroke or a paste, where the caret goes, and what the
line under them says. The Tk widget (:mod:`.gui.serialentry`) only applies the answers.

The four boxes behave as one field cut into groups: whatever is typed or pasted in any
box is read together with the others, the separators people type (dashes, blanks) are
dropped, letters are shown in capitals, and the text flows into the next box as one
fills. So ``f8e73-mvxy-fykl-itgk`` pasted into the first box fills all four, as does the
same serial typed without dashes. Whether the serial is good is always
:func:`clients.desktop.activation.read_serial`'s decision, the one the terminal uses.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from clients.desktop.activation import SerialRejected, read_serial
from shared.license import GROUPS, LENGTH

# Kept beyond the 17 symbols so that a serial too long is said to be too long rather
# than silently cut to a wrong 17; beyond this, input is not a serial at all.
MAX_SYMBOLS = LENGTH + 8
# What people put between the groups; the boxes are the groups, so these are dropped.
# (The same set as shared.license's separators.)
_SEPARATORS = frozenset(" \t\r\n\u00a0-_\u2010\u2011\u2012\u2013\u2014\u2212")

EMPTY, INCOMPLETE, VALID, REJECTED = "empty", "incomplete", "valid", "rejected"


@dataclass(frozen=True)
class Flow:
    """The boxes after an edit, and where the caret goes (box index, position in it)."""

    boxes: tuple[str, str, str, str]
    box: int
    caret: int


@dataclass(frozen=True)
class Verdict:
    """What the line under the boxes says: ``kind`` is one of EMPTY, INCOMPLETE
    (``count`` symbols so far), VALID (``serial`` canonical) or REJECTED (``key`` and
    ``params`` name the message, as for the terminal)."""

    kind: str
    serial: str = ""
    count: int = 0
    key: str = ""
    params: dict = field(default_factory=dict)


def _symbols(text: str) -> list[str]:
    out = []
    for char in text:
        if char in _SEPARATORS:
            continue
        upper = char.upper()
        out.append(upper if len(upper) == 1 else char)  # 'ß'.upper() is two letters
    return out


def split(symbols: Sequence[str]) -> tuple[str, str, str, str]:
    """Symbols into the four boxes: 5, 4, 4, and the rest in the last (a serial too
    long shows as too long instead of losing characters)."""
    text = "".join(symbols[:MAX_SYMBOLS])
    a, b, c = GROUPS[0], GROUPS[0] + GROUPS[1], GROUPS[0] + GROUPS[1] + GROUPS[2]
    return text[:a], text[a:b], text[b:c], text[c:]


def reflow(boxes: Sequence[str], box: int, caret: int) -> Flow:
    """The boxes after the person edited box ``box`` leaving the caret at ``caret``.

    The caret keeps its place among the symbols; at the end of a full box it moves to
    the start of the next, so typing runs on from box to box.
    """
    before = 0  # symbols before the caret
    symbols: list[str] = []
    for index, text in enumerate(boxes):
        if index == box:
            before = len(symbols) + len(_symbols(text[:caret]))
        symbols.extend(_symbols(text))
    flowed = split(symbols)
    before = min(before, sum(len(b) for b in flowed))
    return Flow(flowed, *locate(flowed, before))


def locate(boxes: Sequence[str], symbol_index: int) -> tuple[int, int]:
    """(box, caret) for a position counted in symbols over all boxes."""
    start = 0
    for index, width in enumerate(GROUPS[:-1]):
        if symbol_index < start + width or len(boxes[index]) < width:
            return index, max(0, min(symbol_index - start, len(boxes[index])))
        start += width
    return len(GROUPS) - 1, max(0, symbol_index - start)


def backspace(boxes: Sequence[str], box: int) -> Flow:
    """Backspace with the caret at the start of ``box``: the symbol before it goes,
    from the previous box, as it would in a single field."""
    if box == 0:
        return Flow(tuple(boxes), 0, 0)
    symbols = _symbols("".join(boxes))
    at = sum(len(b) for b in boxes[:box])
    del symbols[at - 1]
    flowed = split(symbols)
    return Flow(flowed, *locate(flowed, at - 1))


def assess(boxes: Sequence[str]) -> Verdict:
    """What the boxes hold: nothing, part of a serial, a valid serial, or a refusal
    said at once (a typo caught by the check character, a foreign character)."""
    text = "".join(boxes)
    count = len(_symbols(text))
    try:
        return Verdict(VALID, serial=read_serial(text), count=count)
    except SerialRejected as rejected:
        if rejected.key == "serial_empty":
            return Verdict(EMPTY)
        if rejected.key == "serial_length" and count < LENGTH:
            return Verdict(INCOMPLETE, count=count)
        return Verdict(REJECTED, count=count, key=rejected.key, params=dict(rejected.params))
