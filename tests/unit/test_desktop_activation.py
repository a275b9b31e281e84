"""The desktop's Activare, offline: reading a typed licence serial, choosing the house,
and the activation file private to the user."""
from __future__ import annotations

import json
import os
import stat

import pytest

from clients.desktop.activation import (
    Activation, ActivationStore, SerialRejected, choose_house, default_home, mask_serial,
    read_serial,
)
from shared.license import ALPHABET, generate

SERIAL = generate(randbits=lambda n: 0x1234_5678_9ABC_DEF0_1234)


def _typo(serial: str, position: int = 7) -> str:
    """The serial with one symbol replaced by another of the alphabet."""
    old = serial[position]
    new = ALPHABET[(ALPHABET.index(old) + 1) % len(ALPHABET)]
    return serial[:position] + new + serial[position + 1:]


def _rejected(text: str) -> SerialRejected:
    with pytest.raises(SerialRejected) as caught:
        read_serial(text)
    return caught.value


@pytest.mark.parametrize("typed", [
    SERIAL, SERIAL.lower(), SERIAL.replace("-", ""), f"  {SERIAL.replace('-', ' ')}  ",
    SERIAL.replace("-", "\u2013"),
])
def test_a_serial_typed_any_reasonable_way_is_accepted_in_its_canonical_form(typed):
    assert read_serial(typed) == SERIAL


def test_look_alike_letters_are_read_as_the_symbols_they_resemble():
    serial = generate(randbits=lambda n: 0)  # all zeros and ones
    assert read_serial(serial.replace("0", "O").replace("1", "l")) == serial


def test_a_single_typo_is_refused_offline_with_the_check_character_reason():
    assert _rejected(_typo(SERIAL)).key == "serial_typo"


def test_two_symbols_swapped_is_refused_too():
    body = SERIAL.replace("-", "")
    i = next(i for i in range(len(body) - 1) if body[i] != body[i + 1])
    swapped = body[:i] + body[i + 1] + body[i] + body[i + 2:]
    assert _rejected(swapped).key == "serial_typo"


def test_a_missing_character_is_refused_with_the_count():
    problem = _rejected(SERIAL[:-1])
    assert problem.key == "serial_length" and problem.params == {"count": 16}


def test_characters_no_serial_uses_are_named():
    problem = _rejected(SERIAL[:-2] + "#?")
    assert problem.key == "serial_characters"
    assert "'#'" in problem.params["chars"] and "'?'" in problem.params["chars"]


def test_nothing_typed_asks_for_the_serial():
    assert _rejected("  - ").key == "serial_empty"


@pytest.mark.parametrize("typed, code", [("10", "B"), ("1", "AB"), ("43", "OPSNAJ"),
                                         ("b", "B"), (" cj ", "CJ"), ("OPSNAJ", "OPSNAJ")])
def test_the_house_is_chosen_by_its_number_in_the_list_or_by_its_code(typed, code):
    assert choose_house(typed).code == code


@pytest.mark.parametrize("typed", ["0", "44", "XX", "", "CNAS", "B2"])
def test_anything_else_is_not_a_house_a_provider_activates_at(typed):
    with pytest.raises(ValueError):
        choose_house(typed)


def _activation(**overrides) -> Activation:
    answer = {"external_user": "12433636_CAS-B", "cas": "B",
              "provider": {"cui": "12433636", "name": "SC DEMO MEDICAL SRL"}}
    return Activation.from_answer({**answer, **overrides}, SERIAL, "http://keygen")


def test_the_activation_keeps_what_keygen_answered_and_the_serial():
    activation = _activation()
    assert (activation.external_user, activation.cas, activation.provider_cui,
            activation.provider_name, activation.license_serial) == (
        "12433636_CAS-B", "B", "12433636", "SC DEMO MEDICAL SRL", SERIAL)
    assert activation.house_label == "CAS-B"


def test_the_activation_file_is_private_to_the_user_whatever_the_umask(tmp_path):
    home = tmp_path / "home"
    old = os.umask(0)
    try:
        path = ActivationStore(home).save(_activation())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["license_serial"] == SERIAL
    assert [p.name for p in home.iterdir()] == ["activation.json"]  # no temporary left


def test_the_activation_file_reads_back_and_is_replaced_whole(tmp_path):
    store = ActivationStore(tmp_path)
    assert store.load() == (None, False)
    store.save(_activation())
    store.save(_activation(cas="CJ", external_user="12433636_CAS-CJ"))
    loaded, narrowed = store.load()
    assert loaded.external_user == "12433636_CAS-CJ" and not narrowed
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_file_others_could_read_is_narrowed_and_the_caller_told(tmp_path):
    store = ActivationStore(tmp_path)
    store.save(_activation())
    store.path.chmod(0o644)
    loaded, narrowed = store.load()
    assert loaded is not None and narrowed
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_damaged_file_counts_as_not_activated(tmp_path):
    store = ActivationStore(tmp_path)
    store.path.write_text("{not json")
    store.path.chmod(0o600)
    assert store.load() == (None, False)


def test_the_home_comes_from_the_environment_else_the_user_directory(tmp_path):
    assert default_home({"SIIU_DESKTOP_HOME": str(tmp_path)}) == tmp_path
    assert default_home({"SIUI_DESKTOP_HOME": str(tmp_path)}) == tmp_path
    assert default_home({}).name == ".siui-desktop"


def test_status_shows_only_the_first_and_last_groups_of_the_serial():
    masked = mask_serial(SERIAL)
    assert masked.startswith(SERIAL[:6]) and masked.endswith(SERIAL[-5:])
    assert masked[6:15] == "****-****"
