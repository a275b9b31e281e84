"""Which characters a provider's text may hold (services/keygen/text.py), and the JSON
numbers too long to read (services/keygen/bodies.py)."""
from __future__ import annotations

import pytest

from services.keygen.bodies import OverlongNumber, loads
from services.keygen.text import BIDI_CONTROLS, CONTROL_MESSAGE, field_label, first_unsafe, problem_in

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\u3164",
              "\ufe0f", "\U000e0041", "\u180e"]


@pytest.mark.parametrize("text", ["SC Clinica Sfânta Maria SRL", "CMI Dr. Țărănescu Ana", "J40/10/3456",
                                  "Str. Știrbei Vodă 12, et.\u00a02", "Ärztehaus Größe", "Ελληνικά",
                                  "Кириллица", "„Sfântul Ioan” – policlinică"])
def test_ordinary_text_is_accepted(text):
    assert problem_in(text) is None


@pytest.mark.parametrize("c", BIDI)
def test_bidirectional_controls_are_refused_with_their_name(c):
    why = problem_in(f"SC ALFA{c} SRL")
    assert why is not None and "text-direction" in why and f"U+{ord(c):04X}" in why
    assert "printed agreement" in why
    assert set(BIDI) == set(BIDI_CONTROLS)


@pytest.mark.parametrize("c", ZERO_WIDTH)
def test_zero_width_and_invisible_characters_are_refused(c):
    why = problem_in(f"SC ALFA{c} SRL")
    assert why is not None and "invisible character" in why and f"U+{ord(c):04X}" in why


def test_controls_surrogates_private_use_and_unassigned_code_points_are_refused():
    for c in ("\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\t"):
        assert problem_in(f"a{c}b") == CONTROL_MESSAGE, repr(c)
    assert "half of a UTF-16 pair" in problem_in("a\ud800b")
    assert "U+DFFF" in problem_in("\udfff")
    assert "private-use" in problem_in("a\ue000")
    assert "not a character" in problem_in("a\u0378")
    assert first_unsafe("ok \u202e then \u200b") == ("\u202e", problem_in("\u202e"))


def test_field_labels_are_safe_to_echo():
    assert field_label("print_order") == "print_order"
    assert field_label("a\x00b") == "a\\x00b"
    assert field_label("\ud800") == "\\ud800"
    assert field_label("x" * 1000) == "x" * 40


def test_a_number_too_long_to_read_is_kept_for_its_field_to_refuse():
    body = loads(b'{"print_order": 1' + b"0" * 5000 + b', "name": "x", "small": -12}')
    assert body is not None and isinstance(body["print_order"], OverlongNumber)
    assert body["print_order"].digits == 5001 and body["small"] == -12 and body["name"] == "x"
    assert loads(b'{"n": -' + b"9" * 5000 + b"}")["n"].negative
    assert loads(b'{"n": 1}') is None  # nothing over-long: read_json's answer stands
    assert loads(b'{"n": 1' + b"0" * 5000) is None  # still not JSON
    assert loads(b"[1" + b"0" * 5000 + b"]") is None  # not an object
