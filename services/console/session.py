"""The console's session: what the browser keeps, sealed so that it can neither read nor
change it, and the CSRF token every form carries.

The session lives entirely in one cookie (the console has no database): the operator's
token from the users service, a random session id and the house a CNAS user is looking
at. It is sealed with AES-256-GCM under a key derived from the deployment's data key, so
a stolen cookie file shows nothing and an edited one is refused. The CSRF token is an
HMAC of the session id under a second derived key: a page of another site can neither
read it nor compute it, so a forged POST is refused.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_INFO = b"console-cookie"
NONCE_BYTES = 12
# Bound to the purpose: a value sealed for something else never opens as a session.
AAD = b"siui-console-session-v1"
MAX_COOKIE_CHARS = 3800  # browsers keep 4096 bytes per cookie, name and attributes included


@dataclass(frozen=True)
class CookieKeys:
    """The two keys derived from the data key: one seals the cookie, one makes CSRF tokens."""

    seal: bytes
    csrf: bytes

    @classmethod
    def derive(cls, data_key: bytes) -> "CookieKeys":
        """HKDF-SHA256 (info "console-cookie") of the deployment's data key: 64 bytes,
        split in two, so that neither key can be learnt from the other's use."""
        material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=HKDF_INFO).derive(data_key)
        return cls(seal=material[:32], csrf=material[32:])

    @classmethod
    def from_file(cls, path: Path) -> "CookieKeys":
        """Keys from the data-key file (hex, as deploy/devpki writes it)."""
        text = path.read_text().strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = text.encode()
        if len(raw) < 16:
            raise ValueError(f"{path}: the data key is too short to derive cookie keys from")
        return cls.derive(raw)


@dataclass(frozen=True)
class Session:
    """One browser's session. ``token`` is empty before logging in; ``house`` is the
    house a CNAS user chose to look at ("" for every house)."""

    sid: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    token: str = ""
    house: str = ""
    name: str = ""  # the operator's name, shown in the header

    @property
    def logged_in(self) -> bool:
        return bool(self.token)

    def with_house(self, house: str) -> "Session":
        return replace(self, house=house)

    def to_json(self) -> dict:
        return {"s": self.sid, "t": self.token, "h": self.house, "n": self.name}

    @classmethod
    def from_json(cls, data: dict) -> "Session":
        return cls(sid=str(data["s"]), token=str(data.get("t", "")), house=str(data.get("h", "")),
                   name=str(data.get("n", "")))


def new_login(token: str, name: str, house: str = "") -> Session:
    """The session after a successful login: a new id, so a session id planted before
    the login (session fixation) is worth nothing after it."""
    return Session(token=token, name=name, house=house)


def seal(keys: CookieKeys, session: Session) -> str:
    """The cookie value: base64url(nonce || AES-GCM(JSON of the session))."""
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(session.to_json(), separators=(",", ":")).encode()
    sealed = base64.urlsafe_b64encode(nonce + AESGCM(keys.seal).encrypt(nonce, plain, AAD)).decode()
    if len(sealed) > MAX_COOKIE_CHARS:
        raise ValueError("the session no longer fits in a cookie")
    return sealed.rstrip("=")


def unseal(keys: CookieKeys, value: str | None) -> Session | None:
    """The session in a cookie value, or None when absent, edited or sealed under another key."""
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(raw) <= NONCE_BYTES:
            return None
        plain = AESGCM(keys.seal).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], AAD)
        return Session.from_json(json.loads(plain))
    except (InvalidTag, binascii.Error, ValueError, KeyError, TypeError):
        return None


def csrf_token(keys: CookieKeys, session: Session) -> str:
    """The CSRF token of this session: HMAC-SHA256 of its id."""
    digest = hmac.new(keys.csrf, session.sid.encode(), sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_ok(keys: CookieKeys, session: Session | None, sent: str | None) -> bool:
    """Whether ``sent`` is this session's CSRF token (constant-time comparison)."""
    if session is None or not sent or len(sent) > 128:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged token may have some).
    return hmac.compare_digest(csrf_token(keys, session).encode(), sent.encode("utf-8", "replace"))
