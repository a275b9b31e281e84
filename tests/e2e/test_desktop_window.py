"""The provider's window (``python -m clients.desktop gui``) on a real X display (Xvfb),
against the running stack, driven by real input events (xdotool: the keyboard for the
menu, mouse clicks on the buttons, typing into the fields, the file chooser):

Administrare / Activare: tick Reactivare baza de date curenta, Inainte; a serial the
house does not know, pasted (Ctrl+V) into the first box (403, said in words), Inapoi; a
typo flagged at once; the serial typed in lower case without dashes, house B from the
list, Inainte: activated. Then
Conectare online with the PKCS#12 picked in the file chooser and its passphrase (a wrong
one said first): the semaphore green with the heartbeat's time moving; the house
suspends the certificate: red with the reason; reinstated: green; Deconectare; Ieșire.

In English, against a keygen that throttles then vanishes: the wait said and honoured,
then the server unreachable. What the window shows is read back from Tk through the
client's probe file; screenshots are kept in test-artifacts/desktop-window/.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from shared.license import generate
from tests.support.infra import free_port
from tests.support.provider import (P12_PASSPHRASE, client_env, mint_certificate,
                                    new_provider_with_key, register_certificate, set_suspended,
                                    typo_of)
from tests.support.xdisplay import Display, ProbedWindow

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "desktop-window"
INTERVAL, RETRY_MAX = 1.0, 2.0
NOTICE_WITHIN = max(INTERVAL, RETRY_MAX) + 4.0  # as for the terminal: event delay and load


@pytest.fixture
def display():
    with Display(900, 500) as running:  # the window is 860 × 430: screenshots without a void
        yield running


class Window(ProbedWindow):
    """The client's window: its process, and what it shows."""

    def __init__(self, display: Display, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        super().__init__(display, tmp_path / "probe.json")
        self.log = tmp_path / "window.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clients.desktop", "gui", *args], cwd=ROOT,
                env={**env, **display.env, "SIUI_DESKTOP_PROBE": str(self.probe)},
                stdout=log, stderr=subprocess.STDOUT)

    def text(self, suffix: str) -> str:
        widget = self.find(suffix)
        return (widget.get("text") or widget.get("value") or "") if widget else ""

    def lamp(self) -> str:
        widget = self.find(".statusbar.lamp")
        return widget["fills"][0] if widget else ""

    async def shows(self, suffix: str, *parts: str, timeout: float = 15.0) -> str:
        return await self.until(lambda w: all(p in w.text(suffix) for p in parts) and w.text(suffix),
                                f"{suffix} showing {parts}", timeout)

    def shot(self, name: str) -> None:
        self.display.screenshot(SHOTS / f"{name}.png")

    def menu(self, letter: str) -> None:
        """Administrare (Alt+A), then the entry by its underlined letter, with the pointer
        over the main window (without a window manager, the keyboard follows it)."""
        self.display.xdotool("mousemove", "420", "200")
        self.keys("alt+a", letter)

    async def clear_serial(self) -> None:
        await self.click(".serial.box4")
        self.keys("End", *["BackSpace"] * 22)
        await self.until(lambda w: not any(w.text(f".serial.box{i}") for i in range(1, 5)),
                         "the serial boxes emptied")

    async def ended(self, timeout: float = 10.0) -> int:
        await self.until(lambda w: w.process.poll() is not None, "the window closed", timeout)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def test_the_window_activates_connects_and_its_semaphore_follows_the_house(
        stack, pki, http, admin_headers, tmp_path, display):
    cui, _, serial = await new_provider_with_key(stack, http, admin_headers)
    username = f"{cui}_CAS-B"
    files = mint_certificate(pki, cui, f"SC FEREASTRA {cui} SRL", tmp_path / "provider")
    certificate_id = await register_certificate(stack, http, admin_headers, pki, username,
                                                files["cert"].read_text())
    window = Window(display, tmp_path, client_env(tmp_path / "home"),
                    "--server", stack.url("keygen"), "--online-server",
                    f"https://127.0.0.1:{stack.ports['ocsp_tls']}", "--ca", str(pki.root_ca_cert),
                    "--interval", str(INTERVAL), "--retry-max", str(RETRY_MAX))
    try:
        await window.shows(".statusbar.message", "Neconectat")
        assert window.lamp() == "#9e9e9e"
        window.shot("01-start")

        # Administrare / Activare, step 1: the box, Inainte.
        window.menu("a")
        await window.shows(".wizard.step", "Pasul 1 din 3")
        await window.click(".wizard.step1.reactivate")
        await window.until(lambda w: "selected" in w.find(".step1.reactivate")["state"], "box ticked")
        window.shot("02-wizard-reactivare")
        await window.click(".wizard.footer.next")

        # Step 2: a well-formed serial the house never issued, pasted (Ctrl+V) into the
        # first box: it fills all four; refused by the house (403), in words.
        await window.shows(".wizard.step", "Pasul 2 din 3")
        unknown = generate()
        with display.clipboard(unknown):
            await window.click(".serial.box1")
            window.keys("ctrl+v")
            await window.shows(".step2.feedback", f"Seria de licență este corectă: {unknown}")
        assert [window.text(f".serial.box{i}") for i in range(1, 5)] == unknown.split("-")
        window.keys("Tab", "b")  # to the list of houses; typed, the code picks Bucharest
        await window.shows(".step2.house", "B \u2014 București (CAS-B)")
        await window.click(".wizard.footer.next")
        await window.shows(".step3.answer", "nu este valabilă la această casă de asigurări")
        window.shot("03-wizard-refused-403")
        await window.click(".wizard.footer.back")

        # A typo is flagged as it is typed, before anything is sent.
        await window.shows(".wizard.step", "Pasul 2 din 3")
        await window.clear_serial()
        window.type(typo_of(serial).lower())
        await window.shows(".step2.feedback", "greșeală de tastare")
        window.shot("04-wizard-typo")

        # The serial as read aloud: lower case, no dashes; the boxes split it 5-4-4-4.
        await window.clear_serial()
        window.type(serial.lower().replace("-", ""))
        await window.shows(".step2.feedback", f"corectă: {serial}")
        assert [window.text(f".serial.box{i}") for i in range(1, 5)] == serial.split("-")
        window.shot("05-wizard-serial")
        await window.click(".wizard.footer.next")
        await window.shows(".step3.answer", f"Activare reușită: utilizator {username}",
                           f"SC DESKTOP {cui} SRL")
        window.shot("06-wizard-activated")
        await window.click(".wizard.footer.close")
        await window.shows(".body.activation.user", username)

        # Conectare online: the PKCS#12 picked in the file chooser, a wrong passphrase first.
        window.menu("c")
        await window.click(".connect.body.browse_p12")
        await window.click("__tk_filedialog.contents.f2.ent")
        window.type(str(files["p12"]))
        window.keys("Return")
        await window.shows(".connect.body.p12", str(files["p12"]))
        await window.click(".connect.body.passphrase")
        window.type("nu-este-parola")
        await window.click(".connect.footer.connect")
        await window.shows(".connect.body.error", "Parola nu deschide", "provider.p12")
        window.shot("07-connect-wrong-passphrase")
        await window.click(".connect.body.passphrase")
        window.keys("End", *["BackSpace"] * 20)
        window.type(P12_PASSPHRASE)
        await window.click(".connect.footer.connect")

        # Green, with who and where; the heartbeat's time moves on.
        await window.until(lambda w: w.lamp() == "#1f9d3a", "the semaphore green", timeout=30)
        assert window.text(".statusbar.semaphore") == "online"
        assert window.text(".statusbar.who") == f"{username} @ CAS-B"
        assert window.text(".body.certificate.subject") == f"{cui} (SC FEREASTRA {cui} SRL)"
        checked = await window.shows(".statusbar.checked", "verificat la")
        await window.until(lambda w: w.text(".statusbar.checked") not in ("", checked),
                           "a later heartbeat", timeout=NOTICE_WITHIN)
        assert P12_PASSPHRASE not in window.probe.read_text()
        window.shot("08-online")

        # The house suspends the certificate: red, with the reason, and the next attempt.
        await set_suspended(stack, http, admin_headers, certificate_id, True)
        await window.until(lambda w: w.lamp() == "#d32f2f", "the semaphore red", timeout=NOTICE_WITHIN)
        await window.shows(".statusbar.message", "suspendat")
        await window.shows(".statusbar.next_attempt", "reîncercare la")
        assert window.text(".statusbar.semaphore") == "offline"
        window.shot("09-suspended")

        # Reinstated: green again by itself.
        await set_suspended(stack, http, admin_headers, certificate_id, False)
        await window.until(lambda w: w.lamp() == "#1f9d3a", "green again", timeout=NOTICE_WITHIN)

        # Deconectare, then Ieșire.
        window.menu("d")
        await window.shows(".statusbar.message", "Neconectat")
        assert window.lamp() == "#9e9e9e"
        window.menu("i")
        assert await window.ended() == 0
    finally:
        window.close()
    assert "Traceback" not in window.log.read_text(errors="replace")


async def test_in_english_a_throttle_is_waited_out_then_an_unreachable_house_said(
        tmp_path, display):
    answers = []

    async def activations(request: web.Request) -> web.Response:
        answers.append(await request.json())
        return web.json_response({"title": "Too Many Requests"}, status=429,
                                 headers={"Retry-After": "2"})

    app = web.Application()
    app.router.add_post("/v1/activations", activations)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stopped = False
    window = Window(display, tmp_path, client_env(tmp_path / "home"), "--lang", "en",
                    "--server", f"http://127.0.0.1:{port}")
    try:
        await window.shows(".statusbar.message", "Not connected")
        assert list(window.state()["menu"]) == ["Administrare"]
        window.menu("a")
        await window.shows(".wizard.step", "Step 1 of 3")
        await window.click(".wizard.footer.next")
        await window.click(".serial.box1")
        serial = generate()
        window.type(serial)  # typed whole into the first box, it runs on into the others
        await window.shows(".step2.feedback", "well formed")
        window.keys("Tab", "c", "j")
        await window.shows(".step2.house", "CJ \u2014 Cluj (CAS-CJ)")
        await window.click(".wizard.footer.next")
        await window.shows(".step3.answer", "Too many failed attempts: try again in 2 s.")
        assert answers == [{"license_serial": serial, "cas": "CJ"}]
        await window.until(lambda w: "disabled" in w.find(".wizard.footer.next")["state"],
                           "Inainte held back for the wait")
        window.shot("10-en-throttled")
        await window.until(lambda w: "disabled" not in w.find(".wizard.footer.next")["state"],
                           "Inainte again after the wait", timeout=8)
        await runner.cleanup()  # the house's server goes away
        stopped = True
        await window.click(".wizard.footer.next")
        await window.shows(".step3.answer", "The activation server cannot be reached",
                           f"http://127.0.0.1:{port}")
        window.shot("11-en-unreachable")
        await window.click(".wizard.footer.cancel")
        window.menu("q")
        assert await window.ended() == 0
    finally:
        window.close()
        if not stopped:
            await runner.cleanup()
    assert "Traceback" not in window.log.read_text(errors="replace")
