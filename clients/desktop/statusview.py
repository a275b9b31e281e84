"""What the status bar says about a :class:`~clients.desktop.online.Status`, decided once
for both faces of the client: the terminal's one-line bar (:mod:`.statusbar`) and the
window's bar (:mod:`.gui.statusbar`) draw the same :class:`StatusView`.

The words are the server's when it sent any (its ``message``, and its ``warning`` while
online, e.g. a certificate about to expire); otherwise the client's own for the reason;
a reason the client does not know is named, never hidden. So a reason or a warning the
server adds later appears on every desktop without a new release.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from clients.desktop.messages import Messages
from clients.desktop.online import Status

GREEN, RED, GREY = "green", "red", "grey"


@dataclass(frozen=True)
class StatusView:
    """The status bar's parts, as text; ``color`` is the semaphore's lamp."""

    color: str
    semaphore: str  # "online" / "offline", the seed's words, in both languages
    who: str  # "12433636_CAS-B @ CAS-B", or "" before any activation
    text: str  # the message: why offline, or the greeting online
    warning: str  # the server's warning, "" when none
    checked: str  # "verificat la 10:00:05", the last connect or heartbeat
    next_attempt: str  # "reîncercare la 10:00:12" while offline, else ""

    @property
    def online(self) -> bool:
        return self.color == GREEN


def explain(status: Status, messages: Messages, server: str = "") -> str:
    """The server's own message when it gave one (worded in our language, and maybe
    more precise, e.g. an expiry date); else ours for the reason."""
    if status.message.strip():
        return status.message.strip()
    house = house_label(status.cas)
    if status.online:
        return messages("online", user=status.username, house=house)
    return messages.reason(status.reason, user=status.username or "?", house=house,
                           server=server, detail=status.detail, status=status.detail,
                           seconds=status.retry_after)


def view(status: Status, messages: Messages, *, server: str = "",
         zone: tzinfo | None = None) -> StatusView:
    """The status bar for ``status``; times in ``zone`` (default: the machine's)."""
    idle = status.reason == "not_connected"
    return StatusView(
        color=GREEN if status.online else GREY if idle else RED,
        semaphore=status.semaphore,
        who=f"{status.username} @ {house_label(status.cas)}" if status.username else "",
        text=explain(status, messages, server),
        warning=status.warning.strip() if status.online else "",
        checked=_at(messages, "last_check", status.at, zone) if not idle else "",
        next_attempt=("" if status.online or idle
                      else _at(messages, "next_attempt", status.next_attempt_at, zone)))


def house_label(cas: str) -> str:
    """``CAS-B`` for ``B``; a label that already names the house is kept."""
    return f"CAS-{cas}" if cas and not cas.startswith("CAS") else cas


def _at(messages: Messages, key: str, when: datetime | None, zone: tzinfo | None) -> str:
    if when is None:
        return ""
    return messages(key, time=when.astimezone(zone).strftime("%H:%M:%S"))
