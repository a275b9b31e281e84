"""The window's status bar ("bara de stare"): a drawn semaphore lamp, *online* or
*offline*, who and where, the message, the server's warning, when the last heartbeat
was and, while offline, when the next attempt comes. It draws a
:class:`~clients.desktop.statusview.StatusView`; what it says is decided there, for the
terminal too."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from clients.desktop.gui import style
from clients.desktop.statusview import GREEN, GREY, StatusView

LAMP_SIZE = 18


class StatusBar(ttk.Frame):
    """Three lines: ``● online  12433636_CAS-B @ CAS-B        verificat la 10:00:05``,
    then the message, then the warning (only when there is one)."""

    def __init__(self, parent: tk.Misc) -> None:
        super().__init__(parent, name="statusbar", style="Status.TFrame", padding=(style.GAP, 4))
        self.columnconfigure(2, weight=1)
        self.lamp = tk.Canvas(self, name="lamp", width=LAMP_SIZE + 2, height=LAMP_SIZE + 2,
                              highlightthickness=0, borderwidth=0)
        self._oval = self.lamp.create_oval(1, 1, LAMP_SIZE, LAMP_SIZE, fill=style.LAMP["grey"],
                                           outline="#555555")
        self.lamp.grid(row=0, column=0, padx=(0, style.GAP))
        self.semaphore = ttk.Label(self, name="semaphore", style="Bold.TLabel", width=8)
        self.semaphore.grid(row=0, column=1, sticky="w")
        self.who = ttk.Label(self, name="who")
        self.who.grid(row=0, column=2, sticky="w")
        self.checked = ttk.Label(self, name="checked", style="Hint.TLabel")
        self.checked.grid(row=0, column=3, sticky="e", padx=(style.GAP, 0))
        self.next_attempt = ttk.Label(self, name="next_attempt", style="Hint.TLabel")
        self.next_attempt.grid(row=0, column=4, sticky="e", padx=(style.GAP, 0))
        self.message = ttk.Label(self, name="message", justify="left")
        self.message.grid(row=1, column=0, columnspan=5, sticky="we", pady=(3, 0))
        self.warning = ttk.Label(self, name="warning", style="Warning.TLabel", justify="left")
        self.bind("<Configure>", self._wrap)

    def show(self, shown: StatusView) -> None:
        self.lamp.itemconfigure(self._oval, fill=style.LAMP.get(shown.color, style.LAMP["grey"]))
        self.semaphore.configure(text=shown.semaphore, foreground={
            GREEN: style.LAMP["green"], GREY: style.HINT_TEXT}.get(shown.color, style.ERROR_TEXT))
        self.who.configure(text=shown.who)
        self.checked.configure(text=shown.checked)
        self.next_attempt.configure(text=shown.next_attempt)
        self.message.configure(text=shown.text)
        if shown.warning:
            self.warning.configure(text=f"\u26a0 {shown.warning}")
            self.warning.grid(row=2, column=0, columnspan=5, sticky="we", pady=(3, 0))
        else:
            self.warning.configure(text="")
            self.warning.grid_remove()

    def _wrap(self, event: tk.Event) -> None:
        width = max(200, event.width - 2 * style.GAP)
        self.message.configure(wraplength=width)
        self.warning.configure(wraplength=width)
