"""The desktop e2e test's pseudo-terminal works when `make test` runs with SIGINT ignored.

nohup, and CI runners that start jobs in the background, start `make test` with SIGINT
ignored; that survives fork and exec, so a program in the test's pty would never get the
Ctrl-C it is sent and that step would hang. This runs pytest exactly so (SIGINT ignored
before exec) on a test that drives the real desktop client in tests/e2e/test_desktop.py's
Terminal: its wizard's first screen, then Ctrl-C, then the client's cancel and exit code.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Becomes pytest with SIGINT ignored, as nohup leaves it.
IGNORING_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "os.execvp(sys.argv[1], sys.argv[1:])")
INNER = r'''
import signal

from tests.e2e.test_desktop import Terminal, client_env


async def test_ctrl_c_reaches_the_desktop_client(tmp_path):
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the condition is real
    wizard = Terminal(["--server", "http://127.0.0.1:9"], client_env(tmp_path / "home"))
    try:
        await wizard.expect(r"\[ \] Reactivare baza de date curenta")
        wizard.send(b"\x03")
        await wizard.expect("Activare anulat")
        assert await wizard.exit_code() == 1
    finally:
        wizard.close()
'''


def test_the_desktop_terminal_gets_ctrl_c_when_the_suite_ignores_sigint(tmp_path):
    inner = tmp_path / "test_ctrl_c_under_ignored_sigint.py"
    inner.write_text(INNER)
    result = subprocess.run(
        [sys.executable, "-c", IGNORING_SIGINT, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(inner)],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout
