"""The provider's window (``python -m clients.desktop gui``), in Tk from Python's
standard library, so a provider's PC needs nothing beyond Python with Tk.

The domain is the terminal's — activation, the online channel, its schedule, the
messages, what the status bar says; this package is only widgets: :mod:`.app` (the main
window and its menu), :mod:`.wizard` and :mod:`.serialentry` (Administrare / Activare),
:mod:`.connect` (the certificate), :mod:`.statusbar` (the semaphore), :mod:`.style`, and
:mod:`.probe` (what the window shows, written out for the e2e test).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from clients.desktop.activation import ActivationStore
from clients.desktop.messages import Messages

NO_DISPLAY = 2


def run_window(messages: Messages, store: ActivationStore, *, keygen_server: str,
               online_server: str, ca: Path | None, interval: float, retry_max: float) -> int:
    """Open the window and run it until Ieșire (or the window is closed): 0."""
    try:
        import tkinter as tk
    except ImportError as exc:  # Debian's python3 has Tk in python3-tk
        print(f"tkinter: {exc} (Debian/Ubuntu: apt-get install python3-tk)", file=sys.stderr)
        return NO_DISPLAY
    from clients.desktop.gui.app import App

    try:
        root = tk.Tk(className="siui-desktop")
    except tk.TclError as exc:  # no X display
        print(f"{exc}", file=sys.stderr)
        return NO_DISPLAY
    probe = os.environ.get("SIUI_DESKTOP_PROBE", "").strip()
    App(root, messages, store, keygen_server=keygen_server, online_server=online_server, ca=ca,
        interval=interval, retry_max=retry_max, probe=Path(probe) if probe else None)
    try:
        root.mainloop()
    except KeyboardInterrupt:
        pass
    return 0
