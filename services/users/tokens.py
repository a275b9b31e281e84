"""Signing the session tokens every service verifies (shared.auth.TokenVerifier).

EdDSA (Ed25519) JWTs; the claims are exactly what ``TokenVerifier`` reads: ``sub``,
``cas``, ``rights`` (sorted), ``roles``, ``jti``, ``iat``, ``exp``, ``iss``, ``aud``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shared.auth import TOKEN_AUDIENCE, TOKEN_ISSUER


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def token_claims(*, username: str, cas: str, rights, roles, jti: str, now: datetime,
                 lifetime: timedelta) -> dict:
    """The claims of a session token (``iat``/``exp`` as whole seconds since the epoch)."""
    issued = int(now.timestamp())
    return {"sub": username, "cas": cas, "rights": sorted(set(rights)), "roles": sorted(set(roles)),
            "jti": jti, "iat": issued, "exp": issued + int(lifetime.total_seconds()),
            "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE}


class TokenSigner:
    """Signs session tokens with the users service's private key."""

    def __init__(self, private_key: Ed25519PrivateKey, lifetime: timedelta):
        self._key = private_key
        self.lifetime = lifetime

    @classmethod
    def from_file(cls, path: Path, lifetime: timedelta) -> "TokenSigner":
        key = load_pem_private_key(Path(path).read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: the token signing key must be Ed25519")
        return cls(key, lifetime)

    def issue(self, *, username: str, cas: str, rights, roles, now: datetime) -> IssuedToken:
        """A new token for this user, valid from ``now`` for the signer's lifetime."""
        jti = str(uuid.uuid4())
        claims = token_claims(username=username, cas=cas, rights=rights, roles=roles, jti=jti,
                              now=now, lifetime=self.lifetime)
        token = jwt.encode(claims, self._key, algorithm="EdDSA")
        issued_at = datetime.fromtimestamp(claims["iat"], now.tzinfo)
        return IssuedToken(token, jti, issued_at, datetime.fromtimestamp(claims["exp"], now.tzinfo))
