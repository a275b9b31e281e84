"""A real X display for a test, and real input on it: Xvfb on a display number the
server picks itself (``-displayfd``, so parallel runs never collide), xdotool for the
mouse and the keyboard, ImageMagick's ``import`` for screenshots.

A window under test writes what it shows to a probe file (the desktop client's
``SIUI_DESKTOP_PROBE``); :class:`ProbedWindow` reads it to find where a widget is and
what it says, and waits on it with a deadline for positive evidence.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.wait import eventually

START_WITHIN = 10.0
_CLIPBOARD_OWNER = """
import sys, tkinter
root = tkinter.Tk()
root.withdraw()
root.clipboard_clear()
root.clipboard_append(sys.argv[1])
root.update()
print("ready", flush=True)
root.mainloop()
"""


class Display:
    """``with Display() as display:`` an Xvfb server, stopped (and reaped) on exit."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        self.size = (width, height)
        self.name = ""
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "Display":
        read, write = os.pipe()
        try:
            self._process = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{self.size[0]}x{self.size[1]}x24",
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.close(write)
            write = -1
            number = _read_line(read, START_WITHIN)
        finally:
            os.close(read)
            if write != -1:
                os.close(write)
        if not number.isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError(f"Xvfb did not start within {START_WITHIN}s")
        self.name = f":{number}"
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.name}

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    @contextlib.contextmanager
    def clipboard(self, text: str):
        """The CLIPBOARD holding ``text`` while the block runs, as a copy from another
        program (the agreement PDF) leaves it: a small Tk program owns the selection
        and answers whoever pastes."""
        owner = subprocess.Popen([sys.executable, "-c", _CLIPBOARD_OWNER, text],
                                 env={**os.environ, **self.env}, stdout=subprocess.PIPE)
        try:
            ready, _, _ = select.select([owner.stdout], [], [], START_WITHIN)
            if not ready or owner.stdout.readline().strip() != b"ready":
                raise RuntimeError("the clipboard's owner did not start")
            yield
        finally:
            owner.terminate()
            owner.wait(5)
            owner.stdout.close()

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-display", self.name, "-window", "root", str(path)],
                       check=True, timeout=20, capture_output=True)
        return path


def _read_line(fd: int, timeout: float) -> str:
    """What Xvfb writes to ``-displayfd`` once it accepts connections: the display
    number and a newline (read whole: closing the pipe early would fail its write)."""
    data, end = b"", time.monotonic() + timeout
    while not data.endswith(b"\n") and len(data) < 32:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(fd, 32) if ready else b""
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


class ProbedWindow:
    """A Tk application on ``display`` that writes its probe file at ``probe``."""

    def __init__(self, display: Display, probe: Path) -> None:
        self.display = display
        self.probe = probe

    def state(self) -> dict:
        try:
            return json.loads(self.probe.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {"windows": {}}

    def widgets(self, state: dict | None = None) -> dict[str, dict]:
        state = state or self.state()
        return {path: w for window in state["windows"].values() for path, w in window["widgets"].items()}

    def find(self, suffix: str, state: dict | None = None) -> dict | None:
        """The widget whose Tk path ends with ``suffix`` (e.g. ``wizard.footer.next``)."""
        for path, widget in self.widgets(state).items():
            if path.endswith(suffix):
                return {"path": path, **widget}
        return None

    async def until(self, check: Callable[["ProbedWindow"], object], what: str,
                    timeout: float = 15.0):
        async def probe():
            return check(self)

        try:
            return await eventually(probe, timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the window shows: {self.describe()}") from None

    async def widget(self, suffix: str, timeout: float = 15.0) -> dict:
        return await self.until(lambda w: w.find(suffix), f"widget {suffix!r} shown", timeout)

    async def click(self, suffix: str) -> dict:
        widget = await self.widget(suffix)
        x, y = widget["x"] + widget["w"] // 2, widget["y"] + widget["h"] // 2
        # No --sync: xdotool waits for the pointer to move, forever when it is there
        # already; the X server keeps the order anyway, so the click lands at x, y.
        self.display.xdotool("mousemove", str(x), str(y), "click", "1")
        return widget

    def keys(self, *keys: str) -> None:
        self.display.xdotool("key", "--delay", "40", *keys)

    def type(self, text: str) -> None:
        self.display.xdotool("type", "--delay", "25", text)

    def describe(self) -> str:
        texts = {path: w.get("text") or w.get("value") for path, w in self.widgets().items()
                 if w.get("text") or w.get("value")}
        return json.dumps(texts, ensure_ascii=False)[:4000]


@contextlib.contextmanager
def deadline(seconds: float):
    """Assert that the block ran within ``seconds`` (a test's own time budget)."""
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.1f}s, more than {seconds}s"
