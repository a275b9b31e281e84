"""*Conectare online*: the connection to the house's online channel and the heartbeat
that keeps the status bar's semaphore true. The terminal and the window both run
:func:`keep_online`; they differ only in how they show a status and how they wait.

``POST /v1/online/connect`` (HTTP Basic ``<external user>:<licence serial>``, over mutual
TLS) opens a session; ``POST /v1/online/heartbeat`` (``Bearer <session_token>``, same
certificate) confirms it every interval. Both answer 200 ``{"semaphore":"online",...}``
or 401 ``{"semaphore":"offline","reason","message"}``. A heartbeat refused for a reason
about the certificate or the key (a suspension, a key reset) is shown as it is; one
refused for the session itself (expired, invalid) is followed at once by a new connect.
While offline the client connects again on the schedule of :mod:`.backoff` (full-jitter
backoff, the server's ``Retry-After`` as a floor), so the semaphore turns green again
when the house reinstates the certificate or comes back up; it reads the activation
file before each connect, so activating again in another window is enough after a key
reset. Messages come in the client's language (``Accept-Language``).
"""
from __future__ import annotations

import base64
import functools
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from clients.desktop.activation import Activation
from clients.desktop.backoff import Schedule
from clients.desktop.messages import SESSION_REASONS
from clients.desktop.transport import Reply, TlsSessions, TransportError, post_json

CONNECT_PATH = "/v1/online/connect"
HEARTBEAT_PATH = "/v1/online/heartbeat"
DEFAULT_INTERVAL = 30.0
THROTTLED_DEFAULT_SECONDS = 30
MAX_SERVER_TEXT = 500  # characters of a server message or warning shown; the bar is one line

ONLINE, OFFLINE = "online", "offline"
CONNECT, HEARTBEAT = "connect", "heartbeat"

# Never more than one attempt in flight from this desktop, whatever calls: the loop is
# sequential, and a second loop (the window reconnecting with another certificate while
# the old request still runs) waits here instead of adding to a storm.
_IN_FLIGHT = threading.Lock()


@dataclass(frozen=True)
class Status:
    """What the status bar shows: the semaphore, why it is red, the server's words."""

    semaphore: str
    reason: str | None = None  # a messages key (server or local reason); None when online
    message: str = ""  # the server's own message, shown instead of ours when given
    warning: str = ""  # the server's warning while online (e.g. the certificate expires soon)
    username: str = ""
    cas: str = ""
    session_token: str = ""
    expires_at: datetime | None = None
    certificate_expires_at: datetime | None = None
    retry_after: int = 0  # seconds the server asked us to wait (Retry-After)
    detail: str = ""  # the client's own detail (TLS library text, HTTP status)
    at: datetime | None = None  # when this was learnt (the last connect or heartbeat)
    via: str = CONNECT  # which call gave it: a heartbeat confirms the session
    next_attempt_at: datetime | None = None  # when the loop asks again

    @property
    def online(self) -> bool:
        return self.semaphore == ONLINE

    def same_state(self, other: "Status | None") -> bool:
        """Whether the bar says the same thing (ignoring time and session)."""
        return other is not None and (self.semaphore, self.reason, self.warning) == (
            other.semaphore, other.reason, other.warning)


def status_from_reply(reply: Reply, activation: Activation, now: datetime,
                      previous: Status | None = None) -> Status:
    """The status an online-channel answer means."""
    body = reply.body
    base = Status(OFFLINE, username=activation.external_user, cas=activation.cas, at=now,
                  message=_text(body.get("message")),  # the channel's own words only
                  retry_after=reply.retry_after(0, now) if "retry-after" in reply.headers else 0)
    if reply.status == 200 and body.get("semaphore") == ONLINE:
        token = str(body.get("session_token") or (previous.session_token if previous else ""))
        return replace(base, semaphore=ONLINE, session_token=token,
                       username=_text(body.get("username")) or activation.external_user,
                       cas=_text(body.get("cas")) or activation.cas,
                       expires_at=_parse_time(body.get("expires_at")),
                       certificate_expires_at=_parse_time(body.get("certificate_expires_at")),
                       warning=_warning(body.get("warning")))
    if reply.status == 401 and body.get("reason"):
        return replace(base, reason=_text(body["reason"], 64))
    if reply.status == 429:
        seconds = base.retry_after or THROTTLED_DEFAULT_SECONDS
        return replace(base, reason="throttled", retry_after=seconds, detail=str(seconds))
    if reply.status >= 500:
        return replace(base, reason="server_error", detail=str(reply.status))
    return replace(base, reason="protocol", detail=str(reply.status))


class OnlineChannel:
    """The online channel of one house for this machine's certificate."""

    def __init__(self, server: str, context: ssl.SSLContext, *,
                 activation: Callable[[], Activation | None],
                 post: Callable[..., Reply] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 language: str = "ro", timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self._context = context
        self._activation = activation
        # By default each request resumes the last TLS session (transport.TlsSessions): a
        # reconnect costs the house's server a fraction of a full handshake.
        self._post = post or functools.partial(post_json, sessions=TlsSessions())
        self._clock = clock
        self._timeout = timeout
        self._language = language  # the server words its messages in it

    def connect(self, previous: Status | None = None) -> Status:
        """Open a session with the stored activation (read afresh each time)."""
        activation = self._activation()
        if activation is None:
            return Status(OFFLINE, reason="not_activated", at=self._clock())
        basic = base64.b64encode(
            f"{activation.external_user}:{activation.license_serial}".encode()).decode()
        return self._ask(CONNECT_PATH, f"Basic {basic}", activation, previous)

    def heartbeat(self, current: Status) -> Status:
        """Confirm the session; a refusal about the session itself reconnects at once."""
        activation = self._activation()
        if activation is None:
            return Status(OFFLINE, reason="not_activated", at=self._clock())
        if current.expires_at is not None and self._clock() >= current.expires_at:
            return self.connect(current)
        status = self._ask(HEARTBEAT_PATH, f"Bearer {current.session_token}", activation,
                           current)
        if status.reason in SESSION_REASONS:
            return self.connect(current)
        return replace(status, via=HEARTBEAT)

    def _ask(self, path: str, authorization: str, activation: Activation,
             previous: Status | None) -> Status:
        with _IN_FLIGHT:
            try:
                reply = self._post(self.server + path, {},
                                   headers={"Authorization": authorization,
                                            "Accept-Language": self._language},
                                   context=self._context, timeout=self._timeout)
            except TransportError as exc:
                return Status(OFFLINE, reason=exc.reason, detail=exc.detail,
                              username=activation.external_user, cas=activation.cas,
                              at=self._clock())
        return status_from_reply(reply, activation, self._clock(), previous)


def keep_online(channel: OnlineChannel, show: Callable[[Status], None], *, schedule: Schedule,
                wait: Callable[[float], bool], once: bool = False) -> Status:
    """Connect, show the status, then heartbeat (or reconnect while offline) on
    ``schedule`` until ``wait(seconds)`` returns True (asked to stop). Returns the last
    status. ``wait`` is injected: the terminal sleeps (Ctrl-C interrupts), the window
    waits on an event its Deconectare sets, and tests drive the loop without a clock.
    """
    status = channel.connect()
    while True:
        if once:
            show(status)
            return status
        delay = schedule.next_delay(online=status.online, confirmed=status.via == HEARTBEAT,
                                    retry_after=status.retry_after)
        if status.at is not None:
            status = replace(status, next_attempt_at=status.at + timedelta(seconds=delay))
        show(status)
        if wait(delay):
            return status
        status = channel.heartbeat(status) if status.online else channel.connect(status)


def _text(value: object, limit: int = MAX_SERVER_TEXT) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _warning(value: object) -> str:
    """The server's warning: a sentence, or an object carrying one (``message``) or at
    least a code, which is shown rather than dropped."""
    if isinstance(value, dict):
        return _text(value.get("message")) or _text(value.get("code") or value.get("reason"), 64)
    return _text(value)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
