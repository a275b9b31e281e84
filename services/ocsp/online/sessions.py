"""The online channel's session tokens: ``<payload>.<HMAC-SHA256>``, no database."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from pathlib import Path
from typing import Literal

from services.ocsp.online.keys import KeyRecord


class SessionSigner:
    """Online-channel session tokens: ``<payload>.<HMAC-SHA256>``, base64url, no database.

    The key is derived with HKDF from the service's data key, so every process (and a
    restarted one) accepts every other's tokens; a token names the user, the client
    certificate's fingerprint and a fingerprint of the key it was opened with, so a
    heartbeat can tell that a reset replaced that key.
    """

    INFO = b"siui-ocsp online session token v1"

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._secret = secret

    @classmethod
    def from_data_key(cls, path: Path) -> "SessionSigner":
        """Derive the token key from the data key file (64 hex chars) with HKDF-SHA256."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        material = path.read_bytes().strip()
        with contextlib.suppress(ValueError):
            material = bytes.fromhex(material.decode("ascii"))
        return cls(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=cls.INFO).derive(material))

    def ticket_secret(self) -> bytes:
        """A secret of its own for the TLS ticket keys (``trust``), one-way from the token
        key: every process derives the same, and neither key tells the other."""
        return hmac.new(self._secret, b"siui-ocsp online tls tickets v1", hashlib.sha256).digest()

    def sign(self, claims: dict) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def verify(self, token: str, now: float) -> dict | Literal["session_invalid", "session_expired"]:
        """The claims of a genuine, unexpired token; else why not."""
        body, _, mac = token.strip().partition(".")
        try:
            expected = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(mac)):
                return "session_invalid"
            claims = json.loads(_unb64(body))
            expires = float(claims["exp"])
        except (ValueError, KeyError, TypeError, UnicodeError):
            return "session_invalid"
        return claims if now < expires else "session_expired"


def key_fingerprint(record: KeyRecord | None) -> str | None:
    """A short, one-way name of the user's current key digest, for session tokens."""
    if record is None or not record.key_digest:
        return None
    return digest_fingerprint(record.key_digest)


def digest_fingerprint(key_digest: str) -> str:
    """``key_fingerprint`` of one key digest (a heartbeat finds which replaced key its
    session was opened with, to say when it was replaced)."""
    return hashlib.sha256(b"siui-session-key" + key_digest.encode()).hexdigest()[:24]


def session_key_digest(record: KeyRecord | None, fingerprint: object) -> str | None:
    """The replaced key digest of ``record`` whose fingerprint a session token carries."""
    if record is None or not isinstance(fingerprint, str):
        return None
    return next((old for old in record.previous_digests
                 if hmac.compare_digest(digest_fingerprint(old), fingerprint)), None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
