"""*Administrare / Activare* as a terminal program, step by step as the seed describes it:
tick "Reactivare baza de date curenta", Inainte; enter the licence serial (typos are
refused at once, with the reason); choose the Casa de asigurari; Inainte.

Plain prompts on purpose: the wizard works in any terminal, over ssh, and in a
pseudo-terminal driven by tests. Input and output are injected (``ask``/``say``) and so is
the activation call, so every path can be walked in a unit test.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clients.desktop.activation import (Activation, ActivationStore, SerialRejected, choose_house,
                                        may_proceed, read_serial)
from clients.desktop.keygen import ActivationRefused, activate_and_save, request_activation
from clients.desktop.messages import Messages
from shared.houses import HOUSES, House

COLUMNS = 3
CELL = 28  # the longest, " 6. BN     Bistrița-Năsăud", with room; 3 columns fit in 80
CANCEL, BACK, TICK = "q", "i", "x"


@dataclass(frozen=True)
class Console:
    """The wizard's terminal: ``ask(prompt) -> line`` (input) and ``say(text)`` (print).
    ``ask`` raises EOFError or KeyboardInterrupt when the person gives up."""

    ask: Callable[[str], str]
    say: Callable[[str], None]


class _Cancelled(Exception):
    pass


def run_wizard(console: Console, messages: Messages, store: ActivationStore, *, server: str,
               activate: Callable[..., object] = request_activation) -> int:
    """Walk the activation; 0 when activated and saved, 1 when cancelled."""
    try:
        return _run(console, messages, store, server, activate)
    except (_Cancelled, EOFError, KeyboardInterrupt):
        console.say("")
        console.say(messages("cancelled"))
        return 1


def _run(console: Console, messages: Messages, store: ActivationStore, server: str,
         activate: Callable[..., object]) -> int:
    console.say(messages("wizard_title"))
    existing, _ = store.load()
    _reactivate_step(console, messages, existing)
    serial = house = None
    while True:
        if serial is None:
            serial = _serial_step(console, messages)
        if house is None:
            house = _house_step(console, messages)
        console.say(messages("summary", serial=serial, house=f"{house.short} ({house.name})"))
        answer = _ask(console, messages("confirm_prompt"))
        if answer == BACK:
            serial = house = None
            continue
        if answer:
            continue  # anything else: show the summary again
        console.say(messages("contacting", server=server))
        try:
            activation, path = activate_and_save(store, server, serial, house.code,
                                                 request=activate)
        except ActivationRefused as refused:
            console.say(messages(refused.key, **refused.params))
            if refused.retype:
                serial = None
            continue  # otherwise back to Inainte, to retry
        console.say(messages("activation_ok", user=activation.external_user,
                             provider=activation.provider_name, cui=activation.provider_cui,
                             house=activation.house_label))
        console.say(messages("activation_saved", path=path))
        return 0


def _reactivate_step(console: Console, messages: Messages, existing: Activation | None) -> None:
    """The tick box; Inainte goes on (refused while an activation exists unticked)."""
    ticked = False
    while True:
        console.say(f"  [{'x' if ticked else ' '}] {messages('reactivate_box')}")
        answer = _ask(console, messages("tick_prompt"))
        if answer == TICK:
            ticked = not ticked
        elif answer == "":
            if not may_proceed(existing, ticked):
                console.say(messages("activation_exists", user=existing.external_user))
                continue
            return


def _serial_step(console: Console, messages: Messages) -> str:
    while True:
        text = console.ask(messages("serial_prompt"))
        if text.strip().lower() == CANCEL:
            raise _Cancelled
        try:
            return read_serial(text)
        except SerialRejected as rejected:
            console.say(messages(rejected.key, **rejected.params))


def _house_step(console: Console, messages: Messages) -> House:
    console.say(messages("house_title"))
    for line in house_table():
        console.say(line)
    while True:
        text = console.ask(messages("house_prompt"))
        if text.strip().lower() == CANCEL:
            raise _Cancelled
        try:
            return choose_house(text)
        except ValueError:
            console.say(messages("house_invalid", text=text.strip()))


def house_table(columns: int = COLUMNS) -> list[str]:
    """The 43 houses, numbered, in columns read top to bottom: `` 10. B      București``."""
    cells = [f"{n:>2}. {h.code:<6} {h.county or h.short}"[:CELL - 1].ljust(CELL)
             for n, h in enumerate(HOUSES, start=1)]
    rows = -(-len(cells) // columns)
    return ["".join(cells[r + c * rows] for c in range(columns) if r + c * rows < len(cells)).rstrip()
            for r in range(rows)]


def _ask(console: Console, prompt: str) -> str:
    answer = console.ask(prompt).strip().lower()
    if answer == CANCEL:
        raise _Cancelled
    return answer
