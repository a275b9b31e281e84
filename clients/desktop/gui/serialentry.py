"""The licence serial's four boxes (5-4-4-4) in the wizard. The boxes act as one field
cut into groups (:mod:`clients.desktop.serialbox` decides how text flows between them
and what the line below says); this widget only applies that to Tk entries: after
every change, the boxes are refilled, the caret put where it belongs, and the verdict
handed to ``on_change``."""
from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from clients.desktop import serialbox
from clients.desktop.gui import style
from shared.license import GROUPS


class SerialEntry(ttk.Frame):
    def __init__(self, parent: tk.Misc, on_change: Callable[[serialbox.Verdict], None]) -> None:
        super().__init__(parent, name="serial")
        self._on_change = on_change
        self._applying = False
        self._pending = False
        self.vars = [tk.StringVar(self) for _ in GROUPS]
        self.boxes: list[ttk.Entry] = []
        for index, width in enumerate(GROUPS):
            if index:
                ttk.Label(self, text="\u2013", font="SiuiSerial").grid(row=0, column=2 * index - 1,
                                                                      padx=2)
            box = ttk.Entry(self, name=f"box{index + 1}", textvariable=self.vars[index],
                            width=width + 1, font="SiuiSerial", justify="center",
                            style="Serial.TEntry")
            box.grid(row=0, column=2 * index)
            box.bind("<BackSpace>", lambda e, i=index: self._backspace(i))
            box.bind("<Left>", lambda e, i=index: self._step(i, -1))
            box.bind("<Right>", lambda e, i=index: self._step(i, +1))
            self.vars[index].trace_add("write", lambda *_: self._changed())
            self.boxes.append(box)
        self.columnconfigure(2 * len(GROUPS), weight=1)

    def texts(self) -> list[str]:
        return [var.get() for var in self.vars]

    def verdict(self) -> serialbox.Verdict:
        return serialbox.assess(self.texts())

    def clear(self) -> None:
        self._apply(serialbox.Flow(("", "", "", ""), 0, 0))

    def focus_first(self) -> None:
        self.boxes[0].focus_set()

    def _changed(self) -> None:
        # Tk moves the caret after it writes the variable: reflow once the keystroke or
        # paste is complete, when the caret is where the person left it.
        if not self._applying and not self._pending:
            self._pending = True
            self.after_idle(self._reflow)

    def _reflow(self) -> None:
        self._pending = False
        focused = self.focus_get()
        box = self.boxes.index(focused) if focused in self.boxes else len(GROUPS) - 1
        caret = self.boxes[box].index("insert")
        self._apply(serialbox.reflow(self.texts(), box, caret))

    def _backspace(self, index: int) -> str | None:
        box = self.boxes[index]
        if index == 0 or box.index("insert") != 0 or box.selection_present():
            return None  # Tk's own Backspace inside the box
        self._apply(serialbox.backspace(self.texts(), index))
        return "break"

    def _step(self, index: int, direction: int) -> str | None:
        box = self.boxes[index]
        at_edge = box.index("insert") == (0 if direction < 0 else len(self.vars[index].get()))
        target = index + direction
        if not at_edge or not 0 <= target < len(self.boxes):
            return None
        self.boxes[target].focus_set()
        self.boxes[target].icursor("end" if direction < 0 else 0)
        return "break"

    def _apply(self, flow: serialbox.Flow) -> None:
        self._applying = True
        try:
            for var, text in zip(self.vars, flow.boxes):
                if var.get() != text:
                    var.set(text)
        finally:
            self._applying = False
        self.boxes[flow.box].focus_set()
        self.boxes[flow.box].icursor(flow.caret)
        self._on_change(serialbox.assess(flow.boxes))
