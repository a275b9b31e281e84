"""users: session tokens carry exactly the claims every service's verifier reads."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.users.tokens import TokenSigner
from shared import errors
from shared.auth import TOKEN_AUDIENCE, TOKEN_ISSUER, TokenVerifier


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


def test_claims_are_the_contract(key):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    signer = TokenSigner(key, timedelta(minutes=15))
    issued = signer.issue(username="ion.popescu", cas="CJ", rights=["users:read", "providers:read", "users:read"],
                          roles=["house-viewer"], now=now)
    claims = jwt.decode(issued.token, key.public_key(), algorithms=["EdDSA"], audience=TOKEN_AUDIENCE)
    assert claims == {"sub": "ion.popescu", "cas": "CJ", "rights": ["providers:read", "users:read"],
                      "roles": ["house-viewer"], "jti": issued.jti, "iat": int(now.timestamp()),
                      "exp": int(now.timestamp()) + 900, "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE}
    assert jwt.get_unverified_header(issued.token)["alg"] == "EdDSA"
    assert issued.expires_at - issued.issued_at == timedelta(minutes=15)


def test_shared_verifier_accepts_it(key):
    signer = TokenSigner(key, timedelta(minutes=5))
    issued = signer.issue(username="admin", cas="CNAS", rights=["issuers:write"], roles=["national-admin"],
                          now=datetime.now(timezone.utc))
    principal = TokenVerifier(key.public_key()).verify(issued.token)
    assert (principal.username, principal.cas, principal.token_id) == ("admin", "CNAS", issued.jti)
    assert principal.rights == frozenset({"issuers:write"}) and principal.is_national


def test_expired_and_foreign_tokens_are_refused(key):
    old = TokenSigner(key, timedelta(minutes=1)).issue(
        username="a", cas="B", rights=[], roles=[], now=datetime.now(timezone.utc) - timedelta(hours=1))
    with pytest.raises(errors.Unauthorized, match="expired"):
        TokenVerifier(key.public_key()).verify(old.token)
    stranger = TokenSigner(Ed25519PrivateKey.generate(), timedelta(minutes=5)).issue(
        username="a", cas="B", rights=[], roles=[], now=datetime.now(timezone.utc))
    with pytest.raises(errors.Unauthorized, match="not valid"):
        TokenVerifier(key.public_key()).verify(stranger.token)


def test_from_file_reads_the_dev_key(pki):
    signer = TokenSigner.from_file(pki.token_signing_key, timedelta(minutes=15))
    issued = signer.issue(username="a", cas="B", rights=[], roles=[], now=datetime.now(timezone.utc))
    assert TokenVerifier.from_file(pki.token_signing_public_key).verify(issued.token).username == "a"
