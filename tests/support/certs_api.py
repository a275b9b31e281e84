"""The certs service as its tests drive it: issuers and certificates registered through
its API, and external users fed to it as the users service feeds them (by event)."""
from __future__ import annotations

import json
import secrets

from shared.events import ExternalUserCreated
from tests.support.bus import EventTap
from tests.support.identities import new_cui
from tests.support.openssl_ca import Made
from tests.support.wait import eventually


def unique(prefix: str = "") -> str:
    """``prefix`` and 8 random hex digits: a CA name no other test registers (DNs are unique)."""
    return prefix + secrets.token_hex(4).upper()


async def add_external_user(bus: EventTap, db, *, cas: str = "B", cui: str | None = None,
                            name: str = "SC TEST MEDICAL SRL") -> str:
    """Publish ExternalUserCreated as the users service does; return once certs has it."""
    cui = cui or new_cui()
    username = f"{cui}_CAS-{cas}"
    await bus.publish(ExternalUserCreated(username=username, cui=cui, provider_code=cui, provider_name=name,
                                          schema=f"SIUI{cas}", org_unit=f"CAS-{cas}"), cas)

    async def known():
        return await db.fetchval("select deleted_at is null from external_users where username = $1", username)

    await eventually(known, what=f"external user {username} known to certs")
    return username


async def register_issuer(certs, made: Made, headers) -> dict:
    response = await certs.post("/v1/issuers", json={"certificate_pem": made.pem}, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def register_upload(certs, username: str, made: Made, headers) -> dict:
    response = await certs.post("/v1/certificates", json={"username": username, "certificate_pem": made.pem},
                                headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


def problem_errors(body: str) -> dict:
    """The field errors of a problem+json body."""
    return json.loads(body).get("errors", {})
