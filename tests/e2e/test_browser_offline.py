"""The tests' browser stays on this machine, and the check for it can tell.

Chromium's own net log records everything its network service attempts (URLs, host
resolutions, DNS queries, sockets), whoever asks. Without the quiet switches the log
shows the browser calling Google's services on its own; with them, a console page
loaded and a canary asked, nothing but loopback and the canary. The console's browser
tests make the same check over their whole module (the chromium fixture of tests/e2e/conftest.py).
"""
from __future__ import annotations

import subprocess

import pytest
from playwright._impl._driver import compute_driver_executable
from playwright.sync_api import sync_playwright

from tests.support.browser import (BASE_ARGS, CANARY, CHROMIUM_ARGS, DISABLED_FEATURES, QUIET_ARGS,
                                       assert_stayed_on_this_machine, launch_chromium, until)
from tests.support.netlog import command_line_of, outbound_hosts

pytestmark = pytest.mark.e2e


def test_playwrights_driver_finds_every_library_it_links():
    """The driver is a node binary linking libatomic.so.1, which a minimal Debian lacks
    (the set-up installs libatomic1): a missing library would fail every browser test."""
    node, _ = compute_driver_executable()
    linked = subprocess.run(["ldd", node], capture_output=True, text=True, check=True).stdout
    assert "libatomic.so.1" in linked
    assert "not found" not in linked, linked


def test_without_the_quiet_switches_the_net_log_shows_chromium_calling_out():
    """The control: the same browser and the same reading of its log, without the
    switches, finds the calls they exist to stop (names resolve nowhere even so)."""
    resolver_rules = [arg for arg in QUIET_ARGS if arg.startswith("--host-resolver-rules=")]
    with sync_playwright() as playwright:
        browser, netlog = launch_chromium(playwright, "without-quiet-switches", [*BASE_ARGS, *resolver_rules])
        try:
            browser.new_page().goto("about:blank")
            called = until(lambda: set(outbound_hosts(netlog)) - {CANARY}, timeout=30,
                           what=f"Chromium's own calls beyond this machine in {netlog}")
        finally:
            browser.close()
    assert called


def test_with_them_a_console_page_reaches_nothing_beyond_this_machine(stack):
    with sync_playwright() as playwright:
        browser, netlog = launch_chromium(playwright, "console-login-page", CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(stack.url("console", "/"))
        page.wait_for_selector("input[name=username]")
        assert_stayed_on_this_machine(browser, netlog)


def test_our_disabled_features_keep_every_one_playwright_disables():
    """Chromium keeps the last --disable-features only; ours comes last, so it must hold
    Playwright's own (read off the browser's real command line in its net log)."""
    with sync_playwright() as playwright:
        browser, netlog = launch_chromium(playwright, "command-line", CHROMIUM_ARGS)
        try:
            browser.new_page().goto("about:blank")
            command_line = until(lambda: netlog.stat().st_size and command_line_of(netlog), timeout=15,
                                 what=f"the command line in {netlog}")
        finally:
            browser.close()
    given = [arg.split("=", 1)[1].split(",") for arg in command_line if arg.startswith("--disable-features=")]
    assert len(given) >= 2, command_line  # Playwright's, then ours
    assert given[-1] == DISABLED_FEATURES
    assert set(given[0]) <= set(DISABLED_FEATURES), f"Playwright now also disables {set(given[0]) - set(DISABLED_FEATURES)}"
