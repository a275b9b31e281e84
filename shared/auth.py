"""Who is calling, and may they do this to a record of that house.

The users service signs short-lived EdDSA tokens; every service verifies them locally
with the public key, so no request waits on the users service. This module is the one
place that decides: a missing right is 403, a record of another house is 404 (a county
operator must not even learn that it exists), no or bad token is 401.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jwt
from aiohttp import web

from shared import errors

NATIONAL = "CNAS"
TOKEN_ISSUER = "siui-users"
TOKEN_AUDIENCE = "siui"


class Right:
    """Every action the system guards, by name."""

    PROVIDERS_READ = "providers:read"
    PROVIDERS_WRITE = "providers:write"
    KEYS_ISSUE = "keys:issue"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    CERTIFICATES_READ = "certificates:read"
    CERTIFICATES_WRITE = "certificates:write"
    CERTIFICATES_SUSPEND = "certificates:suspend"
    ISSUERS_READ = "issuers:read"
    ISSUERS_WRITE = "issuers:write"  # national only
    OCSP_LOG_READ = "ocsp-log:read"
    # The OCSP log's client addresses and accounts in clear (admins and operators);
    # without it a reader sees them masked (services/ocsp/log/privacy.py).
    OCSP_LOG_PERSONAL = "ocsp-log:personal"
    AUDIT_READ = "audit:read"


ALL_RIGHTS = tuple(v for k, v in vars(Right).items() if k.isupper())
NATIONAL_RIGHTS = frozenset({Right.ISSUERS_WRITE})


@dataclass(frozen=True)
class Principal:
    username: str
    cas: str
    rights: frozenset[str]
    roles: tuple[str, ...] = ()
    token_id: str = ""
    expires_at: datetime | None = None

    @property
    def is_national(self) -> bool:
        return self.cas == NATIONAL

    def can(self, right: str) -> bool:
        return right in self.rights


@dataclass
class TokenVerifier:
    """Verifies tokens with the users service's public key; knows revoked token ids."""

    public_key: object
    revoked: set[str] = field(default_factory=set)
    leeway_seconds: int = 5

    @classmethod
    def from_file(cls, path: Path) -> "TokenVerifier":
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        return cls(load_pem_public_key(path.read_bytes()))

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["EdDSA"], audience=TOKEN_AUDIENCE,
                                issuer=TOKEN_ISSUER, leeway=self.leeway_seconds,
                                options={"require": ["exp", "iat", "sub", "jti"]})
        except jwt.ExpiredSignatureError:
            raise errors.Unauthorized("the session has expired; log in again") from None
        except jwt.PyJWTError:
            raise errors.Unauthorized("the token is not valid; log in again") from None
        if claims["jti"] in self.revoked:
            raise errors.Unauthorized("the session was ended; log in again")
        return Principal(username=claims["sub"], cas=claims["cas"], rights=frozenset(claims.get("rights", ())),
                         roles=tuple(claims.get("roles", ())), token_id=claims["jti"],
                         expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc))


VERIFIER = web.AppKey("token_verifier", TokenVerifier)


def authenticate(request: web.Request) -> Principal:
    """The caller of ``request`` from its Bearer token, or 401."""
    cached = request.get("principal")
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("log in first: send Authorization: Bearer <token>")
    principal = request.app[VERIFIER].verify(token.strip())
    request["principal"] = principal
    return principal


def authorize(request: web.Request, right: str) -> Principal:
    """The caller, if they hold ``right``; 401 without a valid token, 403 without the right."""
    principal = authenticate(request)
    if not principal.can(right):
        raise errors.Forbidden(f"your roles do not include the right {right!r}")
    return principal


def ensure_house(principal: Principal, record_cas: str, *, what: str = "record") -> None:
    """A record of another house does not exist for a county operator (404)."""
    if not principal.is_national and principal.cas != record_cas:
        raise errors.NotFound(f"no such {what}")


def house_filter(principal: Principal, requested: str | None) -> str | None:
    """The house a listing is limited to: a county operator's own, whatever they ask;
    a national user's choice, or every house (None)."""
    if principal.is_national:
        return requested.upper() if requested else None
    return principal.cas


def may_act_for_house(principal: Principal, cas: str) -> None:
    """Creating a record for a house: county operators only for their own (else 403)."""
    if not principal.is_national and principal.cas != cas:
        raise errors.Forbidden(f"you may only act for house {principal.cas}")
