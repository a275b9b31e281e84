"""*Administrare / Activare* as a window, step by step as the seed shows it: (1) tick
*Reactivare baza de date curenta*, *Inainte*; (2) the licence serial in four boxes (a
typo said at once) and the *Casa de asigurari* from the list, *Inainte*; (3) the answer:
activated as ``<CUI>_CAS-<cas>``, or the refusal in words. The rules and the call are
the terminal's (:func:`~clients.desktop.activation.may_proceed`,
:func:`~clients.desktop.keygen.activate_and_save`); the call runs off the window's
thread."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from clients.desktop import serialbox
from clients.desktop.activation import may_proceed
from clients.desktop.choices import TypeAhead, house_choice_label
from clients.desktop.gui import style
from clients.desktop.gui.serialentry import SerialEntry
from clients.desktop.keygen import ActivationRefused, activate_and_save
from shared.houses import HOUSES

TOPIC = "wizard"


class ActivationWizard:
    def __init__(self, app) -> None:
        self.app, m = app, app.messages
        self.top = style.dialog(app.root, "wizard", m("wizard_window_title"), 680, 340)
        self.top.protocol("WM_DELETE_WINDOW", self.cancel)
        self.top.columnconfigure(0, weight=1)
        self.top.rowconfigure(1, weight=1)
        self.step_label = ttk.Label(self.top, name="step", style="Title.TLabel")
        self.step_label.grid(row=0, column=0, sticky="w", padx=style.PAD, pady=(style.PAD, 0))
        self.reactivate = tk.BooleanVar(self.top, value=False)
        self.steps = [self._step_reactivate(), self._step_serial(), self._step_answer()]
        self._footer()
        self.busy = False
        self.show(1)
        style.modal(self.top)

    # -- the steps ---------------------------------------------------------------------
    def _step_reactivate(self) -> ttk.Frame:
        frame = ttk.Frame(self.top, name="step1", padding=style.PAD)
        ttk.Checkbutton(frame, name="reactivate", text=self.app.messages("reactivate_box"),
                        variable=self.reactivate).grid(row=0, column=0, sticky="w", pady=style.GAP)
        self.existing_label = ttk.Label(frame, name="existing", wraplength=620, justify="left")
        self.existing_label.grid(row=1, column=0, sticky="w", pady=style.GAP)
        self.step1_error = ttk.Label(frame, name="error", style="Error.TLabel", wraplength=620)
        self.step1_error.grid(row=2, column=0, sticky="w")
        return frame

    def _step_serial(self) -> ttk.Frame:
        m = self.app.messages
        frame = ttk.Frame(self.top, name="step2", padding=style.PAD)
        frame.columnconfigure(1, weight=1)
        ttk.Label(frame, text=m("label_serial"), style="Bold.TLabel").grid(
            row=0, column=0, sticky="w", padx=(0, style.GAP))
        self.serial = SerialEntry(frame, self._serial_changed)
        self.serial.grid(row=0, column=1, sticky="w")
        self.serial_feedback = ttk.Label(frame, name="feedback", wraplength=460, justify="left")
        self.serial_feedback.grid(row=1, column=1, sticky="w", pady=(4, 0))
        ttk.Label(frame, text=m("serial_hint"), style="Hint.TLabel", wraplength=460,
                  justify="left").grid(row=2, column=1, sticky="w", pady=(2, style.PAD))
        ttk.Label(frame, text=m("label_house"), style="Bold.TLabel").grid(
            row=3, column=0, sticky="w", padx=(0, style.GAP))
        self.house = ttk.Combobox(frame, name="house", state="readonly", width=44,
                                  values=[house_choice_label(h) for h in HOUSES])
        self.house.grid(row=3, column=1, sticky="w")
        self.house.bind("<<ComboboxSelected>>", lambda e: self.house_feedback.configure(text=""))
        self._type_ahead = TypeAhead()
        self.house.bind("<KeyPress>", self._house_key)
        ttk.Label(frame, text=m("house_hint"), style="Hint.TLabel").grid(
            row=4, column=1, sticky="w", pady=(2, 0))
        self.house_feedback = ttk.Label(frame, name="house_feedback", style="Error.TLabel")
        self.house_feedback.grid(row=5, column=1, sticky="w", pady=(4, 0))
        return frame

    def _step_answer(self) -> ttk.Frame:
        frame = ttk.Frame(self.top, name="step3", padding=style.PAD)
        frame.columnconfigure(0, weight=1)
        self.answer = ttk.Label(frame, name="answer", wraplength=620, justify="left")
        self.answer.grid(row=0, column=0, sticky="we", pady=style.GAP)
        self.answer_detail = ttk.Label(frame, name="detail", style="Hint.TLabel", wraplength=620,
                                       justify="left")
        self.answer_detail.grid(row=1, column=0, sticky="we")
        self.progress = ttk.Progressbar(frame, name="progress", mode="indeterminate", length=300)
        return frame

    def _footer(self) -> None:
        footer = ttk.Frame(self.top, name="footer", padding=style.PAD)
        footer.grid(row=2, column=0, sticky="we")
        footer.columnconfigure(0, weight=1)
        self.buttons = {}
        for column, (name, key, command) in enumerate(
                (("cancel", "button_cancel", self.cancel), ("back", "button_back", self.back),
                 ("next", "button_next", self.next), ("close", "button_close", self.close)),
                start=1):
            self.buttons[name] = self.app.button(footer, name, key, command, self.top)
            self.buttons[name].grid(row=0, column=column, padx=(style.GAP, 0))
        self.top.bind("<Return>", lambda e: self._default())
        self.top.bind("<Escape>", lambda e: self.cancel())

    # -- moving between steps ------------------------------------------------------------
    def show(self, step: int) -> None:
        self.step = step
        for number, frame in enumerate(self.steps, start=1):
            if number == step:
                frame.grid(row=1, column=0, sticky="nsew")
            else:
                frame.grid_remove()
        self.step_label.configure(text=f"{self.app.messages('wizard_window_title')} \u2014 "
                                       f"{self.app.messages('wizard_step', step=step)}")
        self._enable(back=step > 1, next=step < 3, close=False, cancel=True)
        if step == 1:
            existing = self.app.store.load()[0]
            self.existing_label.configure(text=self.app.messages(
                "wizard_existing", user=existing.external_user, house=existing.house_label)
                if existing else self.app.messages("wizard_none"))
            self.step1_error.configure(text="")
        elif step == 2:
            self.serial.focus_first()

    def next(self) -> None:
        if self.busy:
            return
        if self.step == 1:
            existing = self.app.store.load()[0]
            if not may_proceed(existing, self.reactivate.get()):
                self.step1_error.configure(text=self.app.messages(
                    "activation_exists", user=existing.external_user))
                return
            self.show(2)
        elif self.step == 2:
            verdict = self.serial.verdict()
            index = self.house.current()
            self._serial_changed(verdict, submitting=True)
            if index < 0:
                self.house_feedback.configure(text=self.app.messages("house_missing"))
            if verdict.kind == serialbox.VALID and index >= 0:
                self._submit(verdict.serial, HOUSES[index])
        elif self.step == 3:  # after a refusal that waiting fixes: try again
            self._submit(*self._last_request)

    def back(self) -> None:
        if not self.busy and self.step > 1:
            self.show(self.step - 1)

    def cancel(self) -> None:
        if not self.busy:  # the request runs to its end (bounded by its timeout)
            self.close()

    def close(self) -> None:
        self.app.background.begin(TOPIC)
        self.top.grab_release()
        self.top.destroy()
        self.app.wizard_closed()

    def _default(self) -> None:
        for name in ("next", "close"):
            if str(self.buttons[name].cget("state")) != "disabled" and self.buttons[name].winfo_ismapped():
                self.buttons[name].invoke()
                return

    def _enable(self, **shown: bool) -> None:
        for name, on in shown.items():
            if on:
                self.buttons[name].grid()
                self.buttons[name].state(["!disabled"])
            else:
                self.buttons[name].grid_remove()

    # -- the serial and the house ---------------------------------------------------------
    def _serial_changed(self, verdict: serialbox.Verdict, submitting: bool = False) -> None:
        m = self.app.messages
        if verdict.kind == serialbox.VALID:
            text, look = m("serial_valid", serial=verdict.serial), "Ok.TLabel"
        elif verdict.kind == serialbox.REJECTED:
            text, look = m(verdict.key, **verdict.params), "Error.TLabel"
        elif verdict.kind == serialbox.INCOMPLETE and not submitting:
            text, look = m("serial_incomplete", count=verdict.count), "Hint.TLabel"
        elif submitting:
            text, look = m("serial_empty") if verdict.kind == serialbox.EMPTY else m(
                "serial_length", count=verdict.count), "Error.TLabel"
        else:
            text, look = "", "Hint.TLabel"
        self.serial_feedback.configure(text=text, style=look)

    def _house_key(self, event: tk.Event) -> str | None:
        found = self._type_ahead.key(event.char, int(event.time))
        if found is None:
            return None
        self.house.current(HOUSES.index(found))
        self.house.event_generate("<<ComboboxSelected>>")
        return "break"

    # -- the call ----------------------------------------------------------------------
    def _submit(self, serial: str, house) -> None:
        self._last_request = (serial, house)
        self.show(3)
        self.busy = True
        self._enable(back=False, next=False, cancel=False, close=False)
        self.answer.configure(text=self.app.messages("contacting", server=self.app.keygen_server),
                              style="TLabel")
        self.answer_detail.configure(text="")
        self.progress.grid(row=2, column=0, sticky="w", pady=style.PAD)
        self.progress.start(12)
        self.app.background.run(
            lambda: activate_and_save(self.app.store, self.app.keygen_server, serial, house.code),
            self._activated, self._refused, topic=TOPIC)

    def _settled(self) -> None:
        self.busy = False
        self.progress.stop()
        self.progress.grid_remove()

    def _activated(self, result) -> None:
        activation, path = result
        self._settled()
        m = self.app.messages
        self.answer.configure(style="Ok.TLabel", text=m(
            "activation_ok", user=activation.external_user, provider=activation.provider_name,
            cui=activation.provider_cui, house=activation.house_label))
        self.answer_detail.configure(text=m("activation_saved", path=path))
        self._enable(back=False, next=False, cancel=False, close=True)
        self.buttons["close"].focus_set()
        self.app.activation_changed()

    def _refused(self, exc: Exception) -> None:
        self._settled()
        refused = exc if isinstance(exc, ActivationRefused) else ActivationRefused(
            "activation_failed", status=type(exc).__name__)
        self.answer.configure(style="Error.TLabel",
                              text=self.app.messages(refused.key, **refused.params))
        self._enable(back=True, next=not refused.retype, cancel=True, close=False)
        if refused.key == "activation_throttled":  # Inainte again once the wait is over
            self.buttons["next"].state(["disabled"])
            self._count_down(int(refused.params.get("seconds", 60)))

    def _count_down(self, seconds: int) -> None:
        if not self.top.winfo_exists() or self.step != 3 or self.busy:
            return
        if seconds <= 0:
            self.buttons["next"].state(["!disabled"])
            return
        self.answer.configure(text=self.app.messages("activation_throttled", seconds=seconds))
        self.top.after(1000, self._count_down, seconds - 1)
