"""The Activare wizard walked with scripted answers (the activation call is passed in)."""
from __future__ import annotations

from clients.desktop.activation import Activation, ActivationStore
from clients.desktop.keygen import ActivationRefused
from clients.desktop.messages import Messages
from clients.desktop.wizard import Console, house_table, run_wizard
from shared.license import generate

SERIAL = generate(randbits=lambda n: 0xABCDE_12345_ABCDE_12345)
TYPO = SERIAL[:-1] + ("0" if SERIAL[-1] != "0" else "1")


class Script:
    """A person at the keyboard: answers in order; every line shown is kept."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.shown: list[str] = []

    def ask(self, prompt: str) -> str:
        self.shown.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def say(self, text: str) -> None:
        self.shown.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.shown)


class Keygen:
    def __init__(self, *refusals: str | ActivationRefused):
        self.refusals = [r if isinstance(r, ActivationRefused) else ActivationRefused(r) for r in refusals]
        self.calls: list[tuple] = []

    def __call__(self, server, serial, cas):
        self.calls.append((server, serial, cas))
        if self.refusals:
            raise self.refusals.pop(0)
        return Activation("12433636_CAS-B", cas, "12433636", "SC DEMO MEDICAL SRL", serial,
                          "2026-03-01T10:00:00+00:00", server)


def walk(script: Script, store: ActivationStore, keygen: Keygen, language: str = "ro") -> int:
    return run_wizard(Console(script.ask, script.say), Messages(language), store,
                      server="http://keygen", activate=keygen)


def test_the_seeds_steps_with_a_typo_first(tmp_path):
    script = Script("x", "", TYPO, SERIAL.lower(), "B", "")
    store, keygen = ActivationStore(tmp_path), Keygen()
    assert walk(script, store, keygen) == 0
    text = script.text
    assert "[ ] Reactivare baza de date curenta" in text and "[x] Reactivare baza de date curenta" in text
    assert "greșeală de tastare" in text
    assert " 10. B      București" in text or "10. B      București" in text
    assert keygen.calls == [("http://keygen", SERIAL, "B")]  # the typo was never sent
    assert "Activare reușită: utilizator 12433636_CAS-B" in text
    assert store.load()[0].license_serial == SERIAL


def test_an_existing_activation_is_replaced_only_when_the_box_is_ticked(tmp_path):
    store = ActivationStore(tmp_path)
    walk(Script("", SERIAL, "B", ""), store, Keygen())
    script = Script("", "x", "", SERIAL, "CJ", "")
    assert walk(script, store, Keygen()) == 0
    assert "Există deja o activare (12433636_CAS-B)" in script.text
    assert store.load()[0].cas == "CJ"


def test_a_key_the_house_refuses_asks_for_the_serial_again(tmp_path):
    script = Script("", SERIAL, "B", "", SERIAL, "")
    keygen = Keygen("activation_forbidden")
    assert walk(script, ActivationStore(tmp_path), keygen, "en") == 0
    assert "not valid at this insurance house" in script.text and len(keygen.calls) == 2


def test_an_unreachable_house_goes_back_to_inainte_to_retry(tmp_path):
    script = Script("", SERIAL, "B", "", "")
    keygen = Keygen(ActivationRefused("activation_unreachable", server="http://keygen"))
    assert walk(script, ActivationStore(tmp_path), keygen) == 0
    assert "nu poate fi contactat (http://keygen)" in script.text
    assert [c[1] for c in keygen.calls] == [SERIAL, SERIAL]  # the same serial, retried


def test_an_unknown_house_is_refused_and_asked_again(tmp_path):
    script = Script("", SERIAL, "XX", "44", "b", "")
    assert walk(script, ActivationStore(tmp_path), Keygen()) == 0
    assert script.text.count("Nu există casa de asigurări") == 2


def test_inapoi_goes_back_to_the_serial(tmp_path):
    script = Script("", SERIAL, "B", "i", SERIAL, "CJ", "")
    keygen = Keygen()
    assert walk(script, ActivationStore(tmp_path), keygen) == 0
    assert keygen.calls[0][2] == "CJ"


def test_q_or_end_of_input_cancels_without_saving(tmp_path):
    store = ActivationStore(tmp_path)
    for script in (Script("q"), Script("", "q"), Script("", SERIAL, "B", "q"), Script("")):
        assert walk(script, store, Keygen()) == 1
        assert "Activare anulată." in script.text
    assert store.load() == (None, False)


def test_the_house_list_has_all_43_in_three_columns():
    rows = house_table()
    assert len(rows) == 15
    text = "\n".join(rows)
    assert all(f" {n}. " in f" {text}" or f"{n}. " in text for n in range(1, 44))
    assert "43. OPSNAJ" in text
