"""Expiry warnings and the replaced key's time on the :8443 online channel (issue 15,
parts 4 and 5), over real TLS with state from real events, the service's clock injected:
"now" is set to exactly 30 days before the certificate's notAfter, and a little before.
The provider's desktop client (``python -m clients.desktop connect --once``) then shows
the warning in its status line, and when the key is reset, when it was replaced."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from clients.desktop.activation import Activation, ActivationStore
from services.ocsp.app import create_app
from services.ocsp.config import Config
from shared.clock import utc_now
from shared.license import load_pepper
from tests.support.clock import FrozenClock
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[3]
DAY = timedelta(days=1)
WARNING_RO = "Certificatul expiră în 30 de zile: reînnoiți-l și conectați-vă cu noul certificat."


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(utc_now())


@pytest.fixture(scope="module")
async def harness(common_config, pki, feed, tmp_path_factory, clock):
    """The ocsp app (its online channel included) on the injected clock."""
    config = Config(common=common_config, port=0, tls_port=0, workers=1)
    async with TestClient(TestServer(create_app(config, clock=clock))) as client:
        yield Harness(client, feed, load_pepper(pki.license_pepper), pki.root_ca_cert,
                      tmp_path_factory.mktemp("ocsp-expiry"))


@pytest.fixture(scope="module")
async def ca(harness):
    return await harness.register_issuer(Issuer.new("Expiry Test CA"))


async def enrol(harness: Harness, ca: Issuer, not_after: datetime):
    cui = new_cui()
    username = f"{cui}_CAS-B"
    provider = harness.provider(ca, cui, not_after=not_after)
    await harness.publish_certificate(ca, provider, username)
    await registered(harness.app, ca, provider.serial)
    return username, provider, await harness.issue_key(username)


async def test_the_warning_appears_exactly_30_days_before_expiry(harness, ca, clock):
    not_after = (utc_now() + 60 * DAY).replace(microsecond=0)
    username, provider, serial = await enrol(harness, ca, not_after)

    clock.now = not_after - 30 * DAY - timedelta(minutes=1)  # 30 days and a minute: not yet
    status, body = await harness.connect(provider, username, serial)
    assert status == 200, body
    assert datetime.fromisoformat(body["certificate_expires_at"]) == not_after
    assert body["certificate_days_left"] == 31 and "warning" not in body

    clock.now = not_after - 30 * DAY
    status, body = await harness.connect(provider, username, serial)
    assert status == 200 and body["warning"] == WARNING_RO and body["warning_code"] == "certificate_expiring"
    assert body["certificate_days_left"] == 30
    status, beat = await harness.online("/v1/online/heartbeat", provider, token=body["session_token"])
    assert status == 200 and beat["warning"] == WARNING_RO
    assert beat["certificate_expires_at"] == body["certificate_expires_at"]

    clock.now = not_after - 7 * DAY + timedelta(hours=1)
    status, body = await harness.connect(provider, username, serial, language="en")
    assert status == 200 and body["warning"] == (
        "The certificate expires in 7 days: renew it and connect with the new certificate.")

    clock.now = not_after  # the day it ends: refused, and the refusal says so
    status, body = await harness.connect(provider, username, serial)
    assert (status, body["reason"]) == (401, "certificate_expired")


def desktop(home: Path, harness: Harness, provider, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "NO_COLOR")}
    env.update({"PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "clients.desktop", "connect", "--home", str(home), "--once", "--lang", "ro",
         "--cert", str(provider.cert_path), "--key", str(provider.key_path), "--server", harness.online_url,
         "--ca", str(harness.root_ca), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


async def test_the_desktop_shows_the_warning_then_when_its_key_was_replaced(harness, ca, clock, tmp_path):
    not_after = (utc_now() + 45 * DAY).replace(microsecond=0)
    username, provider, serial = await enrol(harness, ca, not_after)
    ActivationStore(tmp_path).save(Activation(username, "B", username.partition("_")[0], "SC EXPIRY SRL",
                                              serial, utc_now().isoformat(timespec="seconds")))
    clock.now = not_after - 30 * DAY
    run = await asyncio.to_thread(desktop, tmp_path, harness, provider)
    assert run.returncode == 0, run.stdout + run.stderr
    line = run.stdout.strip().splitlines()[-1]
    assert "online" in line and f"\u26a0 {WARNING_RO}" in line, run.stdout

    # The house resets the key (Resetare parola) at a known moment; the old key's refusal says when.
    reset_at = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    await harness.issue_key(username, reset=True, issued_at=reset_at)
    status, body = await harness.connect(provider, username, serial)
    when = reset_at.strftime("%Y-%m-%d %H:%M UTC")
    assert (status, body["reason"]) == (401, "key_replaced")
    assert f"înlocuită la {when}" in body["message"]
    assert datetime.fromisoformat(body["replaced_at"]) == reset_at
    run = await asyncio.to_thread(desktop, tmp_path, harness, provider)
    assert run.returncode == 1
    assert "offline" in run.stdout and f"înlocuită la {when}" in run.stdout, run.stdout


async def test_a_heartbeat_on_a_replaced_key_says_when(harness, ca, clock):
    clock.now = utc_now()
    username, provider, serial = await enrol(harness, ca, (utc_now() + 200 * DAY).replace(microsecond=0))
    status, body = await harness.connect(provider, username, serial)
    assert status == 200 and "warning" not in body and body["certificate_days_left"] == 200
    reset_at = utc_now().replace(microsecond=0) + timedelta(seconds=1)
    await harness.issue_key(username, reset=True, issued_at=reset_at)

    status, beat = await harness.online("/v1/online/heartbeat", provider, token=body["session_token"], language="en")
    assert (status, beat["reason"]) == (401, "key_replaced")
    assert f"replaced on {reset_at.strftime('%Y-%m-%d %H:%M UTC')}" in beat["message"]

    async def documented():
        response = await harness.client.get("/openapi.json")
        return (await response.json())["paths"]["/v1/online/connect"]

    connect = await eventually(documented, what="the OpenAPI document")
    online = connect["post"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert {"certificate_expires_at", "warning", "certificate_days_left"} <= set(online)


async def test_the_window_status_bar_shows_the_warning(harness, ca, clock, tmp_path):
    """The Tk window (clients.desktop.gui) on a real X display (Xvfb): its status bar's
    warning line, drawn from a real connect answered 30 days before expiry."""
    from clients.desktop.connection import open_channel
    from clients.desktop.tls import load_pem

    not_after = (utc_now() + 50 * DAY).replace(microsecond=0)
    username, provider, serial = await enrol(harness, ca, not_after)
    store = ActivationStore(tmp_path)
    store.save(Activation(username, "B", username.partition("_")[0], "SC FEREASTRA SRL", serial,
                          utc_now().isoformat(timespec="seconds")))
    clock.now = not_after - 30 * DAY
    channel = open_channel(store, load_pem(provider.cert_path, provider.key_path, lambda *_: ""),
                           server=harness.online_url, ca=harness.root_ca, language="ro")
    # The desktop's call blocks: in a thread, so that this loop keeps serving it. Tk stays
    # on this (the main) thread: Tcl aborts the process if its interpreter is freed in
    # another thread than the one that made it.
    status = await asyncio.to_thread(channel.connect)
    assert status.online and status.certificate_expires_at == not_after
    shown = _draw_window(store, status, harness)
    assert shown["warning"] == f"\u26a0 {WARNING_RO}" and shown["mapped"] and "online" in shown["title"]


def _draw_window(store: ActivationStore, status, harness: Harness) -> dict:
    import tkinter as tk

    from clients.desktop.gui.app import App
    from clients.desktop.messages import Messages
    from tests.support.stack import ARTIFACTS
    from tests.support.xdisplay import Display

    with Display(900, 500) as display:
        root = tk.Tk(screenName=display.name)
        try:
            app = App(root, Messages("ro"), store, keygen_server="http://127.0.0.1:9",
                      online_server=harness.online_url, ca=harness.root_ca, interval=30, retry_max=5)
            app.show_status(status)
            root.update()
            (ARTIFACTS / "desktop-window").mkdir(parents=True, exist_ok=True)
            display.screenshot(ARTIFACTS / "desktop-window" / "avertisment-expirare.png")
            return {"warning": app.statusbar.warning.cget("text"),
                    "mapped": bool(app.statusbar.warning.winfo_ismapped()), "title": root.title()}
        finally:
            root.destroy()
