"""The status bar: the semaphore, the message the provider reads, and how it is drawn
on a terminal and in a log."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone

from clients.desktop.messages import Messages
from clients.desktop.online import Status
from clients.desktop.statusbar import CLEAR_LINE, GREEN, RED, StatusBar, render

AT = datetime(2026, 3, 1, 10, 0, 5, tzinfo=timezone.utc)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ONLINE = Status("online", username="12433636_CAS-B", cas="B", at=AT,
                message="Conectat online la SIUI ca 12433636_CAS-B.")
SUSPENDED = Status("offline", reason="certificate_suspended", username="12433636_CAS-B", cas="B", at=AT)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_online_shows_the_green_semaphore_the_user_the_house_and_the_servers_message():
    line = render(ONLINE, Messages("ro"), color=True)
    assert line.startswith(f"{GREEN}\u25cf online")
    plain = ANSI.sub("", line)
    assert "12433636_CAS-B @ CAS-B" in plain
    assert "Conectat online la SIUI ca 12433636_CAS-B." in plain
    assert "verificat la" in plain


def test_offline_is_red_with_the_reason_in_the_chosen_language():
    ro = render(SUSPENDED, Messages("ro"), color=True)
    assert ro.startswith(f"{RED}\u25cf offline")
    assert "suspendat de casa de asigurări (CAS-B)" in ro
    en = render(SUSPENDED, Messages("en"))
    assert "suspended by the insurance house (CAS-B)" in en and "checked at" in en


def test_the_servers_own_message_is_shown_when_it_gives_one():
    status = Status("offline", reason="certificate_expired", message="Certificatul a expirat la 2026-01-01.",
                    username="u", cas="B", at=AT)
    assert "Certificatul a expirat la 2026-01-01." in render(status, Messages("ro"))


def test_without_colour_there_are_no_escape_codes():
    assert not ANSI.search(render(SUSPENDED, Messages("ro"), color=False))


def test_a_narrow_terminal_gets_a_truncated_line_that_never_wraps():
    line = render(SUSPENDED, Messages("ro"), width=60)
    assert len(line) <= 60 and line.endswith("\u2026")


def test_the_house_being_unreachable_names_the_server():
    status = Status("offline", reason="unreachable", username="u", cas="B", at=AT)
    assert "https://siui.example:8443" in render(status, Messages("en"), server="https://siui.example:8443")


def test_in_a_log_only_changes_are_written_one_line_each():
    out = io.StringIO()
    bar = StatusBar(out, Messages("en"), tty=False, color=False)
    for status in (ONLINE, ONLINE, SUSPENDED, SUSPENDED, ONLINE):
        bar.show(status)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines[:3]] == ["\u25cf online", "\u25cf offline", "\u25cf online"]
    assert lines[3] == "Disconnected." and len(lines) == 4


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_changes_stay_above_it():
    out = _Tty()
    bar = StatusBar(out, Messages("ro"), color=False)
    bar.show(ONLINE)
    bar.show(ONLINE)
    bar.show(SUSPENDED)
    text = out.getvalue()
    redraws = text.split(CLEAR_LINE)[1:]
    assert len(redraws) == 3
    assert redraws[0].count("\n") == 1  # a change: the history line, then the bar
    assert "\n" not in redraws[1]  # the same state: the bar alone, redrawn
    assert redraws[2].startswith("\u25cf offline") and redraws[2].count("\n") == 1
