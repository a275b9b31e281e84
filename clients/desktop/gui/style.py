"""The window's look in one place: the ttk theme, fonts, colours and spacing, so the
parts (main window, wizard, certificate dialog, status bar) line up alike."""
from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from tkinter import ttk

PAD = 10  # around groups of fields
GAP = 6  # between a label and its field, and between buttons

LAMP = {"green": "#1f9d3a", "red": "#d32f2f", "grey": "#9e9e9e"}
OK_TEXT = "#1b6e2e"
ERROR_TEXT = "#b3261e"
WARNING_TEXT = "#8a5a00"
HINT_TEXT = "#555555"

# DejaVu ships with Debian (fonts-dejavu-core) and has every Romanian letter (ș ț ă â î,
# with comma below); Tk falls back to a face of the same family name elsewhere.
FAMILY = "DejaVu Sans"
MONO = "DejaVu Sans Mono"


def apply(root: tk.Tk) -> None:
    """Theme and named fonts for the whole application."""
    style = ttk.Style(root)
    if "clam" in style.theme_names():  # flat and legible on X11, unlike "default"
        style.theme_use("clam")
    root.configure(background=background(root))
    for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont"):
        tkfont.nametofont(name).configure(family=FAMILY, size=10)
    # Kept on the root: a named font dies with its last Python reference.
    root.siui_fonts = [tkfont.Font(root, name="SiuiTitle", family=FAMILY, size=13, weight="bold"),
                       tkfont.Font(root, name="SiuiBold", family=FAMILY, size=10, weight="bold"),
                       tkfont.Font(root, name="SiuiSerial", family=MONO, size=13)]
    style.configure("Title.TLabel", font="SiuiTitle")
    style.configure("Bold.TLabel", font="SiuiBold")
    style.configure("Hint.TLabel", foreground=HINT_TEXT)
    style.configure("Ok.TLabel", foreground=OK_TEXT)
    style.configure("Error.TLabel", foreground=ERROR_TEXT)
    style.configure("Warning.TLabel", foreground=WARNING_TEXT)
    style.configure("Serial.TEntry", padding=(4, 3))
    style.configure("Status.TFrame", relief="sunken", borderwidth=1)
    style.configure("TLabelframe.Label", font="SiuiBold")
    style.configure("TButton", padding=(10, 4))


def dialog(parent: tk.Tk, name: str, title: str, width: int, height: int) -> tk.Toplevel:
    """A dialog window over ``parent``, a little in from its corner (without a window
    manager, as under Xvfb, nothing else would place it), in the theme's colour and with
    a thin frame of its own, so it stands out even where nothing decorates it."""
    window = tk.Toplevel(parent, name=name, background=background(parent),
                         highlightthickness=1, highlightbackground="#7a7a7a",
                         highlightcolor="#7a7a7a")
    window.title(title)
    window.transient(parent)
    parent.update_idletasks()
    window.geometry(f"{width}x{height}+{parent.winfo_rootx() + 40}+{parent.winfo_rooty() + 30}")
    return window


def modal(window: tk.Toplevel) -> None:
    """Keep the input in ``window`` until it closes. A window manager may not have
    mapped it yet (grab fails on a window not viewable): then try again shortly."""
    if not window.winfo_exists():
        return
    try:
        window.grab_set()
    except tk.TclError:
        window.after(50, modal, window)
        return
    window.focus_force()


def bounded(variable: tk.StringVar, limit: int) -> tk.StringVar:
    """Keep what a field holds to ``limit`` characters, however much is pasted in."""
    def cut(*_: object) -> None:
        text = variable.get()
        if len(text) > limit:
            variable.set(text[:limit])

    variable.trace_add("write", cut)
    return variable


def background(widget: tk.Misc) -> str:
    return ttk.Style(widget).lookup("TFrame", "background") or "#dcdad5"


# Tk's own dialogs (the file chooser) speak through msgcat, and Tk ships no Romanian:
# these are the texts of the chooser a provider sees when picking a certificate.
_TK_ROMANIAN = {
    "&Directory:": "&Dosar:", "File &name:": "&Nume fișier:", "Files of &type:": "&Tip fișiere:",
    "&Open": "&Deschide", "Open": "Deschide", "&Cancel": "&Renunță", "Cancel": "Renunță",
    "&OK": "&OK", "OK": "OK", "All Files": "Toate fișierele",
    "Show &Hidden Files and Directories": "Arată fișierele și dosarele &ascunse",
    'File "%1$s" does not exist.': "Fișierul „%1$s” nu există.",
    'Directory "%1$s" does not exist.': "Dosarul „%1$s” nu există.",
    'Invalid file name "%1$s".': "Nume de fișier nevalid: „%1$s”.",
}


def localize(root: tk.Tk, language: str) -> None:
    """Tk's built-in dialogs in the window's language."""
    if language != "ro":
        root.tk.call("::msgcat::mclocale", "en")
        return
    root.tk.call("::msgcat::mclocale", "ro")
    for english, romanian in _TK_ROMANIAN.items():
        root.tk.call("namespace", "eval", "::tk", ["::msgcat::mcset", "ro", english, romanian])
