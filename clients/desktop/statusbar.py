"""The status bar ("bara de stare"): the semaphore and the messages the provider follows
the whole time the desktop is online.

``render`` makes one line (pure); :class:`StatusBar` draws it. On a terminal the bar is
the last line, redrawn in place at every heartbeat, and each change of state is also
written above it in full, so the history of the session stays on the screen. Written to
a file or a pipe, only changes are written, one line each, without colours.
"""
from __future__ import annotations

import os
import shutil
from typing import TextIO

from clients.desktop.messages import Messages
from clients.desktop.online import Status
from clients.desktop.statusview import view

DOT = "\u25cf"  # ●
WARNING_SIGN = "\u26a0"  # ⚠
GREEN, RED, DIM, RESET = "\x1b[1;32m", "\x1b[1;31m", "\x1b[2m", "\x1b[0m"
CLEAR_LINE = "\r\x1b[2K"
SEPARATOR = " | "


def render(status: Status, messages: Messages, *, color: bool = False, server: str = "",
           width: int | None = None) -> str:
    """One line: ``● online | <user> @ <house> | <message> | verificat la HH:MM:SS``,
    with the server's warning after the message and, while offline, when the next
    attempt comes (:func:`clients.desktop.statusview.view` decides all of it).

    ``width`` truncates the line (with an ellipsis) so that an in-place redraw never
    wraps; colours are ANSI escapes, added only when ``color``.
    """
    shown = view(status, messages, server=server)
    semaphore = f"{DOT} {shown.semaphore}"
    parts = [shown.who, shown.text, shown.warning and f"{WARNING_SIGN} {shown.warning}",
             shown.checked, shown.next_attempt]
    rest = SEPARATOR.join(p for p in parts if p)
    line = f"{semaphore}{SEPARATOR}{rest}"
    if width is not None and len(line) > width:
        rest = rest[: max(0, width - len(semaphore) - len(SEPARATOR) - 1)] + "\u2026"
    if color:
        semaphore = f"{GREEN if shown.online else RED}{semaphore}{RESET}"
    return f"{semaphore}{SEPARATOR}{rest}"


def use_color(stream: TextIO, env: dict | None = None) -> bool:
    """ANSI colours on a terminal, unless ``NO_COLOR`` is set (no-color.org)."""
    env = os.environ if env is None else env
    return bool(stream.isatty()) and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


class StatusBar:
    """Draws statuses to ``stream`` as described in the module docstring."""

    def __init__(self, stream: TextIO, messages: Messages, *, server: str = "",
                 tty: bool | None = None, color: bool | None = None) -> None:
        self._out = stream
        self._messages = messages
        self._server = server
        self._tty = stream.isatty() if tty is None else tty
        self._color = use_color(stream) if color is None else color
        self._last: Status | None = None

    def show(self, status: Status) -> None:
        """Draw ``status``: a history line when the state changed, then the bar."""
        changed = not status.same_state(self._last)
        self._last = status
        if not self._tty:
            if changed:
                self._write(render(status, self._messages, server=self._server) + "\n")
            return
        text = CLEAR_LINE
        if changed:
            text += render(status, self._messages, color=self._color, server=self._server) + "\n"
        width = shutil.get_terminal_size((100, 24)).columns - 1
        text += render(status, self._messages, color=self._color, server=self._server,
                       width=width)
        self._write(text)

    def close(self) -> None:
        """End the bar's line and say the session is over."""
        prefix = CLEAR_LINE if self._tty else ""
        self._write(f"{prefix}{self._messages('disconnected')}\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

