"""Passwords of house staff: the policy, argon2id hashing, and generated passwords.

The policy follows NIST SP 800-63B rather than composition rules: long enough, not a
well-known password, not the user's own name. Hashes are argon2id (argon2-cffi's
defaults, RFC 9106's low-memory profile); hashing and checking run in a worker thread
because they take ~0.1 s of CPU by design and must not stall the event loop (a login's
check runs in the gate's bounded threads: services/users/gate.py).
"""
from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared import errors

MIN_LENGTH = 12
# argon2 accepts any length; the cap stops a megabyte "password" from costing CPU twice.
MAX_LENGTH = 128
MIN_DISTINCT = 5
# The handful that blocklists always start with; longer lists belong in a file.
COMMON = frozenset({
    "123456789012", "1234567890123", "12345678901234", "qwertyuiopas", "qwertyuiop123",
    "password1234", "parola123456", "passwordpassword", "administrator", "admin1234567",
    "iloveyou1234", "abcdefghijkl", "111111111111", "000000000000", "parolaparola",
    "siuisiuisiui", "cnas12345678", "sanatate1234",
})  # fmt: skip
# No 0/O, 1/l/I: a generated password is read off a screen and typed once.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def password_problems(password: str, *, username: str = "", employee_code: str | None = None) -> str | None:
    """Why ``password`` is not acceptable, or None when it is."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if len(set(password)) < MIN_DISTINCT:
        return f"must use at least {MIN_DISTINCT} different characters"
    lowered = password.lower()
    if lowered in COMMON:
        return "is a well-known password; choose another"
    for own in (username, employee_code or ""):
        if len(own) >= 3 and own.lower() in lowered:
            return "must not contain the user name or employee code"
    return None


def check_password(password: str, *, username: str = "", employee_code: str | None = None) -> None:
    """Raise a 422 naming the ``password`` field if the policy refuses it."""
    problem = password_problems(password, username=username, employee_code=employee_code)
    if problem:
        raise errors.Invalid(f"the password {problem}", errors={"password": problem})


def generate_password(groups: int = 4, size: int = 5) -> str:
    """A random password like ``Kq7mP-x3ZtR-...``: 20 symbols of 57, about 116 bits."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(size)) for _ in range(groups))


def make_hasher() -> PasswordHasher:
    """The production hasher: argon2id with argon2-cffi's RFC 9106 defaults."""
    return PasswordHasher()


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    """The argon2id hash of ``password``, computed off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hasher.hash, password)


def check(hasher: PasswordHasher, password_hash: str, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``password_hash`` (False for a damaged hash too), and
    when it does and the hash's parameters are weaker than the hasher's, a new hash of
    it. Blocking (argon2 work): run it in a thread (services/users/gate.py)."""
    try:
        if not hasher.verify(password_hash, password):
            return False, None
    except (VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(password_hash) else None
