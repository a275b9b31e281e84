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
import random
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from stdnum.ro import cui as ro_cui

from shared.license import ALPHABET
from tests.support.infra import free_port
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
GREEN_ONLINE = "\x1b[1;32m\u25cf online"
P12_PASSPHRASE = "parola-furnizor"
INTERVAL = 1.0
# The heartbeat notices within one interval; the margin covers the suspension event
# reaching ocsp (within a second, by the contract) and a loaded CI machine.
NOTICE_WITHIN = INTERVAL + 4.0


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


def fresh_cui() -> str:
    """A valid CUI other than the demo provider's: 8 digits, the last its check digit."""
    while True:
        base = str(random.randint(1_000_000, 9_999_999))
        cui = base + ro_cui.calc_check_digit(base)
        if cui != "12433636":
            return cui


def mint_certificate(pki, cui: str, name: str, directory: Path) -> dict[str, Path]:
    """A client certificate for the provider, issued by the demo issuing authority."""
    issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    issuer_key = serialization.load_pem_private_key(pki.demo_issuer_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, cui)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
        .sign(issuer_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"cert": directory / "provider.pem", "key": directory / "provider.key",
             "p12": directory / "provider.p12"}
    paths["cert"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["p12"].write_bytes(pkcs12.serialize_key_and_certificates(
        name.encode(), key, certificate, [issuer],
        serialization.BestAvailableEncryption(P12_PASSPHRASE.encode())))
    for path in paths.values():
        path.chmod(0o600)
    return paths


async def new_provider_with_key(stack, http, admin_headers) -> tuple[str, str, str]:
    """A provider of house B (its own CUI) and its first key: (cui, provider id, serial)."""
    for _ in range(5):
        cui = fresh_cui()
        async with http.post(stack.url("keygen", "/v1/providers"), headers=admin_headers, json={
            "cas": "B", "cui": cui, "name": f"SC DESKTOP {cui} SRL", "trade_register_no": "J40/1/2020",
            "legal_representative": {"name": "Maria Ionescu", "cnp": "1800101221144"},
        }) as r:
            if r.status == 409:
                continue
            assert r.status == 201, await r.text()
            provider_id = (await r.json())["id"]
        return cui, provider_id, await issue_key(stack, http, admin_headers, provider_id, reset=False)
    raise AssertionError("no free CUI found")


async def issue_key(stack, http, admin_headers, provider_id: str, *, reset: bool) -> str:
    async with http.post(stack.url("keygen", f"/v1/providers/{provider_id}/activation-key"),
                         headers=admin_headers, json={"reset": reset}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["license_serial"]


async def register_certificate(stack, http, admin_headers, pki, username: str, cert_pem: str) -> str:
    async with http.post(stack.url("certs", "/v1/issuers"), headers=admin_headers,
                         json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status in (201, 409), await r.text()

    async def registered():
        async with http.post(stack.url("certs", "/v1/certificates"), headers=admin_headers,
                             json={"username": username, "certificate_pem": cert_pem}) as r:
            if r.status == 422:  # certs has not yet heard of the external user
                return None
            assert r.status == 201, await r.text()
            return (await r.json())["id"]

    return await eventually(registered, timeout=20, what="certificate registered")


async def set_suspended(stack, http, admin_headers, certificate_id: str, suspended: bool) -> None:
    async with http.patch(stack.url("certs", f"/v1/certificates/{certificate_id}"), headers=admin_headers,
                          json={"suspended": suspended}) as r:
        assert r.status == 200, await r.text()


def typo_of(serial: str) -> str:
    """The serial with one symbol mistyped (the check character catches it)."""
    i = 7
    return serial[:i] + ALPHABET[(ALPHABET.index(serial[i]) + 1) % len(ALPHABET)] + serial[i + 1:]


def client_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "NO_COLOR")}
    env.update({"SIIU_DESKTOP_HOME": str(home), "PYTHONIOENCODING": "utf-8", "TERM": "xterm"})
    return env


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
    unregistered = mint_certificate(pki, cui, "SC ONCE SRL", tmp_path / "unregistered")
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
