"""External users' activation keys as the online channel needs them: per user, the
digest of the current key and of the keys a reset replaced.

keygen publishes ``KeyIssued`` with the key's keyed hash (never the key); the ``ocsp.keys``
consumer (key_consumers.py) keeps one row per user in ``external_user_keys``, and every
process keeps the rows in memory (``KeyStore``), refreshed by ``pg_notify('ocsp_keys',
username)`` (``KeySync``), so a connect checks the key without a database round trip
and without calling keygen. The pure rules for applying events are here too, and the
signer of the online channel's session tokens.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

import asyncpg
from aiohttp import web

from services.ocsp import online_queries as oq
from shared.license import MIN_PEPPER_BYTES, MalformedSerial, digest
from shared.logging import get_logger

log = get_logger(__name__)

PREVIOUS_KEPT = 20  # replaced keys remembered per user, enough to say "key_replaced"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One external user (``<CUI>_CAS-<cas>``) and their key digests (lower-case hex)."""

    username: str
    cas: str
    provider_cui: str | None = None
    provider_name: str | None = None
    key_digest: str | None = None
    issued_at: datetime | None = None
    previous_digests: tuple[str, ...] = ()
    deleted_at: datetime | None = None
    version: int = 0

    @classmethod
    def from_row(cls, row) -> "KeyRecord":
        return cls(row["username"], row["cas"], row["provider_cui"], row["provider_name"],
                   row["key_digest"], row["issued_at"], tuple(row["previous_digests"] or ()),
                   row["deleted_at"], row["version"])

    @property
    def active(self) -> bool:
        return self.deleted_at is None


def _remember(previous: tuple[str, ...], digest_hex: str | None) -> tuple[str, ...]:
    if not digest_hex or digest_hex in previous:
        return previous
    return (previous + (digest_hex,))[-PREVIOUS_KEPT:]


def apply_key_issued(current: KeyRecord | None, *, username: str, cas: str, provider_cui: str,
                     provider_name: str, key_digest: str, issued_at: datetime) -> KeyRecord:
    """The record after a ``KeyIssued``. The newest ``issued_at`` wins: a reset replaces
    the key at once, and a late, older event only joins the replaced keys."""
    key_digest = key_digest.lower()
    if current is None:
        return KeyRecord(username, cas, provider_cui, provider_name, key_digest, issued_at)
    if current.key_digest == key_digest:
        return current
    if current.issued_at is not None and issued_at <= current.issued_at:
        return replace(current, previous_digests=_remember(current.previous_digests, key_digest))
    revived = current.deleted_at is not None and issued_at > current.deleted_at
    return replace(current, cas=cas, provider_cui=provider_cui, provider_name=provider_name,
                   key_digest=key_digest, issued_at=issued_at,
                   previous_digests=_remember(current.previous_digests, current.key_digest),
                   deleted_at=None if revived else current.deleted_at)


def apply_user_created(current: KeyRecord | None, *, username: str, cas: str, provider_cui: str,
                       provider_name: str, at: datetime) -> KeyRecord:
    """The record after ``ExternalUserCreated`` (usually after the key is known)."""
    if current is None:
        return KeyRecord(username, cas, provider_cui, provider_name)
    revived = current.deleted_at is not None and at > current.deleted_at
    return replace(current, provider_cui=current.provider_cui or provider_cui,
                   provider_name=current.provider_name or provider_name,
                   deleted_at=None if revived else current.deleted_at)


def apply_user_deleted(current: KeyRecord | None, *, username: str, cas: str, at: datetime) -> KeyRecord:
    """The record after ``ExternalUserDeleted``: kept as a tombstone, so that a late
    ``KeyIssued`` older than the deletion cannot bring the user back."""
    if current is None:
        return KeyRecord(username, cas, deleted_at=at)
    if current.deleted_at is not None and current.deleted_at >= at:
        return current
    if current.issued_at is not None and current.issued_at > at:
        return current  # a key issued after the deletion: the user exists again
    return replace(current, deleted_at=at)


KeyVerdict = Literal["ok", "unknown_user", "wrong_key", "key_malformed", "key_replaced"]


def check_key(record: KeyRecord | None, serial: str, pepper: bytes) -> KeyVerdict:
    """Whether ``serial`` is the current key of ``record``'s user (constant-time compare)."""
    if record is None or not record.active:
        return "unknown_user"
    try:
        presented = digest(serial, pepper).hex()
    except MalformedSerial:
        return "key_malformed"
    if record.key_digest and hmac.compare_digest(presented, record.key_digest):
        return "ok"
    if any(hmac.compare_digest(presented, old) for old in record.previous_digests):
        return "key_replaced"
    return "wrong_key"


def load_pepper(path: Path) -> bytes:
    """The licence pepper: the file's hex text decoded, exactly as keygen reads it
    (services/keygen/keys.py), or every digest would differ."""
    try:
        pepper = bytes.fromhex(path.read_text("ascii").strip())
    except ValueError:
        raise ValueError(f"{path}: the licence pepper must be hexadecimal") from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"{path}: the licence pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return pepper


def pepper_fingerprint(pepper: bytes) -> str:
    """A short, non-secret name of the pepper, for logs comparing two services' settings."""
    return hashlib.sha256(b"siui-pepper-id" + pepper).hexdigest()[:12]


class KeyStore:
    """Every external user's ``KeyRecord`` in memory, by username."""

    def __init__(self) -> None:
        self._by_user: dict[str, KeyRecord] = {}

    def get(self, username: str) -> KeyRecord | None:
        return self._by_user.get(username)

    def put(self, record: KeyRecord) -> None:
        """Keep ``record`` unless a newer version is already held."""
        held = self._by_user.get(record.username)
        if held is None or record.version >= held.version:
            self._by_user[record.username] = record

    def __len__(self) -> int:
        return len(self._by_user)


KEYS = web.AppKey("ocsp_keys", KeyStore)


class KeySync:
    """Keeps a ``KeyStore`` equal to the table: a full load at start (and after the
    LISTEN connection is lost), one user re-read per notification."""

    def __init__(self, pool: asyncpg.Pool, store: KeyStore, *, check_every: float = 5.0) -> None:
        self.pool = pool
        self.store = store
        self.check_every = check_every
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._refreshes: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Listen first, then load: a change committed meanwhile is re-read either way."""
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="ocsp-keys-sync")

    async def _connect(self) -> None:
        conn = await self.pool.acquire()
        await conn.add_listener(oq.KEYS_CHANNEL, self._on_notify)
        self._conn = conn
        await self.load_all()

    async def load_all(self) -> int:
        async with self.pool.acquire() as conn:
            rows = await oq.all_keys(conn)
        for row in rows:
            self.store.put(KeyRecord.from_row(row))
        return len(rows)

    async def refresh(self, username: str) -> None:
        async with self.pool.acquire() as conn:
            row = await oq.key_of(conn, username)
        if row is not None:
            self.store.put(KeyRecord.from_row(row))

    def _on_notify(self, _conn, _pid, _channel, username: str) -> None:
        task = asyncio.create_task(self.refresh(username))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            if self._conn is not None and not self._conn.is_closed():
                continue
            try:  # notifications were lost with the connection: reload everything
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self.pool.release(self._conn)
                self._conn = None
                await self._connect()
                log.info("ocsp_keys_resynced", users=len(self.store))
            except Exception as exc:
                log.warning("ocsp_keys_sync_failed", error=repr(exc))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._refreshes):
            task.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.remove_listener(oq.KEYS_CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self.pool.release(self._conn)
            self._conn = None


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
    return hashlib.sha256(b"siui-session-key" + record.key_digest.encode()).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


SESSIONS = web.AppKey("ocsp_online_sessions", SessionSigner)
