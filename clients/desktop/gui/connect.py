"""*Conectare online* in the window: choose the provider's certificate — a PKCS#12
bundle with its passphrase, or a PEM certificate and its key — then connect. Reading
and checking the files is the terminal's code (:mod:`clients.desktop.connection`), run
off the window's thread like the connection itself; a refusal is said in the dialog,
which stays open to fix it."""
from __future__ import annotations

import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk

from clients.desktop.connection import CertificateFiles, load_credentials, open_channel
from clients.desktop.gui import style
from clients.desktop.tls import MAX_PASSPHRASE, CredentialsError

TOPIC = "connect"
MAX_PATH = 4096  # PATH_MAX on Linux


class ConnectDialog:
    def __init__(self, app) -> None:
        self.app, m = app, app.messages
        self.top = style.dialog(app.root, "connect", m("connect_window_title"), 680, 330)
        self.top.protocol("WM_DELETE_WINDOW", self.close)
        self.busy = False
        self.kind = tk.StringVar(self.top, value="p12")
        self.paths = {name: style.bounded(tk.StringVar(self.top), MAX_PATH)
                      for name in ("p12", "cert", "key")}
        self.passphrase = style.bounded(tk.StringVar(self.top), MAX_PASSPHRASE)
        self.entries: dict[str, ttk.Entry] = {}
        body = ttk.Frame(self.top, name="body", padding=style.PAD)
        body.grid(row=0, column=0, sticky="nsew")
        self.top.columnconfigure(0, weight=1)
        body.columnconfigure(2, weight=1)
        ttk.Label(body, text=m("connect_intro"), style="Bold.TLabel").grid(
            row=0, column=0, columnspan=4, sticky="w", pady=(0, style.GAP))
        ttk.Radiobutton(body, name="kind_p12", text=m("choice_p12"), value="p12",
                        variable=self.kind).grid(row=1, column=0, columnspan=4, sticky="w")
        self._file_row(body, 2, "p12", "field_p12", "pick_p12_title",
                       [("PKCS#12", "*.p12 *.pfx")])
        ttk.Radiobutton(body, name="kind_pem", text=m("choice_pem"), value="pem",
                        variable=self.kind).grid(row=3, column=0, columnspan=4, sticky="w",
                                                 pady=(style.GAP, 0))
        pem_types = [("PEM", "*.pem *.crt *.cer *.key")]
        self._file_row(body, 4, "cert", "field_cert", "pick_cert_title", pem_types)
        self._file_row(body, 5, "key", "field_key", "pick_key_title", pem_types)
        ttk.Label(body, text=m("field_passphrase")).grid(row=6, column=1, sticky="w",
                                                          pady=(style.GAP, 0))
        self.passphrase_entry = ttk.Entry(body, name="passphrase", textvariable=self.passphrase,
                                          show="\u2022", width=30)
        self.passphrase_entry.grid(row=6, column=2, sticky="w", pady=(style.GAP, 0))
        self.error = ttk.Label(body, name="error", style="Error.TLabel", wraplength=640,
                               justify="left")
        self.error.grid(row=7, column=0, columnspan=4, sticky="w", pady=(style.GAP, 0))
        footer = ttk.Frame(self.top, name="footer", padding=style.PAD)
        footer.grid(row=1, column=0, sticky="we")
        footer.columnconfigure(0, weight=1)
        self.cancel_button = app.button(footer, "cancel", "button_cancel", self.close, self.top)
        self.cancel_button.grid(row=0, column=1, padx=(style.GAP, 0))
        self.connect_button = app.button(footer, "connect", "button_connect", self.connect, self.top)
        self.connect_button.grid(row=0, column=2, padx=(style.GAP, 0))
        self.top.bind("<Return>", lambda e: self.connect())
        self.top.bind("<Escape>", lambda e: self.close())
        style.modal(self.top)

    def _file_row(self, body: ttk.Frame, row: int, name: str, label: str, title: str,
                  types: list[tuple[str, str]]) -> None:
        ttk.Label(body, text=self.app.messages(label)).grid(row=row, column=1, sticky="w",
                                                             padx=(20, style.GAP), pady=2)
        self.entries[name] = ttk.Entry(body, name=name, textvariable=self.paths[name], width=52)
        self.entries[name].grid(row=row, column=2, sticky="we", pady=2)
        ttk.Button(body, name=f"browse_{name}", text=self.app.messages("button_browse"),
                   command=lambda: self._browse(name, title, types)).grid(
            row=row, column=3, padx=(style.GAP, 0), pady=2)

    def _browse(self, name: str, title: str, types: list[tuple[str, str]]) -> None:
        current = Path(self.paths[name].get().strip() or Path.home() / "x")
        chosen = filedialog.askopenfilename(
            parent=self.top, title=self.app.messages(title), initialdir=str(current.parent),
            filetypes=[*types, (self.app.messages("files_all"), "*")])
        if chosen:
            self.paths[name].set(chosen)
            self.entries[name].xview("end")  # the file's name, not the start of its path
            self.kind.set("p12" if name == "p12" else "pem")

    def _files(self) -> CertificateFiles:
        def path(name: str) -> Path | None:
            text = self.paths[name].get().strip()
            return Path(text).expanduser() if text else None

        if self.kind.get() == "p12":
            return CertificateFiles(p12=path("p12"))
        return CertificateFiles(cert=path("cert"), key=path("key"))

    def connect(self) -> None:
        if self.busy:
            return
        m = self.app.messages
        try:
            files = self._files()
        except CredentialsError:
            self.error.configure(text=m("files_missing"))
            return
        passphrase = self.passphrase.get()

        def ask(name: str, retry: bool) -> str:
            # One passphrase per try, from the field: a wrong one is said in the dialog.
            if retry:
                raise CredentialsError("passphrase_wrong", file=name)
            return passphrase

        def work():
            credentials = load_credentials(files, ask)
            return credentials, open_channel(self.app.store, credentials,
                                             server=self.app.online_server, ca=self.app.ca,
                                             language=m.language)

        self.busy = True
        self.connect_button.state(["disabled"])
        self.error.configure(text=m("loading_certificate"), style="Hint.TLabel")
        self.app.background.run(work, self._ready, self._failed, topic=TOPIC)

    def _ready(self, result) -> None:
        credentials, channel = result
        self.busy = False
        self._destroy()
        self.app.start_session(credentials, channel)

    def _failed(self, exc: Exception) -> None:
        self.busy = False
        self.connect_button.state(["!disabled"])
        m = self.app.messages
        text = (m(exc.key, **exc.params) if isinstance(exc, CredentialsError)
                else m("credentials_unusable", detail=str(exc)[:300]))
        self.error.configure(text=text, style="Error.TLabel")
        self.passphrase_entry.focus_set()

    def close(self) -> None:
        if not self.busy:
            self.app.background.begin(TOPIC)
            self._destroy()

    def _destroy(self) -> None:
        self.top.grab_release()
        self.top.destroy()
        self.app.connect_closed()
