"""The responder key in an HSM, through PKCS#11 (python-pkcs11; SoftHSM2 in dev and tests).

One ``Pkcs11Token`` per process and token: a logged-in session kept open and reused
(opening one and logging in costs far more than a signature), re-opened after any
device error, and one signing thread. One thread, not a pool of them: python-pkcs11
initialises the module with ``C_Initialize(NULL)``, which tells it the application
never calls from two threads at once, and SoftHSM2 then takes no locks (two threads
signing on two sessions fail with CKR_GENERAL_ERROR). The parallelism is across the
ocsp worker processes instead, each its own module instance and session: sessions are
pooled one per worker, as many as the workers that sign. The thread keeps a slow
device (a network HSM's round trip) off the event loop, so cached answers and health
checks are served meanwhile.

Any PKCS#11 failure while signing raises ``SignerUnavailable`` (the responder answers
``tryLater``), counts ``siui_ocsp_hsm_errors_total`` and drops the session, so the next
signature opens a new one. Nothing here logs or holds the PIN in clear beyond the
object that logs in with it.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from pkcs11 import KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn
from prometheus_client import Counter

from services.ocsp.responder.signing_keys import SignerUnavailable, digest_info, ecdsa_signature_der

__all__ = ["HSM_ERRORS", "Pkcs11Key", "Pkcs11Settings", "Pkcs11Token", "read_pin"]

HSM_ERRORS = Counter("siui_ocsp_hsm_errors_total", "PKCS#11 failures while signing OCSP answers "
                     "(each answered tryLater; the session is re-opened)")


def read_pin(path: Path) -> str:
    """The user PIN from its file (one line; the file, never the environment, holds it)."""
    try:
        pin = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the PKCS#11 PIN file {path}: {exc.strerror}") from None
    if not pin:
        raise ValueError(f"the PKCS#11 PIN file {path} is empty")
    return pin


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the key lives: the module (.so), the token's label, the PIN's file."""

    module: Path
    token_label: str
    pin_file: Path

    def __repr__(self) -> str:  # the PIN is in a file; its path is no secret, its content never read here
        return f"Pkcs11Settings(module={str(self.module)!r}, token_label={self.token_label!r})"


class Pkcs11Token:
    """A token's session, shared by the keys on it (a second login on one token fails
    with CKR_USER_ALREADY_LOGGED_IN), and the one thread that calls the module."""

    def __init__(self, settings: Pkcs11Settings):
        self.settings = settings
        self._pin = read_pin(settings.pin_file)
        try:
            self._lib = pkcs11.lib(str(settings.module))
        except (OSError, RuntimeError, PKCS11Error) as exc:
            raise ValueError(f"cannot load the PKCS#11 module {settings.module}: {exc}") from None
        self._lock = threading.Lock()  # opening is done by the signing thread or at start, never both
        self._session = None
        self._keys: dict[str, object] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocsp-hsm")
        # Open now, not at the first request: a wrong PIN or label stops the start.
        try:
            self._open()
        except PKCS11Error as exc:
            raise ValueError(f"cannot open token {settings.token_label!r} in {settings.module}: "
                             f"{type(exc).__name__} {exc}".rstrip()) from None

    def key(self, label: str) -> Pkcs11Key:
        """The private key labelled ``label`` on this token (ValueError when there is none)."""
        try:
            self._private_key(label)
        except PKCS11Error as exc:
            raise ValueError(f"no private key labelled {label!r} on token {self.settings.token_label!r} "
                             f"({type(exc).__name__})") from None
        return Pkcs11Key(self, label)

    def _open(self):
        with self._lock:
            if self._session is None:
                try:
                    self._session = self._login()
                except PKCS11Error:
                    # A device that went away and came back is a new slot to the module,
                    # which only looks for slots when initialised: start it afresh, once.
                    self._lib.reinitialize()
                    self._session = self._login()
                self._keys = {}
            return self._session

    def _login(self):
        token = self._lib.get_token(token_label=self.settings.token_label)
        try:
            return token.open(user_pin=self._pin)
        except UserAlreadyLoggedIn:
            # Another session of this process is still logged in (the login state is per
            # application, not per session): this one shares it.
            return token.open()

    def _private_key(self, label: str):
        session = self._open()
        key = self._keys.get(label)
        if key is None:
            key = self._keys[label] = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        return key

    def sign(self, label: str, digest: bytes, hash_name: str) -> bytes:
        """Sign on the device (called on the signing thread)."""
        try:
            key = self._private_key(label)
            if key.key_type == KeyType.EC:
                return ecdsa_signature_der(key.sign(digest, mechanism=Mechanism.ECDSA))
            if key.key_type == KeyType.RSA:
                return key.sign(digest_info(hash_name, digest), mechanism=Mechanism.RSA_PKCS)
        except (PKCS11Error, RuntimeError) as exc:
            HSM_ERRORS.inc()
            self.reset()
            raise SignerUnavailable(f"PKCS#11 signing failed: {type(exc).__name__}") from exc
        raise SignerUnavailable(f"key {label!r} is neither EC nor RSA")

    def reset(self) -> None:
        """Forget the session (closed if it still closes): the next signature opens another
        (and starts the module afresh if that fails: the token may be back in a new slot)."""
        with self._lock:
            session, self._session, self._keys = self._session, None, {}
        if session is not None:
            try:
                session.close()
            except PKCS11Error:
                pass  # a device that went away cannot close it; forgetting it is what matters

    def close(self) -> None:
        """Stop the signing thread and close the session (at the process's end)."""
        self.executor.shutdown(wait=True)
        self.reset()


class Pkcs11Key:
    """A key on a token, addressed by label: an ``ExternalKey`` for ``ResponderIdentity``."""

    def __init__(self, token: Pkcs11Token, label: str):
        self.token = token
        self.label = label
        self.executor = token.executor

    def sign_digest(self, digest: bytes, hash_name: str) -> bytes:
        return self.token.sign(self.label, digest, hash_name)

    def __repr__(self) -> str:
        return f"Pkcs11Key(token={self.token.settings.token_label!r}, label={self.label!r})"
