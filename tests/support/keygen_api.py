"""The keygen service as its tests drive it: providers with fresh valid CUIs and CNPs,
activation keys issued ("Generare parola") or reset, and its problem answers; and its
KeyIssued event made as it makes it, for tests of those who consume it."""
from __future__ import annotations

import json
import uuid
from datetime import datetime

from services.keygen import keys as keygen_keys
from shared.auth import Right
from shared.clock import utc_now
from shared.events import KeyIssued
from tests.support.identities import new_cnp, new_cui

OPERATOR_RIGHTS = (Right.PROVIDERS_READ, Right.PROVIDERS_WRITE, Right.KEYS_ISSUE)


def provider_body(cas: str = "B", **fields) -> dict:
    """The provider form filled in, with a fresh CUI and CNP; ``fields`` override."""
    return {"cas": cas, "cui": new_cui(), "name": "SC Clinica Sfânta Maria SRL",
            "trade_register_no": "J40/10/3456", "org_type": "SRL", "locality": "17913 București",
            "legal_representative": {"name": "Ion Țărănescu", "cnp": new_cnp()}, **fields}


async def make_provider(client, headers, **fields) -> dict:
    response = await client.post("/v1/providers", json=provider_body(**fields), headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def issue(client, headers, provider_id: str, *, reset: bool = False, pdf: bool = False):
    """POST the activation key (JSON, or the agreement PDF); the response, whatever it is."""
    extra = {"Accept": "application/pdf"} if pdf else {}
    return await client.post(f"/v1/providers/{provider_id}/activation-key", json={"reset": reset},
                             headers={**headers, **extra})


async def issued_key(client, headers, provider_id: str, *, reset: bool = False) -> dict:
    response = await issue(client, headers, provider_id, reset=reset)
    assert response.status == 201, await response.text()
    return await response.json()


async def problem(response, status: int) -> dict:
    """The problem+json body of a refusal with ``status``."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return json.loads(await response.text())


def key_issued(pepper: bytes, username: str, *, reset: bool = False,
               issued_at: datetime | None = None) -> tuple[KeyIssued, keygen_keys.NewKey]:
    """KeyIssued for external user ``username`` exactly as keygen makes it (its own key and
    event code, its own use of the pepper), and the key (``.serial`` is the clear serial)."""
    cui, _, cas = username.partition("_CAS-")
    key = keygen_keys.new_key(pepper, issued_at or utc_now())
    provider = {"id": uuid.uuid4(), "cui": cui, "code": cui, "name": f"SC {cui} SRL", "cas": cas}
    event = keygen_keys.key_issued(provider, key, reset=reset, issued_by=f"operator.{cas.lower()}")
    assert event.external_user == username
    return event, key
