"""The provider's desktop client against the running stack, driven in a pseudo-terminal
as a person would: the Activare wizard (a typo refused at once, then the right serial),
Conectare online with a PKCS#12 bundle and its passphrase, the semaphore green; the
house suspends the certificate and the status bar turns red with the reason within the
heartbeat; reinstated, green again; the key reset, red with "key replaced"; activated
again with the new serial, green without restarting; Ctrl-C ends it cleanly.

Order-independent: the test makes its own provider (a fresh valid CUI in house B) and
its own client certificate from the demo issuing authority, so nothing it does touches
what other e2e tests register (the demo provider 12433636 and its certificate).
"""
from __future__ import annotations

import asyncio
import codecs
import fcntl
import json
import os
import pty
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.infra import free_port
from tests.support.provider import (P12_PASSPHRASE, client_env, fresh_cui, issue_key, mint_certificate,
                                    new_provider_with_key, register_certificate, set_suspended,
                                    typo_of)
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
GREEN_ONLINE = "\x1b[1;32m\u25cf online"
INTERVAL = 1.0
RETRY_MAX = 2.0  # while offline, reconnect within 2 s (full jitter) rather than minutes
# The heartbeat notices within one interval, a reconnect comes within RETRY_MAX; the
# margin covers the suspension event reaching ocsp (within a second, by the contract)
# and a loaded CI machine.
# Generous: the bound is what a slow, loaded CI machine needs, not what a desktop takes.
NOTICE_WITHIN = max(INTERVAL, RETRY_MAX) + 12.0


class Terminal:
    """A program in a pseudo-terminal (its controlling tty, so getpass works)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the program at once
            # As a terminal's shell would: Ctrl-C interrupts the program. An ignored SIGINT
            # survives exec (nohup, some CI runners start `make test` so), and Python then
            # installs no KeyboardInterrupt handler: the program would never see the Ctrl-C.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(ROOT)
            os.execvpe(sys.executable, [sys.executable, "-m", "clients.desktop", *args], env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 220, 0, 0))
        self.pid, self.fd = pid, fd
        self.raw = ""
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.returncode: int | None = None

    def _pump(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the program ended and the tty closed
                return
            if not data:
                return
            self._pending += self._decoder.decode(data)
            # Hold back an escape sequence cut in two, so that positions in ``text``
            # (marks) never move when its end arrives.
            cut = self._pending.rfind("\x1b")
            if cut != -1 and not ANSI.match(self._pending, cut):
                self.raw, self._pending = self.raw + self._pending[:cut], self._pending[cut:]
            else:
                self.raw, self._pending = self.raw + self._pending, ""

    @property
    def text(self) -> str:
        """What the screen received, without colours; a carriage return (the status
        bar redrawn in place) starts a new line, so each drawing is a line of its own."""
        self._pump()
        return ANSI.sub("", self.raw).replace("\r\n", "\n").replace("\r", "\n")

    def mark(self) -> int:
        return len(self.text)

    async def expect(self, pattern: str, *, since: int = 0, timeout: float = 15.0) -> re.Match:
        regex = re.compile(pattern)

        async def seen():
            return regex.search(self.text, since)

        try:
            return await eventually(seen, timeout=timeout, interval=0.05, what=f"{pattern!r} on screen")
        except AssertionError:
            raise AssertionError(f"{pattern!r} not on screen within {timeout}s; screen:\n{self.text[since:]}")

    def type(self, line: str) -> None:
        os.write(self.fd, (line + "\r").encode())

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def exit_code(self, timeout: float = 15.0) -> int:
        async def ended():
            self._pump()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return True
            return False

        await eventually(ended, timeout=timeout, what="the program to exit")
        return self.returncode

    def close(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
        os.close(self.fd)


def run_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """A scripted (non-terminal) run of the client."""
    return subprocess.run([sys.executable, "-m", "clients.desktop", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


async def test_activate_in_the_wizard_then_the_semaphore_follows_the_house(stack, pki, http, admin_headers,
                                                                           tmp_path):
    cui, provider_id, serial = await new_provider_with_key(stack, http, admin_headers)
    username = f"{cui}_CAS-B"
    files = mint_certificate(pki, cui, f"SC DESKTOP {cui} SRL", tmp_path / "provider")
    certificate_id = await register_certificate(stack, http, admin_headers, pki, username,
                                                files["cert"].read_text())
    home = tmp_path / "desktop-home"
    env = client_env(home)
    online_url = f"https://127.0.0.1:{stack.ports['ocsp_tls']}"

    # Administrare / Activare: tick, Inainte; a typo refused at once; the serial; house B; Inainte.
    wizard = Terminal(["--server", stack.url("keygen")], env)
    try:
        await wizard.expect(r"\[ \] Reactivare baza de date curenta")
        wizard.type("x")
        await wizard.expect(r"\[x\] Reactivare baza de date curenta")
        at = wizard.mark()  # before typing: the answer may come before the next look
        wizard.type("")
        await wizard.expect(r"Serie de licenta \(", since=at)
        wizard.type(typo_of(serial))
        await wizard.expect(r"greșeală de tastare: caracterul de control nu corespunde", since=at)
        at = wizard.mark()
        wizard.type(serial.lower().replace("-", " "))  # as read aloud: lower case, blanks
        await wizard.expect(r"10\. B\s+București", since=at)
        await wizard.expect(r"Casa de asigurari \(numarul", since=at)
        wizard.type("B")
        await wizard.expect(rf"Serie de licenta: {serial}\nCasa de asigurari: CAS-B", since=at)
        wizard.type("")
        await wizard.expect(rf"Activare reușită: utilizator {username}, furnizor SC DESKTOP {cui} SRL", since=at)
        assert await wizard.exit_code() == 0
    finally:
        wizard.close()
    saved = home / "activation.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["license_serial"] == serial
    status = run_client(env, "status")
    assert status.returncode == 0 and username in status.stdout and serial not in status.stdout

    # Conectare online with the PKCS#12 bundle: the passphrase, then the green semaphore.
    connect = Terminal(["connect", "--p12", str(files["p12"]), "--interval", str(INTERVAL),
                        "--server", online_url, "--ca", str(pki.root_ca_cert)], env)
    try:
        await connect.expect(r"Parola pentru .*provider\.p12: ")
        connect.type(P12_PASSPHRASE)
        await connect.expect(rf"Certificat: {cui} \(SC DESKTOP {cui} SRL\), emis de MSANATATII CA")
        await connect.expect(rf"● online \| {username} @ CAS-B \|", timeout=30)
        assert GREEN_ONLINE in connect.raw and P12_PASSPHRASE not in connect.text

        # The house suspends the certificate: red, with the reason, within the heartbeat.
        at = connect.mark()
        started = time.monotonic()
        await set_suspended(stack, http, admin_headers, certificate_id, True)
        await connect.expect(r"● offline \| [^\n]*suspendat", since=at, timeout=NOTICE_WITHIN)
        assert time.monotonic() - started < NOTICE_WITHIN

        # Reinstated: green again, without touching the client.
        at = connect.mark()
        await set_suspended(stack, http, admin_headers, certificate_id, False)
        await connect.expect(r"● online \|", since=at, timeout=NOTICE_WITHIN)

        # Resetare parola: the old key stops working; the heartbeat says the key was replaced.
        at = connect.mark()
        new_serial = await issue_key(stack, http, admin_headers, provider_id, reset=True)
        await connect.expect(r"● offline \| [^\n]*(înlocuită|key_replaced)", since=at, timeout=NOTICE_WITHIN + 5)

        # Activated again with the new serial (a script, meanwhile): green, no restart.
        at = connect.mark()
        again = run_client(env, "activate", "--serial", new_serial, "--cas", "B", "--server", stack.url("keygen"))
        assert again.returncode == 0, again.stderr
        await connect.expect(r"● online \|", since=at, timeout=NOTICE_WITHIN)

        # Ctrl-C: a clean goodbye.
        connect.send(b"\x03")
        await connect.expect(r"Deconectat\.")
        assert await connect.exit_code() == 0
    finally:
        connect.close()


async def test_connect_once_answers_with_its_exit_status(stack, pki, http, admin_headers, tmp_path):
    cui, _, serial = await new_provider_with_key(stack, http, admin_headers)
    username = f"{cui}_CAS-B"
    registered = mint_certificate(pki, cui, "SC ONCE SRL", tmp_path / "registered")
    # Another holder's (its own CUI and name): one naming the same holder would be a renewal (issue 15).
    unregistered = mint_certificate(pki, fresh_cui(), "SC ALTUL SRL", tmp_path / "unregistered")
    await register_certificate(stack, http, admin_headers, pki, username, registered["cert"].read_text())
    env = client_env(tmp_path / "home")
    activated = run_client(env, "--lang", "en", "activate", "--serial", serial, "--cas", "b",
                           "--server", stack.url("keygen"))
    assert activated.returncode == 0, activated.stderr
    assert f"Activated: user {username}" in activated.stdout
    online = ["--server", f"https://127.0.0.1:{stack.ports['ocsp_tls']}", "--ca", str(pki.root_ca_cert)]

    tries: list[subprocess.CompletedProcess] = []

    async def once_online():
        tries.append(await asyncio.to_thread(run_client, env, "connect", "--once", "--cert",
                                             str(registered["cert"]), "--key", str(registered["key"]), *online))
        return tries[-1].returncode == 0 and tries[-1]

    try:  # offline until ocsp has heard of the key and the certificate (events)
        result = await eventually(once_online, timeout=20, interval=0.5, what="connect --once online")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last try: {tries[-1].stdout}{tries[-1].stderr}") from None
    assert f"● online | {username} @ CAS-B" in result.stdout

    refused = run_client({**env, "LANG": "en_GB.UTF-8"}, "connect", "--once", "--cert",
                         str(unregistered["cert"]), "--key", str(unregistered["key"]), *online)
    assert refused.returncode == 1
    assert "● offline" in refused.stdout and "not registered" in refused.stdout

    unreachable = run_client(env, "connect", "--once", "--cert", str(registered["cert"]), "--key",
                             str(registered["key"]), "--ca", str(pki.root_ca_cert),
                             "--server", f"https://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "nu poate fi contactată" in unreachable.stdout
