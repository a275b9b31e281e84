"""Debian's Chromium driven headless by Playwright for the console's browser tests: where
it is and how it is launched (the ``chromium`` fixture of tests/e2e/conftest.py), a visit
of one person at one browser, screenshots kept under test-artifacts/screenshots/, and a
synchronous poll (Playwright's sync API runs its own event loop in the test's thread)."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.stack import ARTIFACTS, Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
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
