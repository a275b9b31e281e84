"""The four serial boxes of the window's wizard, without Tk: text flowing between the
boxes, the caret, a paste into the first box, and the line under them."""
from __future__ import annotations

import pytest

from clients.desktop.serialbox import (EMPTY, INCOMPLETE, MAX_SYMBOLS, REJECTED, VALID, Flow,
                                       assess, backspace, locate, reflow, split)
from shared.license import ALPHABET, generate

SERIAL = generate(randbits=lambda n: 0x5A5A5_A5A5A_5A5A5_A5A5A)  # a valid XXXXX-XXXX-XXXX-XXXX
GROUPS = tuple(SERIAL.split("-"))


def test_a_serial_pasted_into_the_first_box_fills_all_four():
    flow = reflow([SERIAL, "", "", ""], box=0, caret=len(SERIAL))
    assert flow == Flow(GROUPS, 3, 4)  # the caret after the last symbol
    assert assess(flow.boxes).serial == SERIAL


@pytest.mark.parametrize("typed", [SERIAL.lower(), SERIAL.replace("-", ""), SERIAL.replace("-", " "),
                                   f"  {SERIAL.lower().replace('-', '')}\n", SERIAL.replace("-", "\u2013")])
def test_lower_case_blanks_missing_or_typographic_dashes_all_land_in_the_groups(typed):
    flow = reflow([typed, "", "", ""], 0, len(typed))
    assert flow.boxes == GROUPS
    assert assess(flow.boxes).kind == VALID


def test_typing_runs_on_from_a_full_box_to_the_next():
    flow = reflow([GROUPS[0], "", "", ""], 0, 5)
    assert (flow.box, flow.caret) == (1, 0)
    flow = reflow([GROUPS[0], GROUPS[1][:2], "", ""], 1, 2)
    assert (flow.box, flow.caret) == (1, 2)


def test_a_character_typed_into_a_full_box_pushes_the_rest_along():
    boxes = [GROUPS[0], "X" + GROUPS[1], GROUPS[2], GROUPS[3]]  # typed at the start of box 2
    flow = reflow(boxes, 1, 1)
    assert "".join(flow.boxes) == GROUPS[0] + "X" + "".join(GROUPS[1:])
    assert [len(b) for b in flow.boxes] == [5, 4, 4, 5]  # the overflow stays, to be refused
    assert (flow.box, flow.caret) == (1, 1)
    assert assess(flow.boxes).key == "serial_length"


def test_a_dash_typed_between_groups_is_dropped_and_the_caret_stays():
    flow = reflow([GROUPS[0], "-", "", ""], 1, 1)
    assert flow.boxes == (GROUPS[0], "", "", "") and (flow.box, flow.caret) == (1, 0)


def test_backspace_at_the_start_of_a_box_deletes_from_the_box_before():
    flow = backspace(list(GROUPS), 2)
    assert "".join(flow.boxes) == (GROUPS[0] + GROUPS[1][:-1] + GROUPS[2] + GROUPS[3])
    assert (flow.box, flow.caret) == (1, 3)
    assert backspace(list(GROUPS), 0) == Flow(GROUPS, 0, 0)


def test_what_is_kept_is_bounded():
    flow = reflow(["A" * 10_000, "", "", ""], 0, 10_000)
    assert sum(len(b) for b in flow.boxes) == MAX_SYMBOLS


def test_split_and_locate_agree():
    boxes = split(list(SERIAL.replace("-", "")))
    assert boxes == GROUPS
    assert [locate(boxes, i) for i in (0, 4, 5, 9, 13, 17)] == [(0, 0), (0, 4), (1, 0), (2, 0), (3, 0), (3, 4)]


def test_the_line_under_the_boxes_says_what_they_hold():
    assert assess(["", "", "", ""]).kind == EMPTY
    partial = assess([GROUPS[0], GROUPS[1][:2], "", ""])
    assert (partial.kind, partial.count) == (INCOMPLETE, 7)
    typo = list(GROUPS)
    typo[1] = ALPHABET[(ALPHABET.index(typo[1][0]) + 1) % 32] + typo[1][1:]
    assert (assess(typo).kind, assess(typo).key) == (REJECTED, "serial_typo")  # at once, offline
    foreign = assess(["AB@", "", "", ""])  # a foreign character needs no 17 symbols to be said
    assert (foreign.kind, foreign.key) == (REJECTED, "serial_characters")
    assert "'@'" in foreign.params["chars"]


def test_look_alike_letters_are_read_as_the_serials_symbols():
    # O is 0, I and L are 1, U is V: shown as typed, checked as the serial.
    typed = SERIAL.replace("0", "O").replace("1", "l")
    assert assess(reflow([typed, "", "", ""], 0, len(typed)).boxes).serial == SERIAL
