"""The Casa de asigurari list of the window: its labels and choosing by typing."""
from __future__ import annotations

import pytest

from clients.desktop.choices import TypeAhead, find_house, house_choice_label
from clients.desktop.texts_window import mnemonic
from shared.houses import HOUSES, house


def test_every_house_is_labelled_by_code_county_and_short_name():
    labels = [house_choice_label(h) for h in HOUSES]
    assert len(labels) == 43 == len(set(labels))
    assert house_choice_label(house("B")) == "B \u2014 București (CAS-B)"
    assert house_choice_label(house("OPSNAJ")).startswith("OPSNAJ \u2014 Casa Asigurărilor")
    assert max(len(label) for label in labels) <= 60


@pytest.mark.parametrize("typed, code", [("B", "B"), ("b", "B"), ("bc", "BC"), ("CJ", "CJ"),
                                         ("iasi", "IS"), ("Iași", "IS"), ("ops", "OPSNAJ"),
                                         ("vâlcea", "VL"), ("  cluj ", "CJ")])
def test_a_code_typed_whole_wins_else_a_prefix_of_a_code_or_a_county(typed, code):
    assert find_house(typed).code == code


@pytest.mark.parametrize("typed", ["", "   ", "xyz", "cnas", "z" * 10_000])
def test_nothing_else_is_a_house(typed):
    assert find_house(typed) is None


def test_type_ahead_joins_quick_keys_and_a_pause_starts_again():
    keys = TypeAhead(pause_ms=1000)
    assert keys.key("c", 0).code == "CS"
    assert keys.key("j", 300).code == "CJ"
    assert keys.key("b", 5000).code == "B"  # after a pause: a new search
    assert keys.key("\t", 5100) is None and keys.key("", 5200) is None  # not letters


def test_a_marked_letter_is_taken_out_of_a_label():
    assert mnemonic("&Activare…") == ("Activare…", 0)
    assert mnemonic("< Inap&oi") == ("< Inapoi", 6)
    assert mnemonic("Deconectare") == ("Deconectare", -1)
    assert mnemonic("trailing&") == ("trailing&", -1)


@pytest.mark.parametrize("choice", HOUSES, ids=lambda h: h.code)
def test_every_house_is_found_by_its_code_and_by_its_countys_name(choice):
    assert find_house(choice.code) == choice
    if choice.county:  # a county sharing a prefix with another's code is still reachable whole
        assert find_house(choice.county) == choice
