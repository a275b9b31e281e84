"""What the status bar shows for each state, decided once for the terminal and the
window: the lamp, the words (the server's first), the warning, the times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clients.desktop.messages import SERVER_REASONS, Messages
from clients.desktop.online import Status
from clients.desktop.statusbar import render
from clients.desktop.statusview import GREEN, GREY, RED, view

AT = datetime(2026, 3, 1, 10, 0, 5, tzinfo=timezone.utc)
RO, EN = Messages("ro"), Messages("en")


def test_online_is_green_with_who_and_when():
    shown = view(Status("online", username="12433636_CAS-B", cas="B", at=AT), RO, zone=timezone.utc)
    assert (shown.color, shown.semaphore, shown.who) == (GREEN, "online", "12433636_CAS-B @ CAS-B")
    assert shown.text == "Conectat online la CAS-B ca 12433636_CAS-B."
    assert shown.checked == "verificat la 10:00:05" and shown.next_attempt == ""


def test_offline_is_red_with_the_reason_and_the_next_attempt():
    status = Status("offline", reason="certificate_suspended", username="u", cas="B", at=AT,
                    next_attempt_at=AT + timedelta(seconds=7))
    shown = view(status, EN, zone=timezone.utc)
    assert shown.color == RED and "suspended by the insurance house (CAS-B)" in shown.text
    assert (shown.checked, shown.next_attempt) == ("checked at 10:00:05", "next attempt at 10:00:12")


def test_the_servers_message_and_warning_are_shown_as_sent():
    online = Status("online", username="u", cas="B", at=AT, message="Conectat online la SIUI ca u.",
                    warning="Certificatul digital expiră la 2026-03-20: reînnoiți-l.")
    shown = view(online, RO)
    assert shown.text == "Conectat online la SIUI ca u."
    assert shown.warning == "Certificatul digital expiră la 2026-03-20: reînnoiți-l."
    assert "\u26a0 Certificatul digital expiră" in render(online, RO)


@pytest.mark.parametrize("reason", ["renewal_pending", "revoked_by_issuer", "some_reason_of_2027"])
def test_a_reason_added_on_the_server_appears_with_its_message_without_new_code(reason):
    shown = view(Status("offline", reason=reason, message="Mesajul serverului.", at=AT), RO)
    assert (shown.color, shown.text) == (RED, "Mesajul serverului.")


def test_without_a_message_a_reason_unknown_to_the_client_is_named():
    assert "some_reason_of_2027" in view(Status("offline", reason="some_reason_of_2027"), EN).text


@pytest.mark.parametrize("reason", SERVER_REASONS)
def test_every_server_reason_has_words_of_its_own(reason):
    shown = view(Status("offline", reason=reason, username="u", cas="B"), RO)
    assert reason not in shown.text and "{" not in shown.text


def test_before_any_connection_the_lamp_is_grey_and_says_what_to_do():
    shown = view(Status("offline", reason="not_connected"), RO)
    assert (shown.color, shown.checked, shown.next_attempt) == (GREY, "", "")
    assert "Administrare / Conectare online" in shown.text


def test_a_warning_is_not_shown_once_offline():
    assert view(Status("offline", reason="unreachable", warning="expiră"), RO).warning == ""
