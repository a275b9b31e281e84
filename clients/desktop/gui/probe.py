"""A test hook: with ``SIUI_DESKTOP_PROBE=<file>`` the window writes what it shows —
every toplevel (its title and place), and in each the widgets a person sees (their
place on the screen, text, value, state, a canvas's colours) — as JSON to that file,
rewritten whenever it changes. The e2e test reads it to know where to click and what
the window says; the input it sends is real X events.

Everything is read back from Tk itself (Tcl introspection), not from the application's
own variables, so the file says what is on the screen, including windows Tk makes by
itself such as the file chooser.
"""
from __future__ import annotations

import json
import os
import tkinter as tk
from pathlib import Path

MAX_WIDGETS = 500  # per snapshot; the window has about a hundred
MAX_TEXT = 2000
_TEXT_CLASSES = {"Label", "TLabel", "Button", "TButton", "Checkbutton", "TCheckbutton",
                 "Radiobutton", "TRadiobutton", "Labelframe", "TLabelframe"}
_SHAPES = {"oval", "rectangle", "polygon", "arc"}
_VALUE_CLASSES = {"Entry", "TEntry", "TCombobox", "Spinbox", "TSpinbox"}


class Probe:
    def __init__(self, root: tk.Tk, path: Path) -> None:
        self._root = root
        self._path = Path(path)
        self._last = ""

    def write_if_changed(self) -> None:
        text = json.dumps(self.snapshot(), ensure_ascii=False, sort_keys=True)
        if text == self._last:
            return
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self._path)  # a reader never sees half a file
        self._last = text

    def snapshot(self) -> dict:
        self._root.update_idletasks()  # geometry and redraws pending: what will be on screen
        call = self._root.tk.call
        windows = {}
        budget = [MAX_WIDGETS]
        for path in (".", *self._descendants(".")):
            if str(call("winfo", "toplevel", path)) != path or not _int(call("winfo", "ismapped", path)):
                continue
            windows[path] = {"title": str(call("wm", "title", path)), **self._place(path),
                             "widgets": self._widgets(path, budget)}
        focus = str(call("focus"))
        return {"windows": windows, "focus": focus, "menu": self._menu()}

    def _descendants(self, path: str) -> list[str]:
        found = []
        for child in self._root.tk.splitlist(self._root.tk.call("winfo", "children", path)):
            found.append(str(child))
            found.extend(self._descendants(str(child)))
        return found

    def _widgets(self, top: str, budget: list[int]) -> dict:
        call = self._root.tk.call
        out = {}
        for path in self._descendants(top):
            if budget[0] <= 0:
                break
            if str(call("winfo", "toplevel", path)) != top or not _int(call("winfo", "viewable", path)):
                continue
            try:
                out[path] = self._widget(path)
            except tk.TclError:  # destroyed while we looked, or not what its class says
                continue
            budget[0] -= 1
        return out

    def _widget(self, path: str) -> dict:
        call, split = self._root.tk.call, self._root.tk.splitlist
        kind = str(call("winfo", "class", path))
        entry = {"class": kind, **self._place(path)}
        if kind in _TEXT_CLASSES:
            entry["text"] = str(call(path, "cget", "-text"))[:MAX_TEXT]
        if kind in _VALUE_CLASSES:
            entry["value"] = str(call(path, "get"))[:MAX_TEXT]
        if kind.startswith("T") and kind != "TFrame":
            entry["state"] = " ".join(str(s) for s in split(call(path, "state")))
        if kind == "Canvas":  # the drawn shapes' colours (the semaphore's lamp)
            entry["fills"] = [str(call(path, "itemcget", item, "-fill"))
                              for item in split(call(path, "find", "all"))
                              if str(call(path, "type", item)) in _SHAPES]
        return entry

    def _place(self, path: str) -> dict:
        call = self._root.tk.call
        return {"x": _int(call("winfo", "rootx", path)), "y": _int(call("winfo", "rooty", path)),
                "w": _int(call("winfo", "width", path)), "h": _int(call("winfo", "height", path))}

    def _menu(self) -> dict[str, list[dict]]:
        """The menu bar: each cascade's entries (label, state), as a person sees them."""
        call = self._root.tk.call
        bar = str(self._root.cget("menu"))
        return {str(call(bar, "entrycget", i, "-label")): self._entries(str(call(bar, "entrycget", i, "-menu")))
                for i in self._indices(bar) if str(call(bar, "type", i)) == "cascade"} if bar else {}

    def _entries(self, menu: str) -> list[dict]:
        call = self._root.tk.call
        return [{"label": str(call(menu, "entrycget", i, "-label")),
                 "state": str(call(menu, "entrycget", i, "-state"))}
                for i in self._indices(menu) if str(call(menu, "type", i)) in ("command", "cascade")]

    def _indices(self, menu: str) -> range:
        last = str(self._root.tk.call(menu, "index", "end"))
        return range(int(last) + 1) if last.isdigit() else range(0)


def _int(value: object) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
