"""Debian's Chromium driven headless by Playwright for the console's browser tests: where
it is and how it is launched (the ``chromium`` fixture of tests/e2e/conftest.py), a visit
of one person at one browser, screenshots kept under test-artifacts/screenshots/, and a
synchronous poll (Playwright's sync API runs its own event loop in the test's thread)."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests.support.netlog import outbound_hosts
from tests.support.stack import ARTIFACTS, Stack

CHROMIUM = "/usr/bin/chromium"
# A request that stands for "anything beyond this machine": its name must show in the net
# log before the log is believed (the name resolves to a closed port on loopback).
CANARY = "siui-outbound-canary.invalid"
# Nothing leaves this machine. Chromium, headless or not, calls Google's services at
# start and while it runs (updates, sign-in, ...): on a machine without that network
# each is a failed connection, on one with it a test calling home. These switches stop
# every such call; the browser's own net log shows it (assert_stayed_on_this_machine,
# and tests/e2e/test_browser_offline.py, which also shows the calls without them).
QUIET_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--no-pings", "--metrics-recording-only", "--disable-breakpad", "--no-default-browser-check",
    # Two callers that the switches above leave on (measured, Chromium 156): the
    # component updater's on-demand check for the on-device model manifest, and
    # sign-in's ListAccounts. Their servers are pointed at a closed loopback port.
    "--component-updater=url-source=http://127.0.0.1:1/", "--gaia-url=http://127.0.0.1:1/",
    # And a name nobody foresaw resolves nowhere, without asking any DNS server.
    f"--host-resolver-rules=MAP {CANARY} 127.0.0.1:1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
# Chromium keeps only the last --disable-features it is given, and Playwright gives its
# own first (network time queries, optimization hints, search preconnect, ...): so ours
# is Playwright's (1.65) plus AutofillServerCommunication, which a page with a form
# otherwise sends to Google. test_browser_offline checks that ours still holds all of
# Playwright's.
PLAYWRIGHT_DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding", "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect", "TcpPortRandomizationWin", "OptimizationHints", "NetworkTimeServiceQuerying",
    "AimEnabled", "PreconnectToSearch", "msForceBrowserSignIn", "msEdgeUpdateLaunchServicesPreferredVersion",
]
DISABLED_FEATURES = [*PLAYWRIGHT_DISABLED_FEATURES, "AutofillServerCommunication"]
QUIET_ARGS.append("--disable-features=" + ",".join(DISABLED_FEATURES))
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
CHROMIUM_ARGS = [*BASE_ARGS, *QUIET_ARGS]
NETLOGS = ARTIFACTS / "netlog"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SHOTS = ARTIFACTS / "screenshots"


class Visit:
    """One person at one browser: a context of its own (cookies), its pages, and every
    console message the pages logged (a CSP violation shows up there)."""

    def __init__(self, browser: Browser, stack: Stack, *, phone: bool = False):
        self.stack = stack
        self.context: BrowserContext = browser.new_context(
            viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone, accept_downloads=True,
            locale="ro-RO", timezone_id="Europe/Bucharest", base_url=stack.url("console"))
        self.context.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        return page

    def login(self, username: str, password: str) -> Page:
        page = self.page
        page.goto("/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Intra')")
        page.wait_for_url(re.compile(r".*/furnizori$"))
        return page

    def csp_violations(self) -> list[str]:
        return [p for p in self.problems if "Content Security Policy" in p]

    def close(self) -> None:
        self.context.close()


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Keep a screenshot of this screen as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def until(probe: Callable[[], object], *, timeout: float = 15.0, interval: float = 0.25, what: str = "condition"):
    """Poll a synchronous probe with a deadline (the browser tests are synchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def launch_chromium(playwright: Playwright, name: str, args: list[str] = CHROMIUM_ARGS) -> tuple[Browser, Path]:
    """Debian's Chromium, headless (Playwright's own browser download is not used),
    writing its net log to test-artifacts/netlog/<name>.json."""
    NETLOGS.mkdir(parents=True, exist_ok=True)
    netlog = NETLOGS / f"{name}.json"
    netlog.unlink(missing_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*args, f"--log-net-log={netlog}"],
                                         headless=True)
    return browser, netlog


def ask_canary(browser: Browser) -> None:
    page = browser.new_page()
    try:  # fails (nothing listens there); what counts is that it was asked
        page.evaluate("url => fetch(url).then(() => 'answered', error => String(error))", f"http://{CANARY}/")
    finally:
        page.close()


def assert_stayed_on_this_machine(browser: Browser, netlog: Path) -> None:
    """Close ``browser`` and assert its net log names no host beyond loopback. The
    canary is asked first and must be in the log: a log that is not read, or a reader
    that sees nothing, cannot pass."""
    ask_canary(browser)
    until(lambda: CANARY in outbound_hosts(netlog), timeout=15, what=f"the canary request in {netlog}")
    browser.close()
    reached = outbound_hosts(netlog)
    reached.pop(CANARY)
    assert not reached, f"Chromium tried to reach beyond this machine (see {netlog}): " + ", ".join(
        f"{host} ({', '.join(sorted(kinds))})" for host, kinds in sorted(reached.items()))
