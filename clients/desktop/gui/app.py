"""The main window: the menu *Administrare* (Activare, Conectare online, Deconectare,
Ieșire), what is activated and with which certificate, and the status bar along the
bottom. It owns the one online session and the queue through which the worker threads
hand their results back (:class:`~clients.desktop.background.Background`, drained every
:data:`POLL_MS` by ``after()``)."""
from __future__ import annotations

import tkinter as tk
from datetime import datetime
from pathlib import Path
from tkinter import ttk

from clients.desktop.activation import ActivationStore
from clients.desktop.background import Background, OnlineSession
from clients.desktop.backoff import Schedule
from clients.desktop.gui import style
from clients.desktop.gui.connect import ConnectDialog
from clients.desktop.gui.probe import Probe
from clients.desktop.gui.statusbar import StatusBar
from clients.desktop.gui.wizard import ActivationWizard
from clients.desktop.messages import Messages
from clients.desktop.online import OFFLINE, Status
from clients.desktop.statusview import GREY, StatusView, view
from clients.desktop.texts_window import mnemonic
from clients.desktop.tls import Credentials

POLL_MS = 50  # how often results of the worker threads are shown: quick, and cheap
LABEL_COLUMN = 160  # pixels: the longest field label, "Casa de asigurari:", with room


def local_time(iso: str) -> str:
    """``2026-03-01T09:00:00+00:00`` as the provider reads a time: ``01.03.2026 11:00``."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d.%m.%Y %H:%M")
    except (TypeError, ValueError):
        return iso


class App:
    def __init__(self, root: tk.Tk, messages: Messages, store: ActivationStore, *,
                 keygen_server: str, online_server: str, ca: Path | None, interval: float,
                 retry_max: float, probe: Path | None = None) -> None:
        self.root, self.messages, self.store = root, messages, store
        self.keygen_server, self.online_server, self.ca = keygen_server, online_server, ca
        self.interval, self.retry_max = interval, retry_max
        self.background = Background()
        self.session: OnlineSession | None = None
        self.wizard: ActivationWizard | None = None
        self.dialog: ConnectDialog | None = None
        style.apply(root)
        style.localize(root, messages.language)
        root.title(messages("window_title"))
        root.geometry("860x430+0+0")
        root.minsize(640, 360)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        self._menu()
        body = ttk.Frame(root, name="body", padding=style.PAD)
        body.grid(row=0, column=0, sticky="nsew")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        body.columnconfigure(0, weight=1)
        self.activation_fields = self._panel(body, 0, "activation", "panel_activation",
                                             ("field_user", "field_house", "field_provider",
                                              "field_activated_at"))
        self.certificate_fields = self._panel(body, 1, "certificate", "panel_certificate",
                                              ("field_subject", "field_issuer", "field_valid_until"))
        self.statusbar = StatusBar(root)
        self.statusbar.grid(row=1, column=0, sticky="we")
        self.activation_changed()
        self._show_certificate(None)
        self.show_status(Status(OFFLINE, reason="not_connected"))
        self._probe = Probe(root, probe) if probe else None
        root.after(POLL_MS, self._poll)

    # -- building ----------------------------------------------------------------------
    def _menu(self) -> None:
        bar = tk.Menu(self.root, name="menubar")
        self.admin_menu = tk.Menu(bar, name="admin", tearoff=False)
        label, underline = mnemonic(self.messages("menu_admin"))
        bar.add_cascade(label=label, underline=underline, menu=self.admin_menu)
        for key, command in (("menu_activate", self.open_wizard), ("menu_connect", self.open_connect),
                             ("menu_disconnect", self.disconnect), (None, None),
                             ("menu_quit", self.quit)):
            if key is None:
                self.admin_menu.add_separator()
                continue
            label, underline = mnemonic(self.messages(key))
            self.admin_menu.add_command(label=label, underline=underline, command=command)
        self.root.configure(menu=bar)

    def _panel(self, body: ttk.Frame, row: int, name: str, title: str,
               fields: tuple[str, ...]) -> dict[str, ttk.Label]:
        frame = ttk.LabelFrame(body, name=name, text=self.messages(title), padding=style.PAD)
        frame.grid(row=row, column=0, sticky="we", pady=(0, style.PAD))
        frame.columnconfigure(0, minsize=LABEL_COLUMN)  # the panels' values line up
        frame.columnconfigure(1, weight=1)
        values = {}
        for line, key in enumerate(fields):
            ttk.Label(frame, text=self.messages(key)).grid(row=line, column=0, sticky="w",
                                                           padx=(0, style.PAD), pady=1)
            values[key] = ttk.Label(frame, name=key.removeprefix("field_"), style="Bold.TLabel")
            values[key].grid(row=line, column=1, sticky="w", pady=1)
        values["note"] = ttk.Label(frame, name="note", style="Hint.TLabel")
        values["note"].grid(row=len(fields), column=0, columnspan=2, sticky="w", pady=(4, 0))
        return values

    @staticmethod
    def _note(label: ttk.Label, text: str) -> None:
        label.configure(text=text)
        label.grid() if text else label.grid_remove()

    def button(self, parent: tk.Misc, name: str, key: str, command, top: tk.Misc) -> ttk.Button:
        """A button labelled by ``key``; Alt and its marked letter press it, in ``top``."""
        label, underline = mnemonic(self.messages(key))
        button = ttk.Button(parent, name=name, text=label, underline=underline, command=command)
        if underline >= 0:
            top.bind(f"<Alt-KeyPress-{label[underline].lower()}>",
                     lambda e: button.invoke() if button.winfo_ismapped() else None)
        return button

    # -- what the window shows ---------------------------------------------------------------
    def activation_changed(self) -> None:
        activation, narrowed = self.store.load()
        f, m = self.activation_fields, self.messages
        f["field_user"].configure(text=activation.external_user if activation else "")
        f["field_house"].configure(text=activation.house_label if activation else "")
        f["field_provider"].configure(text=m("provider_value", name=activation.provider_name,
                                             cui=activation.provider_cui) if activation else "")
        f["field_activated_at"].configure(text=local_time(activation.activated_at) if activation else "")
        note = "" if activation else m("not_activated")
        if narrowed:  # readable by others until now: the serial in it may be known
            note = m("file_permissions_fixed", path=self.store.path)
        self._note(f["note"], note)

    def _show_certificate(self, credentials: Credentials | None) -> None:
        f = self.certificate_fields
        f["field_subject"].configure(text=credentials.subject if credentials else "")
        f["field_issuer"].configure(text=credentials.issuer if credentials else "")
        f["field_valid_until"].configure(text=credentials.not_after if credentials else "")
        self._note(f["note"], "" if credentials else self.messages("no_certificate"))

    def show_status(self, status: Status) -> None:
        self._draw(view(status, self.messages, server=self.online_server))

    def _draw(self, shown: StatusView) -> None:
        self.statusbar.show(shown)
        self.root.title(f"{self.messages('window_title')} \u2014 {shown.semaphore}")

    # -- the menu's commands -----------------------------------------------------------------
    def open_wizard(self) -> None:
        if self.wizard is None and self.dialog is None:
            self.wizard = ActivationWizard(self)

    def wizard_closed(self) -> None:
        self.wizard = None

    def open_connect(self) -> None:
        if self.wizard is None and self.dialog is None:
            self.dialog = ConnectDialog(self)

    def connect_closed(self) -> None:
        self.dialog = None

    def start_session(self, credentials: Credentials, channel) -> None:
        """Connect with these credentials; the previous session, if any, ends first
        (and the channel lets its last request finish before the new one goes)."""
        self.disconnect(show=False)
        self._show_certificate(credentials)
        self._draw(StatusView(GREY, OFFLINE, "", self.messages("connecting", server=channel.server),
                              "", "", ""))
        self.session = OnlineSession(self.background, channel,
                                     Schedule(self.interval, cap=self.retry_max), self.show_status)
        self.session.start()

    def disconnect(self, show: bool = True) -> None:
        if self.session is not None:
            self.session.stop()
            self.session = None
        if show:
            self.show_status(Status(OFFLINE, reason="not_connected"))

    def quit(self) -> None:
        self.disconnect(show=False)
        self.root.destroy()

    def _poll(self) -> None:
        self.root.after(POLL_MS, self._poll)  # first: a failing callback must not end polling
        self.background.drain()
        if self._probe is not None:
            self._probe.write_if_changed()
