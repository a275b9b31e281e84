"""One JSON request over HTTP or HTTPS, with the ways it can fail sorted into what the
provider needs to know: the house is unreachable, the server refused our certificate,
or we do not trust the server.

``http.client`` rather than an async library: the client does one request at a time and
waits between them, and a blocking call lets Ctrl-C interrupt it at any point. A new
connection per request: heartbeats are seconds apart, and a connection the server has
dropped in between would only turn into a spurious failure. With ``sessions`` (a
:class:`TlsSessions`), each new connection resumes the TLS session of the last one
(a TLS 1.3 ticket): no certificate exchange, a handshake several times cheaper for the
server, which is what lets :8443 absorb every desktop of the country reconnecting at once.
"""
from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 10.0
MAX_BODY = 1 << 20  # answers are small JSON documents; a larger one is not ours
MAX_RETRY_AFTER = 3600  # a longer wait asked for is a server's mistake, not a plan


class TransportError(Exception):
    """No HTTP answer. ``reason`` is a messages key; ``detail`` what the library said."""

    reason = "unreachable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unreachable(TransportError):
    """Nothing answered: refused, timed out, name unknown, connection dropped."""

    reason = "unreachable"


class ServerUntrusted(TransportError):
    """The server's certificate did not verify against our trust anchors."""

    reason = "server_untrusted"


class TlsRejected(TransportError):
    """The TLS handshake failed on the server's side: typically our certificate."""

    reason = "tls_rejected"


class CertificateUntrusted(TlsRejected):
    """The server said (TLS alert unknown_ca) that our certificate's issuer is not one it
    trusts: not an issuing authority registered in SIUI."""

    reason = "certificate_untrusted"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers (lower-case names) and the JSON body, if any."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict = field(default_factory=dict)

    def retry_after(self, default: int, now: datetime | None = None) -> int:
        """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), at least 1 and
        at most :data:`MAX_RETRY_AFTER`; ``default`` when absent or unreadable."""
        value = self.headers.get("retry-after", "").strip()[:64]
        if value.isdigit():
            return min(max(1, int(value)), MAX_RETRY_AFTER)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
        return min(max(1, math.ceil(seconds)), MAX_RETRY_AFTER)


class TlsSessions:
    """The last TLS session of each server, to resume on the next connection. A session
    is only offered with the very context (certificate) it was made with: after the
    provider chooses another certificate, the next connection is a full handshake."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], tuple[ssl.SSLContext, ssl.SSLSession]] = {}
        self.resumed = 0  # connections that resumed a session (what a test or a bench counts)

    def get(self, context: ssl.SSLContext, host: str, port: int) -> ssl.SSLSession | None:
        held = self._held.get((host, port))
        return held[1] if held is not None and held[0] is context else None

    def keep(self, context: ssl.SSLContext, host: str, port: int, session: ssl.SSLSession | None,
             *, reused: bool = False) -> None:
        self.resumed += reused
        if session is not None:
            self._held[(host, port)] = (context, session)

    def forget(self, host: str, port: int) -> None:
        self._held.pop((host, port), None)


class _ResumingConnection(http.client.HTTPSConnection):
    """``HTTPSConnection`` that offers the last session it was given (``offer``)."""

    offer: ssl.SSLSession | None = None
    session: ssl.SSLSession | None = None  # this connection's, with the server's latest ticket
    reused = False

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # the TCP connection, then TLS with the session
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host, session=self.offer)

    def getresponse(self):
        tls = self.sock
        response = super().getresponse()
        # The answer's head has been read, so the ticket sent before it has too; read the
        # session now, while the TLS object lives (http.client may close it with the body).
        if isinstance(tls, ssl.SSLSocket):
            self.session, self.reused = tls.session, bool(tls.session_reused)
        return response


def post_json(url: str, payload: dict | None = None, *, headers: dict[str, str] | None = None,
              context: ssl.SSLContext | None = None, timeout: float = DEFAULT_TIMEOUT,
              sessions: TlsSessions | None = None) -> Reply:
    """POST ``payload`` as JSON to ``url``; any status is a :class:`Reply`, no answer at
    all a :class:`TransportError`. With ``sessions``, the TLS session is resumed and kept."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(payload if payload is not None else {}).encode()
    sent = {"Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "siui-desktop", **(headers or {})}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        context = context or ssl.create_default_context()
        conn = _ResumingConnection(parts.hostname, port, timeout=timeout, context=context)
        conn.offer = sessions.get(context, parts.hostname, port) if sessions is not None else None
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read(MAX_BODY)
        if sessions is not None and isinstance(conn, _ResumingConnection):
            sessions.keep(context, parts.hostname, port, conn.session, reused=conn.reused)
        received = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, received, _json(raw))
    except ssl.SSLCertVerificationError as exc:
        if sessions is not None:
            sessions.forget(parts.hostname, port)
        raise ServerUntrusted(exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:
        if sessions is not None:  # a session the server no longer takes is not offered again
            sessions.forget(parts.hostname, port)
        if (exc.reason or "").upper().endswith("ALERT_UNKNOWN_CA"):
            raise CertificateUntrusted(exc.reason) from None
        raise TlsRejected(exc.reason or str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:
        # A bare reset counts as unreachable: a server refusing our certificate sends
        # a TLS alert (an SSLError above), one going down just drops the connection.
        raise Unreachable(_describe(exc)) from None
    finally:
        conn.close()


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return exc.__class__.__name__ if not str(exc) else str(exc)
