"""*Conectare online*: the connection to the house's online channel and the heartbeat
that keeps the status bar's semaphore true.

``POST /v1/online/connect`` (HTTP Basic ``<external user>:<licence serial>``, over mutual
TLS) opens a session; ``POST /v1/online/heartbeat`` (``Bearer <session_token>``, same
certificate) confirms it every interval. Both answer 200 ``{"semaphore":"online",...}``
or 401 ``{"semaphore":"offline","reason","message"}``. A heartbeat refused for a reason
about the certificate or the key (a suspension, a key reset) is shown as it is; one
refused for the session itself (expired, unknown) is followed at once by a new connect.
While offline, the client connects again every interval, so the semaphore turns green
again when the house reinstates the certificate or comes back up; it reads the
activation file before each connect, so activating again in another window is enough
after a key reset. Messages come in the client's language (``Accept-Language``).
"""
from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from clients.desktop.activation import Activation
from clients.desktop.messages import SERVER_REASONS
from clients.desktop.transport import Reply, TransportError, post_json

CONNECT_PATH = "/v1/online/connect"
HEARTBEAT_PATH = "/v1/online/heartbeat"
DEFAULT_INTERVAL = 30.0
THROTTLED_DEFAULT_SECONDS = 30

ONLINE, OFFLINE = "online", "offline"
# Offline reasons a new connect would not change now: waiting is the cure.
TRANSIENT_REASONS = ("unreachable", "tls_rejected", "server_untrusted", "server_error",
                     "throttled")


@dataclass(frozen=True)
class Status:
    """What the status bar shows: the semaphore, why it is red, the server's words."""

    semaphore: str
    reason: str | None = None  # a messages key (server or local reason); None when online
    message: str = ""  # the server's own message, shown instead of ours when given
    username: str = ""
    cas: str = ""
    session_token: str = ""
    expires_at: datetime | None = None
    retry_after: int = 0  # seconds the server asked us to wait (429)
    detail: str = ""  # the client's own detail (TLS library text, HTTP status)
    at: datetime | None = None

    @property
    def online(self) -> bool:
        return self.semaphore == ONLINE

    def same_state(self, other: "Status | None") -> bool:
        """Whether the bar says the same thing (ignoring time and session)."""
        return other is not None and (self.semaphore, self.reason) == (other.semaphore, other.reason)


def status_from_reply(reply: Reply, activation: Activation, now: datetime,
                      previous: Status | None = None) -> Status:
    """The status an online-channel answer means."""
    body = reply.body
    base = Status(OFFLINE, username=activation.external_user, cas=activation.cas, at=now,
                  message=str(body.get("message") or ""))  # the channel's own words only
    if reply.status == 200 and body.get("semaphore") == ONLINE:
        token = str(body.get("session_token") or (previous.session_token if previous else ""))
        return replace(base, semaphore=ONLINE, session_token=token,
                       username=str(body.get("username") or activation.external_user),
                       cas=str(body.get("cas") or activation.cas),
                       expires_at=_parse_time(body.get("expires_at")))
    if reply.status == 401 and body.get("reason"):
        return replace(base, reason=str(body["reason"]))
    if reply.status == 429:
        seconds = reply.retry_after(THROTTLED_DEFAULT_SECONDS)
        return replace(base, reason="throttled", retry_after=seconds, detail=str(seconds))
    if reply.status >= 500:
        return replace(base, reason="server_error", detail=str(reply.status))
    return replace(base, reason="protocol", detail=str(reply.status))


class OnlineChannel:
    """The online channel of one house for this machine's certificate."""

    def __init__(self, server: str, context: ssl.SSLContext, *,
                 activation: Callable[[], Activation | None],
                 post: Callable[..., Reply] = post_json,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 language: str = "ro", timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self._context = context
        self._activation = activation
        self._post = post
        self._clock = clock
        self._timeout = timeout
        self._language = language  # the server words its messages in it

    def connect(self, previous: Status | None = None) -> Status:
        """Open a session with the stored activation (read afresh each time)."""
        activation = self._activation()
        now = self._clock()
        if activation is None:
            return Status(OFFLINE, reason="not_activated", at=now)
        basic = base64.b64encode(
            f"{activation.external_user}:{activation.license_serial}".encode()).decode()
        return self._ask(CONNECT_PATH, f"Basic {basic}", activation, now, previous)

    def heartbeat(self, current: Status) -> Status:
        """Confirm the session; a refusal about the session itself reconnects at once."""
        activation = self._activation()
        now = self._clock()
        if activation is None:
            return Status(OFFLINE, reason="not_activated", at=now)
        if current.expires_at is not None and now >= current.expires_at:
            return self.connect(current)
        status = self._ask(HEARTBEAT_PATH, f"Bearer {current.session_token}", activation,
                           now, current)
        if not status.online and status.reason not in SERVER_REASONS + TRANSIENT_REASONS:
            return self.connect(current)
        return status

    def _ask(self, path: str, authorization: str, activation: Activation, now: datetime,
             previous: Status | None) -> Status:
        try:
            reply = self._post(self.server + path, {}, headers={"Authorization": authorization,
                                                          "Accept-Language": self._language},
                               context=self._context, timeout=self._timeout)
        except TransportError as exc:
            return Status(OFFLINE, reason=exc.reason, detail=exc.detail,
                          username=activation.external_user, cas=activation.cas, at=now)
        return status_from_reply(reply, activation, now, previous)


def next_delay(status: Status, interval: float) -> float:
    """How long to wait before the next heartbeat or connect."""
    return max(interval, float(status.retry_after))


def keep_online(channel: OnlineChannel, show: Callable[[Status], None], *, interval: float,
                wait: Callable[[float], bool], once: bool = False) -> Status:
    """Connect, show the status, then heartbeat (or reconnect while offline) every
    ``interval`` seconds until ``wait`` returns True (asked to stop). Returns the last
    status. ``wait(seconds)`` is injected: tests drive the loop without a clock.
    """
    status = channel.connect()
    show(status)
    if once:
        return status
    while not wait(next_delay(status, interval)):
        status = channel.heartbeat(status) if status.online else channel.connect(status)
        show(status)
    return status


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
