"""One JSON request over HTTP or HTTPS, with the ways it can fail sorted into what the
provider needs to know: the house is unreachable, the server refused our certificate,
or we do not trust the server.

``http.client`` rather than an async library: the client does one request at a time and
waits between them, and a blocking call lets Ctrl-C interrupt it at any point. A new
connection per request: heartbeats are seconds apart, and a connection the server has
dropped in between would only turn into a spurious failure.
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


def post_json(url: str, payload: dict | None = None, *, headers: dict[str, str] | None = None,
              context: ssl.SSLContext | None = None, timeout: float = DEFAULT_TIMEOUT) -> Reply:
    """POST ``payload`` as JSON to ``url``; any status is a :class:`Reply`, no answer at
    all a :class:`TransportError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(payload if payload is not None else {}).encode()
    sent = {"Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "siui-desktop", **(headers or {})}
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                           context=context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read(MAX_BODY)
        received = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, received, _json(raw))
    except ssl.SSLCertVerificationError as exc:
        raise ServerUntrusted(exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:
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
